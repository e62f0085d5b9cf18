/**
 * This device's prekeys: generation, upload, replenishment of one-time keys when the server's count runs
 * low, and rotation of the signed prekey and the last-resort Kyber prekey by age. Private keys never leave
 * the store; the server gets public keys and signatures only.
 *
 * Ordering: a key is stored locally before it is uploaded (a peer may use an uploaded key at once), and a
 * rotated key becomes "current" only after the server has it.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { KyberPreKeySchema, PreKeySchema, SetKeysRequestSchema, SignedPreKeySchema } from '../protocol/gen/service_pb.js';
import { KeyPair, KyberPreKeyRecord, PreKeyRecord, PrivateKey, PublicKey, SignedPreKeyRecord, type CryptoProvider } from '../protocol/index.js';
import type { ServiceApi } from './api.js';
import type { RequestOptions } from './transport/types.js';
import { requireAccount } from './protocol-stores.js';
import type { ClientStore, StoreTx } from './store/types.js';

/** Key ids are 24-bit, as Signal's (0 is not used). */
export const MAX_KEY_ID = 0xffffff;

/** When to replenish and rotate. */
export interface KeyPolicy {
  /** One-time keys of each kind per upload (the server takes at most 100 per request). */
  readonly batchSize: number;
  /** Replenish when the server holds fewer than this many one-time keys of a kind. */
  readonly minOneTimeKeys: number;
  /** Rotate the signed prekey and the last-resort Kyber prekey once older than this, ms. */
  readonly rotateAfterMs: number;
  /** Delete replaced signed / last-resort keys once older than this, ms (late PreKey messages may still name them). */
  readonly keepReplacedForMs: number;
}

export const DEFAULT_KEY_POLICY: KeyPolicy = {
  batchSize: 100,
  minOneTimeKeys: 20,
  rotateAfterMs: 2 * 24 * 3600_000,
  keepReplacedForMs: 30 * 24 * 3600_000,
};

/** Settings keys of the key manager. */
const S = {
  nextPreKeyId: 'keys.nextPreKeyId',
  nextKyberPreKeyId: 'keys.nextKyberPreKeyId',
  nextSignedPreKeyId: 'keys.nextSignedPreKeyId',
  signedPreKeyId: 'keys.signedPreKeyId',
  lastResortKyberId: 'keys.lastResortKyberId',
} as const;

type Upload = MessageInitShape<typeof SetKeysRequestSchema>;

/** The wire form of a signed prekey. */
export function signedPreKeyMessage(r: SignedPreKeyRecord): MessageInitShape<typeof SignedPreKeySchema> {
  return { id: r.id, publicKey: r.keyPair.publicKey.serialized, signature: r.signature };
}

/** The wire form of a Kyber prekey. */
export function kyberPreKeyMessage(r: KyberPreKeyRecord): MessageInitShape<typeof KyberPreKeySchema> {
  return { id: r.id, publicKey: r.keyPair.publicKey.serialize(), signature: r.signature };
}

function preKeyMessage(r: PreKeyRecord): MessageInitShape<typeof PreKeySchema> {
  return { id: r.id, publicKey: r.keyPair.publicKey.serialized };
}

/** A random first key id in [1, 2^23), so ids of a re-registered device rarely collide with old ones. */
export function randomKeyId(crypto: CryptoProvider): number {
  const b = crypto.randomBytes(3);
  return ((((b[0] as number) << 16) | ((b[1] as number) << 8) | (b[2] as number)) % 0x7fffff) + 1;
}

/** `count` consecutive ids from the counter `key` (wrapping below {@link MAX_KEY_ID}), advancing it. */
async function allocateIds(tx: StoreTx, key: string, count: number, crypto: CryptoProvider): Promise<number[]> {
  const stored = await tx.settings.get(key);
  let next = typeof stored === 'number' ? stored : randomKeyId(crypto);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(next);
    next = next >= MAX_KEY_ID ? 1 : next + 1;
  }
  await tx.settings.put(key, next);
  return ids;
}

async function identityOf(tx: StoreTx): Promise<KeyPair> {
  const a = await requireAccount(tx);
  return new KeyPair(PublicKey.deserialize(a.identityPublicKey), PrivateKey.deserialize(a.identityPrivateKey));
}

/** What {@link KeyManager.maintain} did. */
export interface MaintenanceReport {
  readonly uploadedPreKeys: number;
  readonly uploadedKyberPreKeys: number;
  readonly rotatedSignedPreKey: boolean;
  readonly rotatedLastResortKey: boolean;
}

export class KeyManager {
  readonly #crypto: CryptoProvider;
  readonly #store: ClientStore;
  readonly #api: () => ServiceApi;
  readonly #now: () => number;
  readonly #policy: KeyPolicy;

  constructor(options: { crypto: CryptoProvider; store: ClientStore; api: () => ServiceApi; now: () => number; policy?: Partial<KeyPolicy> | undefined }) {
    this.#crypto = options.crypto;
    this.#store = options.store;
    this.#api = options.api;
    this.#now = options.now;
    this.#policy = { ...DEFAULT_KEY_POLICY, ...options.policy };
  }

  get policy(): KeyPolicy {
    return this.#policy;
  }

  /**
   * Generates and stores `count` one-time EC and Kyber prekeys (either may be 0) and returns their upload.
   * Generation runs outside any transaction (Kyber key generation is the slow part); ids are allocated first.
   */
  async generateOneTimeKeys(ecCount: number, kyberCount: number): Promise<Upload> {
    const { identity, ecIds, kyberIds } = await this.#store.transaction(async (tx) => ({
      identity: await identityOf(tx),
      ecIds: await allocateIds(tx, S.nextPreKeyId, ecCount, this.#crypto),
      kyberIds: await allocateIds(tx, S.nextKyberPreKeyId, kyberCount, this.#crypto),
    }));
    const now = this.#now();
    const ec = await Promise.all(ecIds.map((id) => PreKeyRecord.generate(this.#crypto, id)));
    const kyber = kyberIds.map((id) => KyberPreKeyRecord.generate(this.#crypto, identity, id, now));
    await this.#store.transaction(async (tx) => {
      for (const r of ec) await tx.preKeys.put(r.id, r.serialize());
      for (const r of kyber) await tx.kyberPreKeys.put(r.id, r.serialize(), { lastResort: false, createdAt: now });
    });
    return { preKeys: ec.map(preKeyMessage), kyberPreKeys: kyber.map(kyberPreKeyMessage) };
  }

  /** Generates, stores and uploads a first batch of one-time keys (after registration). */
  async uploadInitialKeys(options?: RequestOptions): Promise<void> {
    const upload = await this.generateOneTimeKeys(this.#policy.batchSize, this.#policy.batchSize);
    await this.#api().setKeys(upload, options);
  }

  /**
   * Brings the server's keys up to policy: replenishes one-time keys below the threshold, rotates the signed
   * prekey and the last-resort Kyber prekey when too old, and deletes replaced keys past their grace period.
   */
  async maintain(options?: RequestOptions): Promise<MaintenanceReport> {
    const api = this.#api();
    const status = await api.keyStatus(options);
    const p = this.#policy;
    const ecNeeded = status.preKeyCount < p.minOneTimeKeys ? p.batchSize : 0;
    const kyberNeeded = status.kyberPreKeyCount < p.minOneTimeKeys ? p.batchSize : 0;
    let uploadedPreKeys = 0;
    let uploadedKyberPreKeys = 0;
    if (ecNeeded + kyberNeeded > 0) {
      const upload = await this.generateOneTimeKeys(ecNeeded, kyberNeeded);
      await api.setKeys(upload, options);
      uploadedPreKeys = ecNeeded;
      uploadedKyberPreKeys = kyberNeeded;
    }
    const rotatedSignedPreKey = await this.#rotateSignedPreKey(false, options);
    const rotatedLastResortKey = await this.#rotateLastResortKey(false, options);
    await this.#deleteReplacedKeys();
    return { uploadedPreKeys, uploadedKyberPreKeys, rotatedSignedPreKey, rotatedLastResortKey };
  }

  /** Replaces the signed prekey now (or only when it is too old, unless `force`). */
  async rotateSignedPreKey(options?: RequestOptions): Promise<void> {
    await this.#rotateSignedPreKey(true, options);
  }

  /** Replaces the last-resort Kyber prekey now. */
  async rotateLastResortKey(options?: RequestOptions): Promise<void> {
    await this.#rotateLastResortKey(true, options);
  }

  async #rotateSignedPreKey(force: boolean, options?: RequestOptions): Promise<boolean> {
    const now = this.#now();
    const prepared = await this.#store.transaction(async (tx) => {
      const currentId = await tx.settings.get(S.signedPreKeyId);
      const current = (await tx.signedPreKeys.list()).find((k) => k.id === currentId);
      if (!force && current && now - current.createdAt < this.#policy.rotateAfterMs) return undefined;
      const [id] = await allocateIds(tx, S.nextSignedPreKeyId, 1, this.#crypto);
      const record = await SignedPreKeyRecord.generate(this.#crypto, await identityOf(tx), id as number, now);
      await tx.signedPreKeys.put(record.id, record.serialize(), now);
      return record;
    });
    if (!prepared) return false;
    await this.#api().setKeys({ signedPreKey: signedPreKeyMessage(prepared) }, options);
    await this.#store.transaction((tx) => tx.settings.put(S.signedPreKeyId, prepared.id));
    return true;
  }

  async #rotateLastResortKey(force: boolean, options?: RequestOptions): Promise<boolean> {
    const now = this.#now();
    const prepared = await this.#store.transaction(async (tx) => {
      const currentId = await tx.settings.get(S.lastResortKyberId);
      const current = (await tx.kyberPreKeys.list()).find((k) => k.id === currentId);
      if (!force && current && now - current.createdAt < this.#policy.rotateAfterMs) return undefined;
      const [id] = await allocateIds(tx, S.nextKyberPreKeyId, 1, this.#crypto);
      const record = KyberPreKeyRecord.generate(this.#crypto, await identityOf(tx), id as number, now);
      await tx.kyberPreKeys.put(record.id, record.serialize(), { lastResort: true, createdAt: now });
      return record;
    });
    if (!prepared) return false;
    await this.#api().setKeys({ kyberLastResortPreKey: kyberPreKeyMessage(prepared) }, options);
    await this.#store.transaction((tx) => tx.settings.put(S.lastResortKyberId, prepared.id));
    return true;
  }

  /** Deletes signed and last-resort keys that are not current and older than the grace period. */
  async #deleteReplacedKeys(): Promise<void> {
    const cutoff = this.#now() - this.#policy.keepReplacedForMs;
    await this.#store.transaction(async (tx) => {
      const signedId = await tx.settings.get(S.signedPreKeyId);
      for (const k of await tx.signedPreKeys.list()) if (k.id !== signedId && k.createdAt < cutoff) await tx.signedPreKeys.remove(k.id);
      const lastResortId = await tx.settings.get(S.lastResortKyberId);
      for (const k of await tx.kyberPreKeys.list()) {
        if (k.lastResort && k.id !== lastResortId && k.createdAt < cutoff) await tx.kyberPreKeys.remove(k.id);
      }
    });
  }
}

/** The first signed prekey and last-resort Kyber prekey of a registration (with random ids). */
export interface RegistrationKeys {
  readonly signedPreKey: SignedPreKeyRecord;
  readonly lastResort: KyberPreKeyRecord;
}

/** Generates the keys a registration request carries (nothing is stored yet: the server may refuse). */
export async function generateRegistrationKeys(crypto: CryptoProvider, identity: KeyPair, now: number): Promise<RegistrationKeys> {
  const signedPreKey = await SignedPreKeyRecord.generate(crypto, identity, randomKeyId(crypto), now);
  const lastResort = KyberPreKeyRecord.generate(crypto, identity, randomKeyId(crypto), now);
  return { signedPreKey, lastResort };
}

/** Stores a registration's keys and marks them current; the id counters continue after them. */
export async function storeRegistrationKeys(tx: StoreTx, keys: RegistrationKeys): Promise<void> {
  const { signedPreKey, lastResort } = keys;
  await tx.signedPreKeys.put(signedPreKey.id, signedPreKey.serialize(), signedPreKey.createdAt);
  await tx.kyberPreKeys.put(lastResort.id, lastResort.serialize(), { lastResort: true, createdAt: lastResort.createdAt });
  await tx.settings.put(S.signedPreKeyId, signedPreKey.id);
  await tx.settings.put(S.lastResortKyberId, lastResort.id);
  await tx.settings.put(S.nextSignedPreKeyId, signedPreKey.id >= MAX_KEY_ID ? 1 : signedPreKey.id + 1);
  await tx.settings.put(S.nextKyberPreKeyId, lastResort.id >= MAX_KEY_ID ? 1 : lastResort.id + 1);
}
