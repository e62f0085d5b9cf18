/**
 * Sessions with the devices of peer accounts: which devices an account has (the devices we hold session
 * records for), fetching prekey bundles for the ones that need a session, and repairing the set when the
 * server says it changed (409: devices added or removed; 410: devices re-registered).
 *
 * Identity policy on sending: a bundle whose identity key differs from the recorded one means the peer
 * re-registered (or someone is in the middle). For a contact the user never verified, the new key is
 * recorded (status `unverified`), the change is reported, the old sessions are archived, and sending goes on,
 * as Signal does. For a verified contact the new key is recorded as `verification-required` and sending stops
 * with `CLIENT_IDENTITY_NOT_VERIFIED` until the user verifies it.
 */
import { PRIMARY_DEVICE_ID } from '../protocol/device-identity.js';
import type { DeviceBundle, PreKeyResponse } from '../protocol/gen/service_pb.js';
import {
  bytesEqual,
  KemPublicKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  UntrustedIdentityError,
  processPreKeyBundle,
  type CryptoProvider,
  type PreKeyBundle,
} from '../protocol/index.js';
import type { ServiceApi } from './api.js';
import { applyDeviceList, verifyDeviceList, type DevicesChangeNotice, type VerifiedDeviceList } from './devices.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { AccountId } from './ids.js';
import { accountKeyOf, protocolStores, requireAccount, saveIdentityKey, type IdentityChangeNotice } from './protocol-stores.js';
import type { RequestOptions } from './transport/types.js';
import type { ClientStore, StoreTx } from './store/types.js';

/** The protocol's PreKeyBundle of one device of a PreKeyResponse; malformed keys give `CLIENT_BAD_RESPONSE`. */
function bundleOf(res: PreKeyResponse, d: DeviceBundle): PreKeyBundle {
  try {
    if (!d.signedPreKey || !d.kyberPreKey) throw new Error('bundle lacks a signed or Kyber prekey');
    // Device 1 is the account key's; a companion has its own (which its account's device list must name).
    const identityKey = PublicKey.deserialize(d.deviceId === PRIMARY_DEVICE_ID ? res.identityKey : d.identityKey);
    return {
      registrationId: d.registrationId,
      deviceId: d.deviceId,
      preKey: d.preKey ? { id: d.preKey.id, publicKey: PublicKey.deserialize(d.preKey.publicKey) } : undefined,
      signedPreKey: { id: d.signedPreKey.id, publicKey: PublicKey.deserialize(d.signedPreKey.publicKey), signature: d.signedPreKey.signature },
      kyberPreKey: { id: d.kyberPreKey.id, publicKey: KemPublicKey.deserialize(d.kyberPreKey.publicKey), signature: d.kyberPreKey.signature },
      identityKey,
    };
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadResponse, 'the server sent a malformed prekey bundle', { cause });
  }
}

/** The protocol's PreKeyBundles of a PreKeyResponse; malformed keys give `CLIENT_BAD_RESPONSE`. */
export function bundlesOf(res: PreKeyResponse): PreKeyBundle[] {
  try {
    PublicKey.deserialize(res.identityKey);
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadResponse, 'the server sent a malformed account key', { cause });
  }
  return res.devices.map((d) => bundleOf(res, d));
}

/** Archives the current session with one device (the next message to it starts a new session). */
export async function archiveSession(tx: StoreTx, accountId: AccountId, deviceId: number): Promise<void> {
  const bytes = await tx.sessions.get(accountId, deviceId);
  if (!bytes) return;
  const record = SessionRecord.deserialize(bytes);
  if (!record.current) return;
  record.archiveCurrentState();
  await tx.sessions.put(accountId, deviceId, record.serialize());
}

export interface SessionManagerOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly api: () => ServiceApi;
  readonly now: () => number;
  /** Called after a committed transaction recorded a peer's new identity key. */
  readonly onIdentityChanged: (notice: IdentityChangeNotice) => void;
  /** Called after a committed transaction took a device list that added or removed companions. */
  readonly onDevicesChanged?: ((notice: DevicesChangeNotice) => void) | undefined;
}

/** What a bundle fetch turned into: the bundles to start sessions with, the verified list, the devices refused. */
interface CheckedBundles {
  readonly accountKey: Uint8Array;
  readonly bundles: readonly PreKeyBundle[];
  readonly list: VerifiedDeviceList | undefined;
  readonly refused: readonly number[];
}

export class SessionManager {
  readonly #o: SessionManagerOptions;
  /** Session set-up under way per account: concurrent sends to one account share one bundle fetch. */
  readonly #ensuring = new Map<AccountId, Promise<void>>();

  constructor(options: SessionManagerOptions) {
    this.#o = options;
  }

  /**
   * Makes sure every known device of `accountId` has a usable session, fetching bundles where needed (all
   * devices, `/*`, when none is known yet).
   */
  async ensureSessions(accountId: AccountId, options?: RequestOptions): Promise<void> {
    for (;;) {
      const running = this.#ensuring.get(accountId);
      if (!running) break;
      await running.catch(() => undefined);
    }
    const work = this.#ensure(accountId, options);
    this.#ensuring.set(accountId, work);
    try {
      await work;
    } finally {
      if (this.#ensuring.get(accountId) === work) this.#ensuring.delete(accountId);
    }
  }

  async #ensure(accountId: AccountId, options?: RequestOptions): Promise<void> {
    const now = this.#o.now();
    const { devices, missing, unpinned } = await this.#o.store.transaction(async (tx) => {
      const devices = await tx.sessions.devices(accountId);
      const missing: number[] = [];
      const unpinned: number[] = [];
      for (const d of devices) {
        const bytes = await tx.sessions.get(accountId, d);
        // A companion known only from a message it sent us: its account's list must vouch for it first.
        if (d !== PRIMARY_DEVICE_ID && !(await tx.deviceIdentities.get(accountId, d))) unpinned.push(d);
        else if (!bytes || !SessionRecord.deserialize(bytes).hasUsableSenderChain(now)) missing.push(d);
      }
      return { devices, missing, unpinned };
    });
    if (devices.length === 0) {
      await this.#fetchAndProcess(accountId, '*', options);
      return;
    }
    for (const d of missing) await this.#fetchDevice(accountId, d, options);
    for (const d of unpinned) {
      try {
        await this.#fetchDevice(accountId, d, options);
      } catch (err) {
        // Not in the signed list: never encrypted to (if the server requires it, the send fails with this error).
        if (ClientError.is(err, ClientErrorCode.UntrustedDevice)) await this.removeDevices(accountId, [d]);
        else throw err;
      }
    }
  }

  /**
   * Forgets devices the server says do not exist (409 extra devices). When a companion is among them, the
   * account's signed device list is fetched again, so that the removal is taken (and reported) here.
   */
  async removeDevices(accountId: AccountId, deviceIds: readonly number[], options?: RequestOptions): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.#o.store.transaction(async (tx) => {
      for (const d of deviceIds) await tx.sessions.remove(accountId, d);
    });
    if (options !== undefined && deviceIds.some((d) => d !== PRIMARY_DEVICE_ID)) await this.#fetchAndProcess(accountId, PRIMARY_DEVICE_ID, options, true);
  }

  /** Fetches bundles for devices the server says exist (409 missing devices) and starts sessions. */
  async addDevices(accountId: AccountId, deviceIds: readonly number[], options?: RequestOptions): Promise<void> {
    for (const d of deviceIds) await this.#fetchDevice(accountId, d, options);
  }

  /** Archives the sessions of re-registered devices (410) and starts new ones from fresh bundles. */
  async refreshDevices(accountId: AccountId, deviceIds: readonly number[], options?: RequestOptions): Promise<void> {
    await this.#o.store.transaction(async (tx) => {
      for (const d of deviceIds) await archiveSession(tx, accountId, d);
    });
    for (const d of deviceIds) await this.#fetchDevice(accountId, d, options);
  }

  async #fetchDevice(accountId: AccountId, deviceId: number, options?: RequestOptions): Promise<void> {
    try {
      await this.#fetchAndProcess(accountId, deviceId, options);
    } catch (err) {
      // The device is gone: forget it (the server will name the devices that exist if we are wrong).
      if (ClientError.is(err, ClientErrorCode.UnknownRecipient)) await this.removeDevices(accountId, [deviceId]);
      else throw err;
    }
  }

  /** Fetches the bundles of the device set and refreshes what the signed device list says. */
  async refreshDeviceList(accountId: AccountId, options?: RequestOptions): Promise<void> {
    await this.#fetchAndProcess(accountId, '*', options);
  }

  /**
   * Fetches bundles, checks them against the account's signed device list, and starts sessions with the devices
   * that pass. A companion the verified list does not name with the same key is refused: skipped in a fetch of
   * all devices, `CLIENT_UNTRUSTED_DEVICE` when it was the device asked for.
   */
  async #fetchAndProcess(accountId: AccountId, deviceId: number | '*', options?: RequestOptions, listOnly = false): Promise<void> {
    const res = await this.#o.api().getKeys(accountId, deviceId, options);
    const fetched = await this.#check(accountId, res);
    // Only the list: the sessions stay as they are.
    const checked = listOnly ? { ...fetched, bundles: [] } : fetched;
    if (deviceId !== '*' && checked.refused.includes(deviceId)) {
      throw new ClientError(ClientErrorCode.UntrustedDevice, `device ${deviceId} of that account is not in its signed device list: nothing is encrypted to it`);
    }
    if (checked.bundles.length === 0 && checked.list === undefined) return;
    const now = this.#o.now();
    try {
      await this.#process(accountId, checked, now);
    } catch (err) {
      if (!(err instanceof UntrustedIdentityError)) throw err;
      const notice = await this.#o.store.transaction(async (tx) => {
        const change = await saveIdentityKey(tx, accountId, checked.accountKey, now);
        if (change && change.status === 'unverified') {
          // The old sessions belong to the old identity.
          for (const d of await tx.sessions.devices(accountId)) await archiveSession(tx, accountId, d);
        }
        return change;
      });
      if (notice) this.#o.onIdentityChanged(notice);
      const status = notice?.status ?? (await this.#o.store.transaction((tx) => tx.identities.get(accountId)))?.status;
      if (status === 'verification-required') {
        throw new ClientError(ClientErrorCode.IdentityNotVerified, 'the safety number of this verified contact changed: verify it again before sending', {
          cause: err,
        });
      }
      await this.#process(accountId, checked, now);
    }
  }

  /**
   * Verifies the response's device list with the account key it carries (which the identity policy then
   * judges, as before: TOFU, change reporting, verified contacts blocked) or, for our own account, with our
   * account key; sorts the bundles into trusted and refused.
   */
  async #check(accountId: AccountId, res: PreKeyResponse): Promise<CheckedBundles> {
    const self = await this.#o.store.transaction((tx) => requireAccount(tx));
    const own = accountId === self.accountId;
    if (own && !bytesEqual(res.identityKey, accountKeyOf(self))) {
      throw new ClientError(ClientErrorCode.UntrustedDevice, 'the server sent another account key for our own account');
    }
    try {
      PublicKey.deserialize(res.identityKey);
    } catch (cause) {
      throw new ClientError(ClientErrorCode.BadResponse, 'the server sent a malformed account key', { cause });
    }
    const list = await verifyDeviceList(this.#o.crypto, res.identityKey, res.deviceList, accountId);
    const bundles: PreKeyBundle[] = [];
    const refused: number[] = [];
    for (const d of res.devices) {
      if (own && d.deviceId === self.deviceId) continue; // never a session with ourselves
      if (d.deviceId === PRIMARY_DEVICE_ID) {
        bundles.push(bundleOf(res, d));
        continue;
      }
      const listed = list?.devices.get(d.deviceId);
      if (listed && bytesEqual(listed, d.identityKey)) bundles.push(bundleOf(res, d));
      else refused.push(d.deviceId);
    }
    return { accountKey: res.identityKey, bundles, list, refused };
  }

  async #process(accountId: AccountId, checked: CheckedBundles, now: number): Promise<void> {
    const { notices, devices } = await this.#o.store.transaction(async (tx) => {
      const stores = protocolStores(tx, now);
      let devices: DevicesChangeNotice | undefined;
      const notices: IdentityChangeNotice[] = [];
      if (checked.list) {
        // The account key must be the one we pin (or the first we see) before its list is taken.
        const self = await requireAccount(tx);
        const pinned = accountId === self.accountId ? accountKeyOf(self) : (await tx.identities.get(accountId))?.identityKey;
        if (pinned !== undefined && !bytesEqual(pinned, checked.accountKey)) {
          throw new UntrustedIdentityError(accountId, checked.accountKey);
        }
        const report = accountId === self.accountId || pinned !== undefined;
        const applied = await applyDeviceList(tx, checked.list, now, report);
        devices = applied.devices;
        notices.push(...applied.identityChanges);
      }
      for (const b of checked.bundles) await processPreKeyBundle(this.#o.crypto, b, new ProtocolAddress(accountId, b.deviceId), stores, now);
      notices.push(...stores.identityChanges);
      return { notices, devices };
    });
    for (const n of notices) this.#o.onIdentityChanged(n);
    if (devices) this.#o.onDevicesChanged?.(devices);
  }
}
