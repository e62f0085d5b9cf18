/**
 * This account's devices, the primary's side of linking (docs/multi-device.md): approving a companion that
 * showed a linking code, publishing the signed device list, removing devices, and sending a new companion
 * its history.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import {
  createAccountSignature,
  createSignedDeviceList,
  encodeDeviceIdentityDetails,
  PRIMARY_DEVICE_ID,
  verifySignedDeviceList,
} from '../protocol/device-identity.js';
import type { DeviceIdentity, DevicesResponse } from '../protocol/gen/service_pb.js';
import { bytesEqual, KeyPair, PrivateKey, PublicKey, type CryptoProvider } from '../protocol/index.js';
import type { ServiceApi } from './api.js';
import { sleep } from './async.js';
import { applyDeviceList, type DevicesChangeNotice } from './devices.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { ProvisionMessageSchema } from './gen/content_pb.js';
import { buildHistoryBundle } from './history.js';
import { decryptDeviceName, encryptBlob, encryptProvisioning, linkIdHex, parseLinkUri } from './link-crypto.js';
import { DEVICE_NAME_KEY } from './linking.js';
import { enqueueSync } from './outgoing.js';
import { requireAccount } from './protocol-stores.js';
import { Backoff } from './transport/backoff.js';
import type { RequestOptions } from './transport/types.js';
import type { AccountRecord, ClientStore } from './store/types.js';

/** One device of this account as {@link LinkedDevices.list} shows it. */
export interface DeviceView {
  readonly deviceId: number;
  /** The name the device gave itself when it linked (undefined for the primary, or when none). */
  readonly name: string | undefined;
  /** This device. */
  readonly self: boolean;
  readonly primary: boolean;
  /** Whether the account's signed device list names it (the primary always counts): only listed devices receive. */
  readonly listed: boolean;
  readonly createdAt: number;
  readonly lastSeen: number;
}

export interface LinkedDevicesOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly api: () => ServiceApi;
  readonly now: () => number;
  readonly nextTimestamp: () => number;
  /** After sync entries were queued. */
  readonly kick: () => void;
  readonly onDevicesChanged: (notice: DevicesChangeNotice) => void;
}

export class LinkedDevices {
  readonly #o: LinkedDevicesOptions;

  constructor(options: LinkedDevicesOptions) {
    this.#o = options;
  }

  /** The account's devices as the server has them, and whether our signed list names each. */
  async list(options?: RequestOptions): Promise<DeviceView[]> {
    const account = await this.#account();
    const res = await this.#o.api().devices(options);
    const listed = await this.#listedIds(account, res);
    const names = await this.#names(account, res);
    return res.devices
      .map((d) => ({
        deviceId: d.deviceId,
        name: names.get(d.deviceId),
        self: d.deviceId === account.deviceId,
        primary: d.deviceId === PRIMARY_DEVICE_ID,
        listed: d.deviceId === PRIMARY_DEVICE_ID || listed.has(d.deviceId),
        createdAt: Number(d.createdAt),
        lastSeen: Number(d.lastSeen),
      }))
      .sort((a, b) => a.deviceId - b.deviceId);
  }

  /**
   * Links the companion that shows `uri` (the primary only): reserves a device id and code, vouches for the
   * companion's key, leaves the encrypted provisioning message, waits for the companion to register, publishes
   * the new device list, tells our other devices, and sends the companion its history.
   */
  async link(uri: string, options: { signal?: AbortSignal | undefined } = {}): Promise<{ deviceId: number }> {
    const link = parseLinkUri(uri);
    const account = await this.#requirePrimary();
    const api = this.#o.api();
    const req: RequestOptions = { signal: options.signal };
    const companionKey = PublicKey.deserialize(link.identityKey);
    const provisioning = await api.provisionDevice(req);
    const now = this.#o.now();
    const details = encodeDeviceIdentityDetails({ accountId: account.accountId, deviceId: provisioning.deviceId, timestamp: now });
    const message = create(ProvisionMessageSchema, {
      accountId: account.accountId,
      number: account.number,
      serverUrl: account.serverUrl,
      deviceId: provisioning.deviceId,
      code: provisioning.code,
      accountIdentityKey: account.identityPublicKey,
      details,
      accountSignature: createAccountSignature(this.#o.crypto, keyPairOf(account), details, companionKey),
      expiresAt: BigInt(now + provisioning.expiresInSeconds * 1000),
    });
    const body = await encryptProvisioning(this.#o.crypto, link.linkingSecret, toBinary(ProvisionMessageSchema, message));
    await api.putProvisioning(linkIdHex(link.linkId), body, req);
    const identity = await this.#waitForCompanion(provisioning.deviceId, link.identityKey, now + provisioning.expiresInSeconds * 1000, options.signal);
    await this.#publish(account, (current) => new Map([...current, [provisioning.deviceId, identity]]), req);
    await this.#sendHistory(account, provisioning.deviceId, req);
    return { deviceId: provisioning.deviceId };
  }

  /**
   * Removes a device: the primary removes a companion (and publishes a list without it); a companion may only
   * remove itself (logging out: its credentials stop working, the profile is unusable afterwards).
   */
  async remove(deviceId: number, options?: RequestOptions): Promise<void> {
    const account = await this.#account();
    if (!Number.isInteger(deviceId) || deviceId < PRIMARY_DEVICE_ID) throw new ClientError(ClientErrorCode.InvalidArgument, 'not a device id');
    if (account.deviceId === PRIMARY_DEVICE_ID) {
      if (deviceId === PRIMARY_DEVICE_ID) throw new ClientError(ClientErrorCode.InvalidArgument, 'the primary cannot remove itself: register the number again instead');
      await this.#o.api().removeDevice(deviceId, options);
      await this.#publish(account, (current) => new Map([...current].filter(([d]) => d !== deviceId)), options);
      return;
    }
    if (deviceId !== account.deviceId) throw new ClientError(ClientErrorCode.NotPrimary, 'a companion can only remove itself; the primary removes the others');
    await this.#o.api().removeDevice(deviceId, options);
  }

  /**
   * On the primary: publishes the signed list again without the devices it names that are gone (a companion
   * that logged itself out deletes itself at the server, which cannot sign a list). Resolves with whether it
   * published; on a companion it does nothing.
   */
  async prune(options?: RequestOptions): Promise<boolean> {
    const account = await this.#account();
    if (account.deviceId !== PRIMARY_DEVICE_ID || account.accountIdentityKey !== undefined) return false;
    const res = await this.#o.api().devices(options);
    const listed = await this.#listedIds(account, res);
    if ([...listed].every((d) => res.devices.some((x) => x.deviceId === d))) return false;
    await this.#publish(account, (current) => current, options);
    return true;
  }

  async #account(): Promise<AccountRecord> {
    return this.#o.store.transaction((tx) => requireAccount(tx));
  }

  /**
   * The devices' names: the primary decrypts them with the account key; a companion knows only its own (kept
   * when it linked). A name that does not decrypt is left out.
   */
  async #names(account: AccountRecord, res: DevicesResponse): Promise<Map<number, string>> {
    const names = new Map<number, string>();
    if (account.accountIdentityKey === undefined) {
      const accountPair = await KeyPair.fromPrivateKey(this.#o.crypto, PrivateKey.deserialize(account.identityPrivateKey));
      for (const d of res.devices) {
        if (d.deviceName.length === 0) continue;
        try {
          names.set(d.deviceId, await decryptDeviceName(this.#o.crypto, accountPair, d.deviceName));
        } catch (err) {
          if (!ClientError.is(err, ClientErrorCode.BadBlob)) throw err;
        }
      }
    } else {
      const own = await this.#o.store.transaction((tx) => tx.settings.get(DEVICE_NAME_KEY));
      if (typeof own === 'string') names.set(account.deviceId, own);
    }
    return names;
  }

  async #requirePrimary(): Promise<AccountRecord> {
    const account = await this.#account();
    if (account.deviceId !== PRIMARY_DEVICE_ID || account.accountIdentityKey !== undefined) {
      throw new ClientError(ClientErrorCode.NotPrimary, 'only the primary device (device 1) links and removes other devices');
    }
    return account;
  }

  /** The device ids our current signed list names (verified with our account key). */
  async #listedIds(account: AccountRecord, res: DevicesResponse): Promise<Set<number>> {
    if (!res.deviceList || res.deviceList.list.length === 0) return new Set();
    try {
      const key = PublicKey.deserialize(account.accountIdentityKey ?? account.identityPublicKey);
      return new Set((await verifySignedDeviceList(this.#o.crypto, key, res.deviceList, account.accountId)).devices.keys());
    } catch {
      return new Set();
    }
  }

  /** Polls GET /v1/devices (bounded by the code's expiry) until the companion registered with the key it showed. */
  async #waitForCompanion(deviceId: number, identityKey: Uint8Array, deadline: number, signal: AbortSignal | undefined): Promise<DeviceIdentity> {
    const backoff = new Backoff({ baseMs: 200, maxMs: 3_000 });
    for (;;) {
      const res = await this.#o.api().devices({ signal });
      const d = res.devices.find((x) => x.deviceId === deviceId);
      if (d) {
        if (!d.identity || !bytesEqual(d.identityKey, identityKey) || !bytesEqual(d.identity.identityKey, identityKey)) {
          throw new ClientError(ClientErrorCode.LinkFailed, 'a device registered under that id with another key than the linking code showed');
        }
        return d.identity;
      }
      const left = deadline - this.#o.now();
      if (left <= 0) throw new ClientError(ClientErrorCode.LinkFailed, 'the new device did not finish linking before its code expired');
      await sleep(Math.min(left, backoff.next() + 50), signal);
    }
  }

  /**
   * Publishes a new signed list (version + 1) made by `change` from the current one (the companions it names
   * that still exist), pins it here, and tells our other devices.
   */
  async #publish(account: AccountRecord, change: (current: Map<number, DeviceIdentity>) => Map<number, DeviceIdentity>, options?: RequestOptions): Promise<void> {
    const api = this.#o.api();
    const res = await api.devices(options);
    const key = keyPairOf(account);
    let version = 0n;
    const current = new Map<number, DeviceIdentity>();
    if (res.deviceList && res.deviceList.list.length > 0) {
      const verified = await verifySignedDeviceList(this.#o.crypto, key.publicKey, res.deviceList, account.accountId);
      version = verified.version;
      for (const [deviceId, k] of verified.devices) {
        const info = res.devices.find((d) => d.deviceId === deviceId);
        if (info?.identity && bytesEqual(info.identity.identityKey, k.serialized)) current.set(deviceId, info.identity);
      }
    }
    const next = change(current);
    const now = this.#o.now();
    const nextVersion = version + 1n;
    const signed = createSignedDeviceList(this.#o.crypto, key, {
      accountId: account.accountId,
      version: nextVersion,
      timestamp: now,
      devices: [...next].sort(([a], [b]) => a - b).map(([deviceId, identity]) => ({ deviceId, identity })),
    });
    await api.putDeviceList(signed, options);
    const devices = new Map([...next].map(([d, identity]) => [d, identity.identityKey]));
    const notice = await this.#o.store.transaction(async (tx) => {
      const applied = await applyDeviceList(tx, { accountId: account.accountId, version: Number(nextVersion), devices }, now, true);
      // Our other devices (the new one included) fetch the list that names it.
      await enqueueSync(tx, account, this.#o.nextTimestamp(), now, { kind: { case: 'devicesChanged', value: { version: nextVersion } } });
      return applied.devices;
    });
    this.#o.kick();
    if (notice) this.#o.onDevicesChanged(notice);
  }

  /** Builds, encrypts and uploads the history bundle, then sends its key to the new companion only. */
  async #sendHistory(account: AccountRecord, deviceId: number, options?: RequestOptions): Promise<void> {
    const now = this.#o.now();
    const plaintext = await this.#o.store.transaction((tx) => buildHistoryBundle(tx, now));
    const blob = await encryptBlob(this.#o.crypto, plaintext);
    await this.#o.api().putBlob(blob.id, blob.bytes, options);
    await this.#o.store.transaction((tx) =>
      enqueueSync(tx, account, this.#o.nextTimestamp(), now, {
        kind: { case: 'history', value: { blobId: blob.id, key: blob.key, sha256: blob.sha256, size: BigInt(blob.bytes.length), deviceId } },
      }),
    );
    this.#o.kick();
  }
}

function keyPairOf(account: AccountRecord): KeyPair {
  return new KeyPair(PublicKey.deserialize(account.identityPublicKey), PrivateKey.deserialize(account.identityPrivateKey));
}
