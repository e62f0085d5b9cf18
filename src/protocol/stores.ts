import type { ProtocolAddress } from './address.js';
import { bytesEqual } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import type { KeyPair, PublicKey } from './keys.js';
import type { KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord } from './records.js';
import type { SessionRecord } from './session-record.js';

/** Whether an identity key is being checked for sending to or receiving from its owner. */
export const Direction = { Sending: 0, Receiving: 1 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** What saving an identity changed: a first or unchanged key, or a replaced (changed) one. */
export const IdentityChange = { NewOrUnchanged: 0, ReplacedExisting: 1 } as const;
export type IdentityChange = (typeof IdentityChange)[keyof typeof IdentityChange];

/** Our identity and the identities of the peers we have seen (libsignal's IdentityKeyStore). */
export interface IdentityKeyStore {
  getIdentityKeyPair(): Promise<KeyPair>;
  getLocalRegistrationId(): Promise<number>;
  /** Records `key` as the identity of `address`; says whether it replaced a different one. */
  saveIdentity(address: ProtocolAddress, key: PublicKey): Promise<IdentityChange>;
  /** Whether `key` may be used for `address` now. A changed key must be approved by the user (saveIdentity) first. */
  isTrustedIdentity(address: ProtocolAddress, key: PublicKey, direction: Direction): Promise<boolean>;
  getIdentity(address: ProtocolAddress): Promise<PublicKey | null>;
}

/** Our one-time EC prekeys. */
export interface PreKeyStore {
  /** Throws ProtocolError `InvalidPreKeyId` when absent. */
  getPreKey(id: number): Promise<PreKeyRecord>;
  storePreKey(id: number, record: PreKeyRecord): Promise<void>;
  removePreKey(id: number): Promise<void>;
}

/** Our signed EC prekeys. */
export interface SignedPreKeyStore {
  /** Throws ProtocolError `InvalidSignedPreKeyId` when absent. */
  getSignedPreKey(id: number): Promise<SignedPreKeyRecord>;
  storeSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void>;
}

/** Our Kyber prekeys, one-time and last-resort. */
export interface KyberPreKeyStore {
  /** Throws ProtocolError `InvalidKyberPreKeyId` when absent. */
  getKyberPreKey(id: number): Promise<KyberPreKeyRecord>;
  storeKyberPreKey(id: number, record: KyberPreKeyRecord, options?: { lastResort?: boolean }): Promise<void>;
  /**
   * Called after a PreKey message using `id` decrypted. A one-time key is deleted; a last-resort key is
   * kept (the base key is given so an implementation can refuse a replayed (kyber id, signed id, base key)).
   */
  markKyberPreKeyUsed(id: number, signedPreKeyId: number, baseKey: PublicKey): Promise<void>;
}

/** Session records per peer device. */
export interface SessionStore {
  /** The stored record, or null. The caller may change the returned object; it is saved with storeSession. */
  loadSession(address: ProtocolAddress): Promise<SessionRecord | null>;
  storeSession(address: ProtocolAddress, record: SessionRecord): Promise<void>;
}

/** The stores a 1:1 session needs together. */
export interface ProtocolStores {
  readonly identity: IdentityKeyStore;
  readonly preKeys: PreKeyStore;
  readonly signedPreKeys: SignedPreKeyStore;
  readonly kyberPreKeys: KyberPreKeyStore;
  readonly sessions: SessionStore;
}

/** In-memory {@link IdentityKeyStore}: trust on first use, a changed key is untrusted until saved. */
export class InMemoryIdentityKeyStore implements IdentityKeyStore {
  readonly #identity: KeyPair;
  readonly #registrationId: number;
  readonly #known = new Map<string, PublicKey>();

  constructor(identity: KeyPair, registrationId: number) {
    this.#identity = identity;
    this.#registrationId = registrationId;
  }

  getIdentityKeyPair(): Promise<KeyPair> {
    return Promise.resolve(this.#identity);
  }

  getLocalRegistrationId(): Promise<number> {
    return Promise.resolve(this.#registrationId);
  }

  saveIdentity(address: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const name = address.toString();
    const old = this.#known.get(name);
    this.#known.set(name, key);
    return Promise.resolve(old && !bytesEqual(old.serialized, key.serialized) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged);
  }

  isTrustedIdentity(address: ProtocolAddress, key: PublicKey, _direction: Direction): Promise<boolean> {
    const known = this.#known.get(address.toString());
    return Promise.resolve(known === undefined || bytesEqual(known.serialized, key.serialized));
  }

  getIdentity(address: ProtocolAddress): Promise<PublicKey | null> {
    return Promise.resolve(this.#known.get(address.toString()) ?? null);
  }
}

/** In-memory {@link PreKeyStore}. */
export class InMemoryPreKeyStore implements PreKeyStore {
  readonly #keys = new Map<number, PreKeyRecord>();

  getPreKey(id: number): Promise<PreKeyRecord> {
    const rec = this.#keys.get(id);
    if (!rec) return Promise.reject(new ProtocolError(ProtocolErrorCode.InvalidPreKeyId, `no prekey with id ${id}`));
    return Promise.resolve(rec);
  }

  storePreKey(id: number, record: PreKeyRecord): Promise<void> {
    this.#keys.set(id, record);
    return Promise.resolve();
  }

  removePreKey(id: number): Promise<void> {
    this.#keys.delete(id);
    return Promise.resolve();
  }
}

/** In-memory {@link SignedPreKeyStore}. */
export class InMemorySignedPreKeyStore implements SignedPreKeyStore {
  readonly #keys = new Map<number, SignedPreKeyRecord>();

  getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const rec = this.#keys.get(id);
    if (!rec) return Promise.reject(new ProtocolError(ProtocolErrorCode.InvalidSignedPreKeyId, `no signed prekey with id ${id}`));
    return Promise.resolve(rec);
  }

  storeSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    this.#keys.set(id, record);
    return Promise.resolve();
  }
}

/** In-memory {@link KyberPreKeyStore}: one-time keys go once used; last-resort keys stay. */
export class InMemoryKyberPreKeyStore implements KyberPreKeyStore {
  readonly #keys = new Map<number, { record: KyberPreKeyRecord; lastResort: boolean }>();

  getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    const entry = this.#keys.get(id);
    if (!entry) return Promise.reject(new ProtocolError(ProtocolErrorCode.InvalidKyberPreKeyId, `no Kyber prekey with id ${id}`));
    return Promise.resolve(entry.record);
  }

  storeKyberPreKey(id: number, record: KyberPreKeyRecord, options?: { lastResort?: boolean }): Promise<void> {
    this.#keys.set(id, { record, lastResort: options?.lastResort ?? false });
    return Promise.resolve();
  }

  markKyberPreKeyUsed(id: number, _signedPreKeyId: number, _baseKey: PublicKey): Promise<void> {
    const entry = this.#keys.get(id);
    if (entry && !entry.lastResort) this.#keys.delete(id);
    return Promise.resolve();
  }
}

/**
 * In-memory {@link SessionStore}. It hands out copies, so a caller that changes a loaded record and then
 * fails (a message that does not decrypt) leaves the stored record as it was.
 */
export class InMemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, SessionRecord>();

  loadSession(address: ProtocolAddress): Promise<SessionRecord | null> {
    return Promise.resolve(this.#sessions.get(address.toString())?.clone() ?? null);
  }

  storeSession(address: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.#sessions.set(address.toString(), record.clone());
    return Promise.resolve();
  }
}
