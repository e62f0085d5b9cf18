/**
 * The server's storage, as narrow interfaces so that a PostgreSQL implementation can follow the SQLite
 * one. All methods are async; implementations keep each method atomic (one transaction). Records are
 * plain data; bytes are `Uint8Array`. Nothing here holds plaintext: envelope content is ciphertext the
 * server cannot read.
 */
import type { AccountId, DeviceId, DeviceRef, GroupId, PhoneNumber } from '../ids.js';
import type { BackupStore } from './backup-store.js';
import type { PushStore } from './push-store.js';

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
  /** The device's own 33-byte identity key (device 1: the account's). */
  readonly identityKey: Uint8Array;
  /** A companion's serialized `DeviceIdentity` (signed by the account and the device); undefined for device 1. */
  readonly identity: Uint8Array | undefined;
  /**
   * Required and reachable: device 1 always, a companion while the account's current signed device list
   * names it. A companion that registered but is not listed yet receives nothing and is not required.
   */
  readonly listed: boolean;
  /** Client-encrypted device name, or empty. */
  readonly name: Uint8Array;
  /** When the device registered (ms). */
  readonly createdAt: number;
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
   * identity and deletes its devices (companions included) with their keys, queues and presence settings,
   * its provisioning codes and its signed device list. Creates device 1. Atomic.
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

/**
 * Blobs a send names (`blob_ids`) whose fetch the destination devices are to report (retention
 * `fetched`): each of these blobs that is stored and created from `notBefore` on gets every device the
 * envelopes were queued for as a pending fetcher, in the transaction that queues them. Unknown or
 * expired ids are skipped.
 */
export interface BlobFetchRegistration {
  readonly blobIds: readonly string[];
  readonly notBefore: number;
}

/** Options of an insert. */
export interface InsertOptions {
  readonly maxQueueDepth: number;
  readonly idempotency?: IdempotencyKey;
  readonly now: number;
  /** Registers pending blob fetchers with the envelopes (not when the idempotency key was seen). */
  readonly blobFetches?: BlobFetchRegistration;
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
  /**
   * Every required device of every member (its primary and the companions its signed device list names,
   * see {@link DeviceRecord.listed}), by account id (string order) then device id.
   */
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

/** A one-time provisioning code (stored as its SHA-256) that lets one companion register. */
export interface ProvisioningCodeRecord {
  readonly accountId: AccountId;
  /** The device id reserved for the companion. */
  readonly deviceId: DeviceId;
  readonly expiresAt: number;
}

/** Result of {@link DeviceStore.reserve}. */
export type ReserveResult = { readonly kind: 'reserved'; readonly deviceId: DeviceId } | { readonly kind: 'full' };

/** What linking a companion writes. */
export interface NewLinkedDevice {
  /** SHA-256 of the provisioning code. */
  readonly codeHash: Uint8Array;
  /** The account and device id the code reserved (the caller checked the signatures for these). */
  readonly accountId: AccountId;
  readonly deviceId: DeviceId;
  /** The account key the signatures were checked against: the link fails if the account re-registered. */
  readonly accountKey: Uint8Array;
  readonly identityKey: Uint8Array;
  /** Serialized `DeviceIdentity`. */
  readonly identity: Uint8Array;
  readonly registrationId: number;
  readonly passwordHash: Uint8Array;
  readonly name: Uint8Array;
  readonly signedPreKey: SignedKey;
  readonly kyberLastResortKey: SignedKey;
  readonly maxCompanions: number;
  readonly now: number;
}

/** Result of {@link DeviceStore.link}. */
export type LinkResult =
  | { readonly kind: 'linked'; readonly device: DeviceRecord }
  /** No unexpired, unused code with this hash for that account and device id (or the account re-registered). */
  | { readonly kind: 'invalid-code' }
  /** The account already has its maximum of companions. */
  | { readonly kind: 'full' };

/** The newest signed device list of an account. */
export interface StoredDeviceList {
  readonly version: number;
  /** The serialized `SignedDeviceList` as the primary uploaded it. */
  readonly signedList: Uint8Array;
  readonly updatedAt: number;
}

/** A signed device list to store (already verified against the account key by the caller). */
export interface NewDeviceList {
  readonly version: number;
  readonly signedList: Uint8Array;
  /** The companions it names, with the identity key it names each with. */
  readonly devices: ReadonlyMap<DeviceId, Uint8Array>;
  /** The account key the list was verified with: refused if the account re-registered meanwhile. */
  readonly accountKey: Uint8Array;
  readonly now: number;
}

/** Result of {@link DeviceStore.putDeviceList}. */
export type PutDeviceListResult =
  | { readonly kind: 'stored' }
  /** The stored list's version is not lower: nothing changed. */
  | { readonly kind: 'stale-version'; readonly current: number }
  /** A listed device does not exist, or exists with another identity key (or the account key changed). */
  | { readonly kind: 'mismatch' };

/** Linked devices: provisioning codes, linking, removal and the signed device list. */
export interface DeviceStore {
  /**
   * Reserves the lowest device id from 2 that no device uses and no unexpired unused code holds, with a
   * code (its hash) for it; `full` when the companions and pending reservations already reach
   * `maxCompanions`. Atomic.
   */
  reserve(accountId: AccountId, codeHash: Uint8Array, expiresAt: number, maxCompanions: number, now: number): Promise<ReserveResult>;
  /** The unexpired, unused code with this hash. */
  pendingCode(codeHash: Uint8Array, now: number): Promise<ProvisioningCodeRecord | undefined>;
  /**
   * Consumes the code and creates the companion with its keys, in one transaction: of two concurrent
   * links with one code, exactly one succeeds. The device is not listed.
   */
  link(device: NewLinkedDevice): Promise<LinkResult>;
  /** Deletes a companion with its keys and queue, atomically; its ref, or undefined when it did not exist. Never device 1. */
  remove(accountId: AccountId, deviceId: DeviceId): Promise<DeviceRef | undefined>;
  /** The account's newest signed device list. */
  deviceList(accountId: AccountId): Promise<StoredDeviceList | undefined>;
  /**
   * Stores a newer signed list and marks exactly the companions it names as listed, atomically, after
   * checking (in the same transaction) the version and that every named device exists with that key.
   */
  putDeviceList(accountId: AccountId, list: NewDeviceList): Promise<PutDeviceListResult>;
  /** Deletes codes that expired before `now`. */
  expire(now: number): Promise<number>;
}

/** Encrypted provisioning messages waiting for the companion that showed the QR code. */
export interface ProvisioningStore {
  /** Stores (or replaces) the envelope of a link id. */
  put(linkId: string, body: Uint8Array, expiresAt: number): Promise<void>;
  /** Returns and deletes the unexpired envelope of a link id, atomically (a second read finds nothing). */
  take(linkId: string, now: number): Promise<Uint8Array | undefined>;
  /** Deletes envelopes that expired before `now`. */
  expire(now: number): Promise<number>;
}

/** The metadata of one stored blob. */
export interface BlobRecord {
  /** Hex SHA-256 of the bytes. */
  readonly id: string;
  readonly accountId: AccountId;
  readonly size: number;
  readonly createdAt: number;
}

/** Result of {@link BlobIndex.add}. */
export type BlobAddResult =
  | { readonly kind: 'added' }
  /** Already stored: its expiry restarts, nothing else changes. */
  | { readonly kind: 'exists'; readonly record: BlobRecord }
  /** The uploader's stored blobs plus this one would exceed the quota: nothing was recorded. */
  | { readonly kind: 'quota' };

/** A resumable upload in progress (its bytes so far are a partial file of the {@link BlobStore}). */
export interface BlobUploadRecord {
  /** Random upload id (32 hex digits). */
  readonly id: string;
  /** The id the finished blob must hash to; undefined when the client names it only with the last chunk. */
  readonly blobId: string | undefined;
  readonly accountId: AccountId;
  /** The total length declared when the upload was created (reserved against the quota). */
  readonly length: number;
  /** The last time a chunk arrived (or the creation); starts the upload's expiry. */
  readonly updatedAt: number;
}

/** The metadata of the blob files (the bytes live in a {@link BlobStore}). */
export interface BlobIndex {
  get(id: string, notBefore: number): Promise<BlobRecord | undefined>;
  /**
   * Records a blob, checking the uploader's quota (its unexpired blobs and the lengths of its uploads in
   * progress) in the same transaction.
   */
  add(record: BlobRecord, quotaBytes: number): Promise<BlobAddResult>;
  /** Bytes of unexpired blobs the account uploaded plus the declared lengths of its uploads in progress. */
  usage(accountId: AccountId, notBefore: number): Promise<number>;
  /** Deletes the records (and their fetch marks and pending fetches) created before `before`; returns their ids (the caller deletes the files). */
  expire(before: number): Promise<string[]>;
  /**
   * Records an upload in progress if the account's usage (blobs created from `notBefore` on, and uploads)
   * plus its length stays within the quota; false (nothing recorded) otherwise.
   */
  createUpload(upload: BlobUploadRecord, quotaBytes: number, notBefore: number): Promise<boolean>;
  getUpload(uploadId: string): Promise<BlobUploadRecord | undefined>;
  /** The account's upload in progress of `blobId`, if any (so a restarted client resumes it). */
  findUpload(accountId: AccountId, blobId: string): Promise<BlobUploadRecord | undefined>;
  /** Restarts an upload's expiry. */
  touchUpload(uploadId: string, now: number): Promise<void>;
  /**
   * In one transaction: deletes the upload and records its blob (or restarts the expiry of the blob if it
   * exists). No quota check: the upload's length was reserved.
   */
  completeUpload(uploadId: string, record: BlobRecord): Promise<BlobAddResult>;
  /** Deletes an upload record; false when there was none. */
  deleteUpload(uploadId: string): Promise<boolean>;
  /** Ids of uploads last updated before `before` (the caller deletes them one by one). */
  staleUploads(before: number): Promise<string[]>;
  /** Ids of all uploads in progress (startup: partial files without a record are deleted). */
  uploadIds(): Promise<string[]>;
  /** The device has fetched the blob: deletes its pending fetch, if any. */
  markFetched(blobId: string, device: DeviceRef): Promise<void>;
  /**
   * Retention `fetched`: deletes the records of blobs that were named by a message (have a fetch mark),
   * have no pending fetcher left, and were last named before `registeredBefore`; returns their ids (the
   * caller deletes the files). Their marks go with them.
   */
  expireFetched(registeredBefore: number): Promise<string[]>;
}

/** All stores of one backend. */
export interface Storage {
  readonly accounts: AccountStore;
  readonly keys: KeyStore;
  readonly messages: MessageStore;
  readonly verification: VerificationStore;
  readonly presence: PresenceStore;
  readonly groups: GroupStore;
  readonly devices: DeviceStore;
  readonly provisioning: ProvisioningStore;
  readonly blobs: BlobIndex;
  readonly backups: BackupStore;
  /** Web Push subscriptions and the VAPID key pair (`push-store.ts`). */
  readonly push: PushStore;
  /** Waits for pending writes, then closes. */
  close(): Promise<void>;
}
