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
import type { PreKeyResponse } from '../protocol/gen/service_pb.js';
import {
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
import { ClientError, ClientErrorCode } from './errors.js';
import type { AccountId } from './ids.js';
import { protocolStores, saveIdentityKey, type IdentityChangeNotice } from './protocol-stores.js';
import type { RequestOptions } from './transport/types.js';
import type { ClientStore, StoreTx } from './store/types.js';

/** The protocol's PreKeyBundles of a PreKeyResponse; malformed keys give `CLIENT_BAD_RESPONSE`. */
export function bundlesOf(res: PreKeyResponse): PreKeyBundle[] {
  try {
    const identityKey = PublicKey.deserialize(res.identityKey);
    return res.devices.map((d) => {
      if (!d.signedPreKey || !d.kyberPreKey) throw new Error('bundle lacks a signed or Kyber prekey');
      return {
        registrationId: d.registrationId,
        deviceId: d.deviceId,
        preKey: d.preKey ? { id: d.preKey.id, publicKey: PublicKey.deserialize(d.preKey.publicKey) } : undefined,
        signedPreKey: { id: d.signedPreKey.id, publicKey: PublicKey.deserialize(d.signedPreKey.publicKey), signature: d.signedPreKey.signature },
        kyberPreKey: { id: d.kyberPreKey.id, publicKey: KemPublicKey.deserialize(d.kyberPreKey.publicKey), signature: d.kyberPreKey.signature },
        identityKey,
      };
    });
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadResponse, 'the server sent a malformed prekey bundle', { cause });
  }
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
    const { devices, missing } = await this.#o.store.transaction(async (tx) => {
      const devices = await tx.sessions.devices(accountId);
      const missing: number[] = [];
      for (const d of devices) {
        const bytes = await tx.sessions.get(accountId, d);
        if (!bytes || !SessionRecord.deserialize(bytes).hasUsableSenderChain(now)) missing.push(d);
      }
      return { devices, missing };
    });
    if (devices.length === 0) {
      await this.#fetchAndProcess(accountId, '*', options);
      return;
    }
    for (const d of missing) await this.#fetchDevice(accountId, d, options);
  }

  /** Forgets devices the server says do not exist (409 extra devices). */
  async removeDevices(accountId: AccountId, deviceIds: readonly number[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.#o.store.transaction(async (tx) => {
      for (const d of deviceIds) await tx.sessions.remove(accountId, d);
    });
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

  async #fetchAndProcess(accountId: AccountId, deviceId: number | '*', options?: RequestOptions): Promise<void> {
    const bundles = bundlesOf(await this.#o.api().getKeys(accountId, deviceId, options));
    if (bundles.length === 0) return;
    const now = this.#o.now();
    try {
      await this.#process(accountId, bundles, now);
    } catch (err) {
      if (!(err instanceof UntrustedIdentityError)) throw err;
      const newKey = (bundles[0] as PreKeyBundle).identityKey.serialized;
      const notice = await this.#o.store.transaction(async (tx) => {
        const change = await saveIdentityKey(tx, accountId, newKey, now);
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
      await this.#process(accountId, bundles, now);
    }
  }

  async #process(accountId: AccountId, bundles: readonly PreKeyBundle[], now: number): Promise<void> {
    const notices = await this.#o.store.transaction(async (tx) => {
      const stores = protocolStores(tx, now);
      for (const b of bundles) await processPreKeyBundle(this.#o.crypto, b, new ProtocolAddress(accountId, b.deviceId), stores, now);
      return stores.identityChanges;
    });
    for (const n of notices) this.#o.onIdentityChanged(n);
  }
}
