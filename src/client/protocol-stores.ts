/**
 * The protocol core's store interfaces over one store transaction, with the SDK's identity policy:
 *
 * - receiving is always allowed (as Signal does): a peer's new identity key is recorded, the change is
 *   reported, and the conversation goes on;
 * - sending to a key that differs from the recorded one is refused (the protocol raises
 *   UntrustedIdentityError, and the sender decides: see sessions.ts), and so is sending to a contact whose
 *   verified key changed (`verification-required`) until the user verifies the new key.
 */
import {
  Direction,
  IdentityChange,
  KeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  PrivateKey,
  ProtocolError,
  ProtocolErrorCode,
  PublicKey,
  SessionRecord,
  SignedPreKeyRecord,
  bytesEqual,
  type IdentityKeyStore,
  type KyberPreKeyStore,
  type PreKeyStore,
  type ProtocolAddress,
  type ProtocolStores,
  type SessionStore,
  type SignedPreKeyStore,
} from '../protocol/index.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { PRIMARY_DEVICE_ID } from '../protocol/device-identity.js';
import type { AccountId } from './ids.js';
import type { AccountRecord, StoreTx, VerificationStatus } from './store/types.js';

/** A change of a peer's identity key, seen while the transaction ran. */
export interface IdentityChangeNotice {
  readonly accountId: AccountId;
  /**
   * The linked companion whose key changed (its account's signed device list names a new key for it); undefined
   * for the account key (the primary's, which safety numbers cover).
   */
  readonly deviceId?: number | undefined;
  readonly previousKey: Uint8Array;
  readonly newKey: Uint8Array;
  readonly status: VerificationStatus;
  /** When the change was recorded, ms. */
  readonly changedAt: number;
}

/** The protocol stores of one transaction, and the identity changes they recorded. */
export interface TxProtocolStores extends ProtocolStores {
  readonly identityChanges: IdentityChangeNotice[];
}

/** The account of the store, or `CLIENT_NOT_REGISTERED`. */
export async function requireAccount(tx: StoreTx): Promise<AccountRecord> {
  const account = await tx.account.get();
  if (!account) throw new ClientError(ClientErrorCode.NotRegistered, 'this profile has no account: register first');
  return account;
}

/** The account key: our own identity key on the primary, the primary's on a linked companion. */
export function accountKeyOf(account: AccountRecord): Uint8Array {
  return account.accountIdentityKey ?? account.identityPublicKey;
}

/** The status a contact's identity gets when its key changes from one with status `old`. */
export function statusAfterChange(old: VerificationStatus): VerificationStatus {
  return old === 'unverified' ? 'unverified' : 'verification-required';
}

/**
 * Records `key` as `accountId`'s identity (the user-facing "accept the new key" as well as what the protocol
 * calls after a message decrypted). Returns the change, or undefined when the key was new or unchanged.
 */
export async function saveIdentityKey(tx: StoreTx, accountId: AccountId, key: Uint8Array, now: number): Promise<IdentityChangeNotice | undefined> {
  const old = await tx.identities.get(accountId);
  if (!old) {
    await tx.identities.put({ accountId, identityKey: key, status: 'unverified', firstSeenAt: now, changedAt: undefined });
    return undefined;
  }
  if (bytesEqual(old.identityKey, key)) return undefined;
  const status = statusAfterChange(old.status);
  await tx.identities.put({ ...old, identityKey: key, status, changedAt: now });
  return { accountId, previousKey: old.identityKey, newKey: key, status, changedAt: now };
}

/**
 * Identities per device: device 1 of an account is its account key (the identities store, with the
 * verification status); a linked companion's key is the one the account's verified device list names
 * (`tx.deviceIdentities`, written only from verified lists: see devices.ts). Our own account's key is fixed.
 */
class TxIdentityKeyStore implements IdentityKeyStore {
  #keyPair: KeyPair | undefined;
  #account: AccountRecord | undefined;

  constructor(
    readonly tx: StoreTx,
    readonly now: number,
    readonly changes: IdentityChangeNotice[],
  ) {}

  async #self(): Promise<AccountRecord> {
    this.#account ??= await requireAccount(this.tx);
    return this.#account;
  }

  async getIdentityKeyPair(): Promise<KeyPair> {
    if (!this.#keyPair) {
      const a = await this.#self();
      this.#keyPair = new KeyPair(PublicKey.deserialize(a.identityPublicKey), PrivateKey.deserialize(a.identityPrivateKey));
    }
    return this.#keyPair;
  }

  async getLocalRegistrationId(): Promise<number> {
    return (await this.#self()).registrationId;
  }

  async saveIdentity(address: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const self = await this.#self();
    // Companions' keys are pinned from verified device lists only, and our own account key never changes here.
    if (address.deviceId !== PRIMARY_DEVICE_ID || address.name === self.accountId) return IdentityChange.NewOrUnchanged;
    const change = await saveIdentityKey(this.tx, address.name as AccountId, key.serialized, this.now);
    if (!change) return IdentityChange.NewOrUnchanged;
    this.changes.push(change);
    return IdentityChange.ReplacedExisting;
  }

  async isTrustedIdentity(address: ProtocolAddress, key: PublicKey, direction: Direction): Promise<boolean> {
    if (direction === Direction.Receiving) return true;
    const pinned = await this.#pinned(address);
    if (pinned === undefined) return address.deviceId === PRIMARY_DEVICE_ID && address.name !== (await this.#self()).accountId;
    if (!bytesEqual(pinned, key.serialized)) return false;
    const account = await this.tx.identities.get(address.name as AccountId);
    return account?.status !== 'verification-required';
  }

  async getIdentity(address: ProtocolAddress): Promise<PublicKey | null> {
    const pinned = await this.#pinned(address);
    return pinned ? PublicKey.deserialize(pinned) : null;
  }

  /** The key pinned for one device, or undefined. */
  async #pinned(address: ProtocolAddress): Promise<Uint8Array | undefined> {
    const self = await this.#self();
    const accountId = address.name as AccountId;
    if (address.deviceId === PRIMARY_DEVICE_ID) {
      if (accountId === self.accountId) return accountKeyOf(self);
      return (await this.tx.identities.get(accountId))?.identityKey;
    }
    return (await this.tx.deviceIdentities.get(accountId, address.deviceId))?.identityKey;
  }
}

class TxPreKeyStore implements PreKeyStore {
  constructor(readonly tx: StoreTx) {}

  async getPreKey(id: number): Promise<PreKeyRecord> {
    const bytes = await this.tx.preKeys.get(id);
    if (!bytes) throw new ProtocolError(ProtocolErrorCode.InvalidPreKeyId, `no prekey with id ${id}`);
    return PreKeyRecord.deserialize(bytes);
  }

  async storePreKey(id: number, record: PreKeyRecord): Promise<void> {
    await this.tx.preKeys.put(id, record.serialize());
  }

  async removePreKey(id: number): Promise<void> {
    await this.tx.preKeys.remove(id);
  }
}

class TxSignedPreKeyStore implements SignedPreKeyStore {
  constructor(readonly tx: StoreTx) {}

  async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const bytes = await this.tx.signedPreKeys.get(id);
    if (!bytes) throw new ProtocolError(ProtocolErrorCode.InvalidSignedPreKeyId, `no signed prekey with id ${id}`);
    return SignedPreKeyRecord.deserialize(bytes);
  }

  async storeSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    await this.tx.signedPreKeys.put(id, record.serialize(), record.createdAt);
  }
}

class TxKyberPreKeyStore implements KyberPreKeyStore {
  constructor(readonly tx: StoreTx) {}

  async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    const entry = await this.tx.kyberPreKeys.get(id);
    if (!entry) throw new ProtocolError(ProtocolErrorCode.InvalidKyberPreKeyId, `no Kyber prekey with id ${id}`);
    return KyberPreKeyRecord.deserialize(entry.record);
  }

  async storeKyberPreKey(id: number, record: KyberPreKeyRecord, options?: { lastResort?: boolean }): Promise<void> {
    await this.tx.kyberPreKeys.put(id, record.serialize(), { lastResort: options?.lastResort ?? false, createdAt: record.createdAt });
  }

  async markKyberPreKeyUsed(id: number): Promise<void> {
    const entry = await this.tx.kyberPreKeys.get(id);
    if (entry && !entry.lastResort) await this.tx.kyberPreKeys.remove(id);
  }
}

class TxSessionStore implements SessionStore {
  constructor(readonly tx: StoreTx) {}

  async loadSession(address: ProtocolAddress): Promise<SessionRecord | null> {
    const bytes = await this.tx.sessions.get(address.name as AccountId, address.deviceId);
    return bytes ? SessionRecord.deserialize(bytes) : null;
  }

  async storeSession(address: ProtocolAddress, record: SessionRecord): Promise<void> {
    await this.tx.sessions.put(address.name as AccountId, address.deviceId, record.serialize());
  }
}

/** The protocol stores over `tx`; `now` dates identity changes. */
export function protocolStores(tx: StoreTx, now: number): TxProtocolStores {
  const identityChanges: IdentityChangeNotice[] = [];
  return {
    identity: new TxIdentityKeyStore(tx, now, identityChanges),
    preKeys: new TxPreKeyStore(tx),
    signedPreKeys: new TxSignedPreKeyStore(tx),
    kyberPreKeys: new TxKyberPreKeyStore(tx),
    sessions: new TxSessionStore(tx),
    identityChanges,
  };
}
