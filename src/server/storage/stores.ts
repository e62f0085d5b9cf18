/**
 * The server's storage, as narrow interfaces so that a PostgreSQL implementation can follow the SQLite
 * one. All methods are async; implementations keep each method atomic (one transaction). Records are
 * plain data; bytes are `Uint8Array`. Nothing here holds plaintext: envelope content is ciphertext the
 * server cannot read.
 */
import type { AccountId, DeviceId, DeviceRef, GroupId, PhoneNumber } from '../ids.js';

/** A registered account. */
export interface AccountRecord {
  readonly id: AccountId;
  readonly number: PhoneNumber;
  /** 33-byte serialized identity public key. */
  readonly identityKey: Uint8Array;
  /** When the current identity was registered (ms). */
  readonly registeredAt: number;
}

/** One device of an account. */
export interface DeviceRecord {
  readonly ref: DeviceRef;
  readonly accountId: AccountId;
  readonly deviceId: DeviceId;
  readonly registrationId: number;
  /** SHA-256 of the device's secret. */
  readonly passwordHash: Uint8Array;
}

/** A signed EC prekey, or a Kyber prekey (one-time or last resort): both carry a signature. */
export interface SignedKey {
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** A one-time EC prekey. */
export interface OneTimeKey {
  readonly id: number;
  readonly publicKey: Uint8Array;
}

/** What a registration writes. */
export interface NewRegistration {
  /** The id to use when the number has no account yet. */
  readonly newAccountId: AccountId;
  readonly number: PhoneNumber;
  readonly identityKey: Uint8Array;
  readonly registrationId: number;
  readonly passwordHash: Uint8Array;
  readonly deviceName: Uint8Array;
  readonly signedPreKey: SignedKey;
  readonly kyberLastResortKey: SignedKey;
  readonly now: number;
}

/** What a registration did. */
export interface RegistrationResult {
  readonly account: AccountRecord;
  readonly device: DeviceRecord;
  /** The number had an account: its identity was replaced and these devices were deleted. */
  readonly reregistered: boolean;
  readonly removedDevices: readonly DeviceRef[];
}

/** Accounts and devices. */
export interface AccountStore {
  byId(id: AccountId): Promise<AccountRecord | undefined>;
  byNumber(number: PhoneNumber): Promise<AccountRecord | undefined>;
  /** The devices of an account, by device id. */
  devices(id: AccountId): Promise<DeviceRecord[]>;
  device(id: AccountId, deviceId: DeviceId): Promise<DeviceRecord | undefined>;
  /**
   * Registers a number: creates the account, or, when the number has one, keeps its id, replaces its
   * identity and deletes its devices with their keys, queues and presence settings. Creates device 1.
   * Atomic.
   */
  register(registration: NewRegistration): Promise<RegistrationResult>;
}

/** A key upload; absent parts are left as they are. */
export interface KeyUpload {
  readonly preKeys: readonly OneTimeKey[];
  readonly kyberPreKeys: readonly SignedKey[];
  readonly signedPreKey?: SignedKey;
  readonly kyberLastResortKey?: SignedKey;
}

/** Counts of a device's keys, so that the client can replenish. */
export interface KeyStatus {
  readonly preKeys: number;
  readonly kyberPreKeys: number;
  /** When the current signed prekey was uploaded (ms); 0 when there is none. */
  readonly signedPreKeyUploadedAt: number;
}

/** The keys claimed for one device: the one-time keys in it are deleted from the directory. */
export interface ClaimedKeys {
  readonly ref: DeviceRef;
  readonly signedPreKey: SignedKey | undefined;
  readonly preKey: OneTimeKey | undefined;
  /** A one-time Kyber prekey, or the last-resort one when none is left. */
  readonly kyberPreKey: SignedKey | undefined;
}

/** Result of {@link KeyStore.setKeys}. */
export type SetKeysResult = { readonly ok: true } | { readonly ok: false; readonly reason: 'too-many-keys' };

/** The key directory. */
export interface KeyStore {
  /** Adds one-time keys (replacing equal ids) and replaces the signed and last-resort keys. Atomic. */
  setKeys(ref: DeviceRef, upload: KeyUpload, maxStored: number, now: number): Promise<SetKeysResult>;
  status(ref: DeviceRef): Promise<KeyStatus>;
  /**
   * Claims a bundle for each device: each one-time key is handed out at most once, even under
   * concurrent claims. One transaction for all devices.
   */
  claim(refs: readonly DeviceRef[]): Promise<ClaimedKeys[]>;
}

/** An envelope to queue for one device. */
export interface NewEnvelope {
  readonly ref: DeviceRef;
  readonly guid: Uint8Array;
  readonly type: number;
  readonly sourceAccountId: AccountId;
  readonly sourceDeviceId: DeviceId;
  readonly destinationDeviceId: DeviceId;
  /** The sender's timestamp (ms). */
  readonly timestamp: number;
  /** When the server accepted it (ms). */
  readonly serverTimestamp: number;
  readonly content: Uint8Array;
  /** Set on the envelopes of a group (group messages and updates). */
  readonly groupId?: GroupId;
}

/** An envelope whose content is stored once and queued for several devices (a fan-out). */
export interface FanOutEnvelope {
  readonly type: number;
  readonly sourceAccountId: AccountId;
  readonly sourceDeviceId: DeviceId;
  readonly timestamp: number;
  readonly serverTimestamp: number;
  readonly content: Uint8Array;
  readonly groupId?: GroupId;
}

/** One destination of a fan-out, with the guid of its copy. */
export interface FanOutRecipient {
  readonly ref: DeviceRef;
  readonly deviceId: DeviceId;
  readonly guid: Uint8Array;
}

/** A queued envelope: `seq` orders a device's queue (increasing in acceptance order, never reused). */
export interface StoredEnvelope extends NewEnvelope {
  readonly seq: number;
}

/** An idempotency key of a send: scoped to the sending device. */
export interface IdempotencyKey {
  /** `<account_id>.<device_id>` of the sender. */
  readonly scope: string;
  readonly key: Uint8Array;
}

/** Options of an insert. */
export interface InsertOptions {
  readonly maxQueueDepth: number;
  readonly idempotency?: IdempotencyKey;
  readonly now: number;
}

/** Result of {@link MessageStore.insert}. */
export type InsertResult =
  | { readonly kind: 'stored'; readonly envelopes: readonly StoredEnvelope[] }
  /** The idempotency key was seen: nothing new was stored; `stored` is what the first send stored. */
  | { readonly kind: 'duplicate'; readonly stored: number }
  /** A destination queue would exceed its limit: nothing was stored. */
  | { readonly kind: 'queue-full' }
  /** A destination device no longer exists (re-registered meanwhile): nothing was stored. */
  | { readonly kind: 'device-gone' };

/** Per-device envelope queues. */
export interface MessageStore {
  /**
   * Queues the envelopes of one send, all or none. Resolves only once they are durable (on disk,
   * fsync'd): the sender's acknowledgement waits for this.
   */
  insert(envelopes: readonly NewEnvelope[], options: InsertOptions): Promise<InsertResult>;
  /**
   * Queues one envelope for every recipient, all or none, storing its content once (however many queues
   * reference it; it is deleted with the last queue row that does). Same durability, limits and
   * idempotency as {@link insert}; each queue keeps its own order, and an ack deletes only its own row.
   */
  insertFanOut(envelope: FanOutEnvelope, recipients: readonly FanOutRecipient[], options: InsertOptions): Promise<InsertResult>;
  /** Up to `limit` envelopes of a device after `afterSeq`, in order, skipping those before `notBefore`. */
  page(ref: DeviceRef, afterSeq: number, limit: number, notBefore: number): Promise<StoredEnvelope[]>;
  /** Deletes an acknowledged envelope (only from `ref`'s queue). Durability of a delete is not awaited. */
  remove(ref: DeviceRef, seq: number): Promise<void>;
  /** How many envelopes a device has queued. */
  depth(ref: DeviceRef): Promise<number>;
  /** How many envelopes are queued in total. */
  totalDepth(): Promise<number>;
  /** Deletes envelopes accepted before `before` and idempotency keys created before `keysBefore`. */
  expire(before: number, keysBefore: number): Promise<number>;
}

/** Who may do what in a group. */
export interface GroupSettingsRecord {
  readonly adminsManageMembers: boolean;
  readonly adminsEditInfo: boolean;
  readonly adminsSend: boolean;
}

/** One member of a group. */
export interface GroupMemberRecord {
  readonly accountId: AccountId;
  readonly admin: boolean;
  /** When the member joined (ms). */
  readonly joinedAt: number;
  /** The revision that added the member. */
  readonly joinedRevision: number;
}

/** A group as the server keeps it. Members are in account id order. */
export interface GroupRecord {
  readonly id: GroupId;
  readonly revision: number;
  readonly settings: GroupSettingsRecord;
  /** Client-encrypted, opaque. */
  readonly attributes: Uint8Array;
  /** SHA-256 of the invite link's password; undefined when the link is off. */
  readonly inviteHash: Uint8Array | undefined;
  readonly createdAt: number;
  readonly creator: AccountId;
  readonly members: readonly GroupMemberRecord[];
}

/** One device of a group member. */
export interface GroupDeviceRecord {
  readonly ref: DeviceRef;
  readonly accountId: AccountId;
  readonly deviceId: DeviceId;
  readonly registrationId: number;
}

/** An envelope the server writes for some accounts of a group (a type 9 update); one guid per copy. */
export interface GroupNotice {
  /** Every device of these accounts gets a copy. */
  readonly accounts: readonly AccountId[];
  readonly envelope: FanOutEnvelope;
}

/**
 * What a change decided on the current state: nothing to write, or the next state (undefined deletes the
 * group) and the notices to queue with it. `result` is handed back to the caller.
 */
export type GroupDecision<R> =
  | { readonly kind: 'unchanged'; readonly result: R }
  | { readonly kind: 'write'; readonly next: GroupRecord | undefined; readonly notices: readonly GroupNotice[]; readonly result: R };

/** A group message to queue, with the checks that must hold in the same transaction. */
export interface GroupSend {
  readonly groupId: GroupId;
  /** The sending device: every other device of every member gets a copy. */
  readonly senderRef: DeviceRef;
  readonly envelope: FanOutEnvelope;
  readonly options: InsertOptions;
  /** Throws to refuse (membership, roles) before anything else is looked at. */
  authorize(group: GroupRecord): void;
  /** Throws to refuse once the recipients are known (after the idempotency check): the devices digest. */
  verify(recipients: readonly GroupDeviceRecord[]): void;
}

/** Result of {@link GroupStore.send}. */
export type GroupSendResult = InsertResult | { readonly kind: 'not-found' };

/** Groups and their members. */
export interface GroupStore {
  get(id: GroupId): Promise<GroupRecord | undefined>;
  /** The ids of the groups an account is a member of. */
  groupsOf(account: AccountId): Promise<GroupId[]>;
  /** Every device of every member, by account id (string order) then device id. */
  devices(id: GroupId): Promise<GroupDeviceRecord[]>;
  /**
   * Reads the group (undefined when it does not exist), lets `decide` compute the change (it may throw to
   * refuse: nothing is written), then writes the next state and queues the notices for every device of
   * their accounts, all in one transaction and durable before it resolves. Notices are exempt from the
   * queue depth limit (a full queue must not block a group's administration).
   */
  apply<R>(id: GroupId, decide: (current: GroupRecord | undefined) => GroupDecision<R>): Promise<{ readonly result: R; readonly envelopes: readonly StoredEnvelope[] }>;
  /** Checks and queues a group message (stored once) in one transaction, as {@link MessageStore.insertFanOut}. */
  send(send: GroupSend): Promise<GroupSendResult>;
}

/** A pending verification code. */
export interface VerificationRecord {
  readonly number: PhoneNumber;
  readonly codeHash: Uint8Array;
  readonly expiresAt: number;
  readonly attempts: number;
}

/** Outcome of checking a code. */
export type CodeCheck = 'ok' | 'wrong' | 'none';

/** Pending verification codes. */
export interface VerificationStore {
  /** Stores a fresh code for the number, replacing any pending one. */
  put(record: VerificationRecord): Promise<void>;
  /**
   * Checks a code atomically: `ok` consumes it; `wrong` counts an attempt and deletes the code once
   * `maxAttempts` wrong attempts were made; `none` when there is no unexpired code.
   */
  check(number: PhoneNumber, codeHash: Uint8Array, now: number, maxAttempts: number): Promise<CodeCheck>;
  /** Deletes codes that expired before `now`. */
  expire(now: number): Promise<number>;
}

/** Who may see an account's presence. */
export type Visibility = 'everyone' | 'nobody' | 'allowed';

/** An account's presence settings and last-seen time. */
export interface PresenceRecord {
  readonly visibility: Visibility;
  readonly allowed: ReadonlySet<AccountId>;
  /** When the account's last socket closed (ms); 0 when never. */
  readonly lastSeen: number;
}

/** Presence settings and last-seen times. */
export interface PresenceStore {
  get(id: AccountId): Promise<PresenceRecord>;
  setSettings(id: AccountId, visibility: Visibility, allowed: readonly AccountId[]): Promise<void>;
  setLastSeen(id: AccountId, at: number): Promise<void>;
}

/** All stores of one backend. */
export interface Storage {
  readonly accounts: AccountStore;
  readonly keys: KeyStore;
  readonly messages: MessageStore;
  readonly verification: VerificationStore;
  readonly presence: PresenceStore;
  readonly groups: GroupStore;
  /** Waits for pending writes, then closes. */
  close(): Promise<void>;
}
