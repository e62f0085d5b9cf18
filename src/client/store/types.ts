/**
 * The client's storage interface. A {@link ClientStore} holds everything a device keeps: its account and
 * keys, the protocol state (identities, prekeys, sessions), contacts, messages, the outbox and settings.
 *
 * All access goes through {@link ClientStore.transaction}: a transaction sees its own writes, commits when
 * its function resolves and rolls back when it rejects, and transactions run one at a time. Inside one,
 * {@link StoreTx.savepoint} nests a part that rolls back on its own (one envelope of a batch). The stores
 * hold bytes and plain records; `protocol-stores.ts` adapts them to the protocol core's interfaces.
 *
 * Implementations: {@link InMemoryClientStore} here, `SqliteClientStore` for Node in src/cli, and a browser
 * store with the web app.
 */
import type { AccountId, ConversationId, E164, GroupId, MessageId } from '../ids.js';
import type { MediaType } from '../media/crypto.js';

/** Version of the record shapes below; stored with persisted data from day one. */
export const STORE_FORMAT_VERSION = 1;

/** This device's account, written at registration. */
export interface AccountRecord {
  readonly serverUrl: string;
  readonly number: E164;
  readonly accountId: AccountId;
  readonly deviceId: number;
  /** The device's secret for authentication. */
  readonly password: string;
  readonly registrationId: number;
  /** 33-byte serialized public identity key. */
  readonly identityPublicKey: Uint8Array;
  /** 32-byte private identity key. */
  readonly identityPrivateKey: Uint8Array;
  readonly registeredAt: number;
  /**
   * The account key (the primary's identity key, 33 bytes) on a linked companion; undefined on the primary,
   * whose own identity key is the account key.
   */
  readonly accountIdentityKey?: Uint8Array | undefined;
}

/**
 * What the user has established about a contact's identity key.
 * - `unverified`: not compared (the default; a changed key is accepted and reported, as Signal does);
 * - `verified`: the user compared safety numbers and marked them verified;
 * - `verification-required`: the key of a verified contact changed; sending is blocked until the user
 *   verifies the new key (or accepts it as unverified).
 */
export type VerificationStatus = 'unverified' | 'verified' | 'verification-required';

/** A peer account's identity key as we know it. */
export interface IdentityRecord {
  readonly accountId: AccountId;
  /** 33-byte serialized public key. */
  readonly identityKey: Uint8Array;
  readonly status: VerificationStatus;
  readonly firstSeenAt: number;
  /** When the key last changed (undefined for the first key). */
  readonly changedAt: number | undefined;
}

/** A contact: a peer account we have talked to. */
export interface ContactRecord {
  readonly accountId: AccountId;
  /** The phone number, when known. */
  readonly number: E164 | undefined;
  /** Whether the server's directory confirmed that `number` belongs to `accountId` (a sender's own claim is not enough). */
  readonly numberVerified: boolean;
  /** Disappearing-message timer of the conversation, seconds (0 = off). */
  readonly expireTimer: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Status of an outgoing message, in the order it can advance (never backwards, except to `failed`). */
export type OutgoingStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'viewed' | 'failed';
/** Status of an incoming message. */
export type IncomingStatus = 'received' | 'read' | 'viewed';
export type MessageStatus = OutgoingStatus | IncomingStatus;

/** What a stored message row shows. */
export type MessageKind =
  /** A text message (possibly with a quote, view-once, edited or deleted). */
  | 'text'
  /** A change of the disappearing-message timer. */
  | 'timer'
  /** A message that could not be decrypted (a placeholder; a resend replaces it). */
  | 'undecryptable'
  /** A group system message: who created, added, removed, promoted, left, what changed (`groupUpdate`). */
  | 'group-update'
  /** A voice or video call, recorded when it ended (`call` says how: missed, declined, answered, ...). */
  | 'call';

/** How a call recorded in a chat went, as this device saw it. */
export type CallOutcome =
  /** It connected (`durationMs` says how long). */
  | 'answered'
  /** Incoming, never answered here: the caller gave up, it timed out, or it came in while this device was busy. */
  | 'missed'
  /** Declined (incoming: here or on another of our devices; outgoing: by the callee). */
  | 'declined'
  /** Outgoing: the callee was in another call. */
  | 'busy'
  /** Outgoing: nobody answered (timeout or we hung up first). */
  | 'unanswered'
  /** Incoming: another of our devices took it. */
  | 'answered-elsewhere'
  /** The connection could not be set up or was lost. */
  | 'failed';

/** What a `call` message records. */
export interface CallRecord {
  /** 32 lowercase hex digits. */
  readonly callId: string;
  readonly media: 'audio' | 'video';
  readonly outcome: CallOutcome;
  /** The hang-up reason of the wire (normal, declined, timeout, busy, failed, answered-elsewhere, ...). */
  readonly reason: string;
  /** How long it was connected, ms (undefined when it never connected). */
  readonly durationMs: number | undefined;
  /** When it ended, ms. */
  readonly endedAt: number;
}

export interface QuoteRecord {
  readonly timestamp: number;
  readonly authorId: AccountId;
  readonly text: string;
}

export interface ReactionRecord {
  readonly authorId: AccountId;
  readonly emoji: string;
  readonly timestamp: number;
}

/** One member's receipt for an outgoing group message (the newest kind that member sent). */
export interface MemberReceiptRecord {
  readonly accountId: AccountId;
  readonly status: 'delivered' | 'read' | 'viewed';
  /** When it arrived here, ms. */
  readonly at: number;
}

/** What a group system message says happened (from the server's GroupUpdate and the decrypted attributes). */
export interface GroupUpdateRecord {
  readonly revision: number;
  /** Who made the change. */
  readonly actorId: AccountId;
  readonly created: boolean;
  readonly added: readonly AccountId[];
  readonly removed: readonly AccountId[];
  readonly promoted: readonly AccountId[];
  readonly demoted: readonly AccountId[];
  /** The new name, when the change renamed the group. */
  readonly name: string | undefined;
  readonly descriptionChanged: boolean;
  readonly avatarChanged: boolean;
  readonly settingsChanged: boolean;
  readonly inviteLinkChanged: boolean;
  readonly joinedByLink: boolean;
  readonly left: boolean;
}

/** A message of a conversation (1:1 or group), incoming or outgoing. */
export interface MessageRecord {
  /** `<sender>:<timestamp>` (for group system messages: `<actor>:g<revision>:<group id>`). */
  readonly id: MessageId;
  /** The peer's account (1:1) or the group. */
  readonly conversationId: ConversationId;
  readonly senderId: AccountId;
  readonly direction: 'incoming' | 'outgoing';
  /** The sender's timestamp, ms (the message's id in receipts, reactions, edits and deletes). */
  readonly timestamp: number;
  /** When the server accepted it (incoming), ms. */
  readonly serverTimestamp: number | undefined;
  /** When this device stored it, ms. */
  readonly receivedAt: number;
  readonly kind: MessageKind;
  /** The text (empty once deleted, viewed-once, or when undecryptable). */
  readonly body: string;
  readonly quote: QuoteRecord | undefined;
  readonly reactions: readonly ReactionRecord[];
  /** The sender timestamp of the latest edit, when edited. */
  readonly editedAt: number | undefined;
  readonly deleted: boolean;
  readonly viewOnce: boolean;
  /** Disappearing timer of this message, seconds (0 = off). */
  readonly expireTimer: number;
  /** When it disappears, ms; set once the timer starts (on read for incoming, on send for outgoing). */
  readonly expiresAt: number | undefined;
  readonly status: MessageStatus;
  /** For `undecryptable`: the error code. */
  readonly error: string | undefined;
  /** Outgoing group messages: each member's delivery / read / viewed receipt ("read by 3 of 5"); empty otherwise. */
  readonly receipts: readonly MemberReceiptRecord[];
  /** For `group-update`: what changed. */
  readonly groupUpdate: GroupUpdateRecord | undefined;
  /** Files sent with the message (then `body` is their caption); empty for most messages. */
  readonly attachments: readonly AttachmentRecord[];
  /** For `call`: how the call went (absent on every other kind). */
  readonly call?: CallRecord | undefined;
}

/** Where an attachment stands on this device. */
export type AttachmentState =
  /** Announced; not fetched yet (incoming), or being uploaded (outgoing, before the message is sent). */
  | 'pending'
  /** The verified plaintext is saved at `path`. */
  | 'saved'
  /** Fetching or verifying failed (`error` says why); a download may be tried again. */
  | 'failed';

/** A file of a message: the pointer the message carried, and where this device keeps the plaintext. */
export interface AttachmentRecord {
  readonly type: MediaType;
  /** Lowercase hex SHA-256 of the encrypted file. */
  readonly blobId: string;
  readonly mediaKey: Uint8Array;
  readonly plaintextSha256: Uint8Array;
  readonly encryptedSha256: Uint8Array;
  /** Plaintext bytes. */
  readonly size: number;
  readonly contentType: string;
  readonly fileName: string | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly durationMs: number | undefined;
  readonly voiceNote: boolean;
  /** The blurred preview JPEG, when the sender gave one. */
  readonly thumbnail: Uint8Array | undefined;
  /** When the upload completed, ms (the blob expires 30 days later). */
  readonly uploadedAt: number;
  readonly state: AttachmentState;
  /** Where the verified plaintext is (a {@link MediaFiles} location), once saved. */
  readonly path: string | undefined;
  /** The error code of the last failed download. */
  readonly error: string | undefined;
}

/**
 * An upload in progress that can resume after a crash: the media key must be reused so that re-encrypting the
 * same bytes gives the same ciphertext the server already has part of.
 */
export interface UploadJobRecord {
  /** {@link MediaSource.resumeKey}. */
  readonly resumeKey: string;
  readonly type: MediaType;
  readonly mediaKey: Uint8Array;
  /** Plaintext bytes (a source of another size is a different file: the job starts over). */
  readonly size: number;
  /** The server's upload id, once created. */
  readonly uploadId: string | undefined;
  /** Set once the upload completed: the pointer fields the message needs. */
  readonly completed: { readonly blobId: string; readonly plaintextSha256: Uint8Array; readonly encryptedSha256: Uint8Array; readonly uploadedAt: number } | undefined;
  readonly createdAt: number;
}

export interface UploadJobStore {
  get(resumeKey: string): Promise<UploadJobRecord | undefined>;
  put(job: UploadJobRecord): Promise<void>;
  remove(resumeKey: string): Promise<void>;
  /** Removes jobs created before `before` (their server uploads have expired). */
  prune(before: number): Promise<void>;
}

export interface GroupMemberRecord {
  readonly accountId: AccountId;
  readonly admin: boolean;
  readonly joinedAt: number;
  readonly joinedRevision: number;
}

export interface GroupSettingsRecord {
  /** Only admins add, remove, promote and demote (otherwise every member may add, remove non-admins and promote). */
  readonly adminsManageMembers: boolean;
  /** Only admins change name, description and avatar. */
  readonly adminsEditInfo: boolean;
  /** Only admins send. */
  readonly adminsSend: boolean;
}

/** A group as this device knows it: the server's state (members, settings, revision) and the decrypted attributes. */
export interface GroupRecord {
  readonly id: GroupId;
  /** The group's master key (32 bytes): decrypts the attributes; undefined until a member sent it to us. */
  readonly masterKey: Uint8Array | undefined;
  /** The newest server revision applied here. */
  readonly revision: number;
  readonly name: string;
  readonly description: string;
  readonly avatar: Uint8Array | undefined;
  readonly avatarContentType: string | undefined;
  /**
   * The encrypted attributes as the server holds them (GroupState.attributes; empty when none), kept so that
   * a master key that arrives later can decrypt them. (Optional so that records written before it existed still
   * read; stores keep it like every other field.)
   */
  readonly encryptedAttributes?: Uint8Array | undefined;
  readonly members: readonly GroupMemberRecord[];
  readonly settings: GroupSettingsRecord;
  readonly creatorId: AccountId;
  readonly inviteLinkEnabled: boolean;
  /** The invite link's password, when this device made the current link. */
  readonly inviteLinkPassword: Uint8Array | undefined;
  /** Disappearing-message timer of the group, seconds (0 = off). */
  readonly expireTimer: number;
  /** False once we left or were removed: the history stays, sending is refused. */
  readonly active: boolean;
  /** Our current sender key's distribution id (a UUID); undefined before the first send and after a rotation. */
  readonly distributionId: string | undefined;
  /** The devices that hold our current sender key, as `<account id>.<device id>.<registration id>`. */
  readonly senderKeySharedWith: readonly string[];
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What the outbox sends. */
export type OutboxKind = 'message' | 'receipt' | 'retry-request' | 'sender-key';

/**
 * Something to send to one account, kept until the server accepted it, and (for messages) for a day after,
 * so it can be sent again when the recipient asks (a RetryRequest).
 */
export interface OutboxEntry {
  readonly id: string;
  readonly kind: OutboxKind;
  /** The account it goes to, or a group (then it is sent once, encrypted with our sender key, and fanned out). */
  readonly recipientId: ConversationId;
  /** The sender timestamp the content carries. */
  readonly timestamp: number;
  /** The serialized `Content` (plaintext: it never leaves the device unencrypted). */
  readonly content: Uint8Array;
  /** `pending` until the server accepted it for every device; `failed` when that is impossible. */
  readonly state: 'pending' | 'sent' | 'failed';
  /**
   * The encrypted request in flight (serialized SendMessageRequest) and its idempotency key: after a crash or
   * a lost response the same bytes are sent again, so the server stores them at most once.
   */
  readonly request: Uint8Array | undefined;
  readonly attempts: number;
  /** The message this entry delivers, when it is one (its status follows the entry). */
  readonly messageId: MessageId | undefined;
  readonly createdAt: number;
  readonly sentAt: number | undefined;
  /** How many RetryRequests for it were answered (bounded, so two broken peers cannot loop). */
  readonly retriesAnswered: number;
  /** Error code when failed. */
  readonly error: string | undefined;
}

/** JSON-compatible values for settings. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export interface AccountStore {
  get(): Promise<AccountRecord | undefined>;
  put(account: AccountRecord): Promise<void>;
}

export interface SettingsStore {
  get(key: string): Promise<JsonValue | undefined>;
  put(key: string, value: JsonValue): Promise<void>;
}

export interface IdentityStore {
  get(accountId: AccountId): Promise<IdentityRecord | undefined>;
  put(record: IdentityRecord): Promise<void>;
}

/**
 * A linked companion of an account (a contact's or our own), as its verified signed device list named it.
 * The primary (device 1) has none: its identity is the account's ({@link IdentityRecord}).
 */
export interface DeviceIdentityRecord {
  readonly accountId: AccountId;
  readonly deviceId: number;
  /** 33-byte serialized identity key of the device. */
  readonly identityKey: Uint8Array;
  /** The version of the signed device list it came from. */
  readonly listVersion: number;
  readonly firstSeenAt: number;
  /** When its key last changed (undefined for the first key). */
  readonly changedAt: number | undefined;
}

/** The companions of accounts, from their verified device lists. */
export interface DeviceIdentityStore {
  get(accountId: AccountId, deviceId: number): Promise<DeviceIdentityRecord | undefined>;
  put(record: DeviceIdentityRecord): Promise<void>;
  remove(accountId: AccountId, deviceId: number): Promise<void>;
  /** An account's companions, by device id. */
  list(accountId: AccountId): Promise<DeviceIdentityRecord[]>;
}

/** One-time EC prekeys (serialized PreKeyRecords). */
export interface PreKeyRecordStore {
  get(id: number): Promise<Uint8Array | undefined>;
  put(id: number, record: Uint8Array): Promise<void>;
  remove(id: number): Promise<void>;
  /** Removes every one. */
  clear(): Promise<void>;
}

/** Signed prekeys (serialized SignedPreKeyRecords). */
export interface SignedPreKeyRecordStore {
  get(id: number): Promise<Uint8Array | undefined>;
  put(id: number, record: Uint8Array, createdAt: number): Promise<void>;
  remove(id: number): Promise<void>;
  list(): Promise<Array<{ id: number; createdAt: number }>>;
  clear(): Promise<void>;
}

/** Kyber prekeys, one-time and last-resort (serialized KyberPreKeyRecords). */
export interface KyberPreKeyRecordStore {
  get(id: number): Promise<{ record: Uint8Array; lastResort: boolean } | undefined>;
  put(id: number, record: Uint8Array, options: { lastResort: boolean; createdAt: number }): Promise<void>;
  remove(id: number): Promise<void>;
  list(): Promise<Array<{ id: number; lastResort: boolean; createdAt: number }>>;
  clear(): Promise<void>;
}

/** Session records (serialized SessionRecords) per peer device. */
export interface SessionRecordStore {
  get(accountId: AccountId, deviceId: number): Promise<Uint8Array | undefined>;
  put(accountId: AccountId, deviceId: number, record: Uint8Array): Promise<void>;
  remove(accountId: AccountId, deviceId: number): Promise<void>;
  /** The device ids of `accountId` that have a record, ascending. */
  devices(accountId: AccountId): Promise<number[]>;
  clear(): Promise<void>;
}

export interface ContactStore {
  get(accountId: AccountId): Promise<ContactRecord | undefined>;
  getByNumber(number: E164): Promise<ContactRecord | undefined>;
  put(contact: ContactRecord): Promise<void>;
  /** All contacts, by number then account id. */
  list(): Promise<ContactRecord[]>;
}

/** A conversation as the chats list shows it, kept by the store's indexes (no history is read to make it). */
export interface ConversationSummaryRecord {
  readonly conversationId: ConversationId;
  /** The newest message (by sender timestamp, then id: the order of {@link MessageStore.list}). */
  readonly last: MessageRecord;
  /** How many of its messages are unread (`isUnread` of ./unread.ts). */
  readonly unread: number;
}

export interface MessageStore {
  get(id: MessageId): Promise<MessageRecord | undefined>;
  put(message: MessageRecord): Promise<void>;
  remove(id: MessageId): Promise<void>;
  /** A conversation's messages, oldest first; the newest `limit` when given. */
  list(conversationId: ConversationId, options?: { limit?: number }): Promise<MessageRecord[]>;
  /** Messages whose `expiresAt` is at or before `now`. */
  expired(now: number): Promise<MessageRecord[]>;
  /**
   * A conversation's unread messages (`isUnread` of ./unread.ts), oldest first; the oldest `limit` when given.
   * Read through an index of unread messages: the cost follows how many are unread, not the history's length.
   */
  unread(conversationId: ConversationId, options?: { limit?: number }): Promise<MessageRecord[]>;
  /**
   * One summary per conversation that has messages (in no particular order): its newest message and its
   * unread count, from indexes (one newest message read per conversation, unread ones counted by key).
   */
  summaries(): Promise<ConversationSummaryRecord[]>;
}

export interface OutboxStore {
  get(id: string): Promise<OutboxEntry | undefined>;
  put(entry: OutboxEntry): Promise<void>;
  remove(id: string): Promise<void>;
  /** Entries in state `pending`, oldest first (the first `limit` when given). */
  pending(limit?: number): Promise<OutboxEntry[]>;
  /** The `message` entry that sent `timestamp` to `recipientId` (an account or a group). */
  findMessage(recipientId: ConversationId, timestamp: number): Promise<OutboxEntry | undefined>;
  /** Removes entries that are no longer pending and were created before `before`. */
  prune(before: number): Promise<void>;
}

export interface GroupStore {
  get(id: GroupId): Promise<GroupRecord | undefined>;
  put(group: GroupRecord): Promise<void>;
  /** Every group, by name then id. */
  list(): Promise<GroupRecord[]>;
}

/** A sender key (serialized SenderKeyRecord) of one sender device and distribution id, and the group it is for. */
export interface StoredSenderKey {
  readonly groupId: GroupId;
  readonly record: Uint8Array;
}

/** Sender keys: ours (sender = this device) and those members distributed to us. */
export interface SenderKeyRecordStore {
  get(sender: AccountId, deviceId: number, distributionId: string): Promise<StoredSenderKey | undefined>;
  put(sender: AccountId, deviceId: number, distributionId: string, key: StoredSenderKey): Promise<void>;
  /** Removes the group's sender keys: all of them, or only those of `sender`'s devices. */
  removeGroup(groupId: GroupId, sender?: AccountId): Promise<void>;
}

/** Envelope guids already processed (dedupe of redelivered envelopes). */
export interface ProcessedEnvelopeStore {
  has(guid: string): Promise<boolean>;
  add(guid: string, at: number): Promise<void>;
  /** Forgets guids processed before `before` (the server drops envelopes after 30 days). */
  prune(before: number): Promise<void>;
}

/** The stores as one transaction sees them. */
export interface StoreTx {
  readonly account: AccountStore;
  readonly settings: SettingsStore;
  readonly identities: IdentityStore;
  readonly deviceIdentities: DeviceIdentityStore;
  readonly preKeys: PreKeyRecordStore;
  readonly signedPreKeys: SignedPreKeyRecordStore;
  readonly kyberPreKeys: KyberPreKeyRecordStore;
  readonly sessions: SessionRecordStore;
  readonly contacts: ContactStore;
  readonly messages: MessageStore;
  readonly outbox: OutboxStore;
  readonly envelopes: ProcessedEnvelopeStore;
  readonly groups: GroupStore;
  readonly senderKeys: SenderKeyRecordStore;
  readonly uploads: UploadJobStore;
  /** Runs `fn` so that, when it rejects, only its own writes roll back (then the rejection propagates). */
  savepoint<T>(fn: () => Promise<T>): Promise<T>;
}

/** A client's storage. */
export interface ClientStore {
  /**
   * Runs `fn` in a transaction: all its writes commit together when it resolves, none when it rejects.
   * Transactions run one at a time (a second waits for the first); never start one inside another (use
   * `savepoint`), and never wait for the network inside one.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
