/**
 * Linked devices of accounts, as their signed device lists vouch for them (docs/multi-device.md).
 *
 * A list is taken only when its signature verifies under the account key we pin for that account (for our own
 * account: our account key), and only when its version is not older than the newest we took. Its companions
 * are then pinned (`tx.deviceIdentities`): a companion that appeared or disappeared is a `devicesChanged`
 * change, a companion whose key changed is an identity change of that device (a warning). The sessions of
 * devices that left the list are deleted, so nothing more is encrypted to them.
 */
import type { SignedDeviceList } from '../protocol/gen/service_pb.js';
import { verifySignedDeviceList } from '../protocol/device-identity.js';
import { bytesEqual, PublicKey, type CryptoProvider } from '../protocol/index.js';
import type { AccountId } from './ids.js';
import type { IdentityChangeNotice } from './protocol-stores.js';
import type { StoreTx } from './store/types.js';

/** A device list whose signature verified: its version and its companions' identity keys by device id. */
export interface VerifiedDeviceList {
  readonly accountId: AccountId;
  readonly version: number;
  readonly devices: ReadonlyMap<number, Uint8Array>;
}

/** An account's companions changed. */
export interface DevicesChangeNotice {
  readonly accountId: AccountId;
  readonly added: readonly number[];
  readonly removed: readonly number[];
}

/** What applying a verified list did. */
export interface AppliedDeviceList {
  /** False when the list was older than one already taken (then nothing changed). */
  readonly applied: boolean;
  readonly devices: DevicesChangeNotice | undefined;
  readonly identityChanges: readonly IdentityChangeNotice[];
}

const versionKey = (accountId: AccountId): string => `devices.listVersion.${accountId}`;

/**
 * Verifies `signed` under `accountKey` for `accountId`; undefined when there is no list or it does not verify
 * (a forged list names no device we would trust).
 */
export async function verifyDeviceList(
  crypto: CryptoProvider,
  accountKey: Uint8Array,
  signed: SignedDeviceList | undefined,
  accountId: AccountId,
): Promise<VerifiedDeviceList | undefined> {
  if (!signed || signed.list.length === 0) return undefined;
  try {
    const verified = await verifySignedDeviceList(crypto, PublicKey.deserialize(accountKey), signed, accountId);
    const devices = new Map<number, Uint8Array>();
    for (const [deviceId, key] of verified.devices) devices.set(deviceId, key.serialized);
    return { accountId, version: Number(verified.version), devices };
  } catch {
    return undefined;
  }
}

/** The version of the newest list of `accountId` taken here (undefined before the first). */
export async function knownListVersion(tx: StoreTx, accountId: AccountId): Promise<number | undefined> {
  const v = await tx.settings.get(versionKey(accountId));
  return typeof v === 'number' ? v : undefined;
}

/**
 * Pins the companions of a verified list in `tx`. `report` says whether a change of the device set is worth
 * telling the user (not for an account seen for the first time).
 */
export async function applyDeviceList(tx: StoreTx, list: VerifiedDeviceList, now: number, report: boolean): Promise<AppliedDeviceList> {
  const { accountId } = list;
  const known = await knownListVersion(tx, accountId);
  if (known !== undefined && list.version < known) return { applied: false, devices: undefined, identityChanges: [] };
  const status = (await tx.identities.get(accountId))?.status ?? 'unverified';
  const added: number[] = [];
  const removed: number[] = [];
  const identityChanges: IdentityChangeNotice[] = [];
  for (const [deviceId, identityKey] of list.devices) {
    const existing = await tx.deviceIdentities.get(accountId, deviceId);
    if (!existing) {
      await tx.deviceIdentities.put({ accountId, deviceId, identityKey, listVersion: list.version, firstSeenAt: now, changedAt: undefined });
      added.push(deviceId);
    } else if (!bytesEqual(existing.identityKey, identityKey)) {
      await tx.deviceIdentities.put({ ...existing, identityKey, listVersion: list.version, changedAt: now });
      // The old session belongs to the old key.
      await tx.sessions.remove(accountId, deviceId);
      identityChanges.push({ accountId, deviceId, previousKey: existing.identityKey, newKey: identityKey, status, changedAt: now });
    } else if (existing.listVersion !== list.version) {
      await tx.deviceIdentities.put({ ...existing, listVersion: list.version });
    }
  }
  for (const existing of await tx.deviceIdentities.list(accountId)) {
    if (list.devices.has(existing.deviceId)) continue;
    await tx.deviceIdentities.remove(accountId, existing.deviceId);
    await tx.sessions.remove(accountId, existing.deviceId);
    removed.push(existing.deviceId);
  }
  await tx.settings.put(versionKey(accountId), list.version);
  const changed = added.length + removed.length > 0;
  return {
    applied: true,
    devices: changed && (report || known !== undefined) ? { accountId, added: added.sort((a, b) => a - b), removed: removed.sort((a, b) => a - b) } : undefined,
    identityChanges,
  };
}
