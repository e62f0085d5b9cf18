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
import type { AccountId, E164, MessageId } from '../ids.js';

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
  | 'undecryptable';

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

/** A message of a 1:1 conversation, incoming or outgoing. */
export interface MessageRecord {
  /** `<sender>:<timestamp>`. */
  readonly id: MessageId;
  /** The peer's account (the conversation). */
  readonly conversationId: AccountId;
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
}

/** What the outbox sends. */
export type OutboxKind = 'message' | 'receipt' | 'retry-request';

/**
 * Something to send to one account, kept until the server accepted it, and (for messages) for a day after,
 * so it can be sent again when the recipient asks (a RetryRequest).
 */
export interface OutboxEntry {
  readonly id: string;
  readonly kind: OutboxKind;
  readonly recipientId: AccountId;
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

export interface MessageStore {
  get(id: MessageId): Promise<MessageRecord | undefined>;
  put(message: MessageRecord): Promise<void>;
  remove(id: MessageId): Promise<void>;
  /** A conversation's messages, oldest first; the newest `limit` when given. */
  list(conversationId: AccountId, options?: { limit?: number }): Promise<MessageRecord[]>;
  /** Messages whose `expiresAt` is at or before `now`. */
  expired(now: number): Promise<MessageRecord[]>;
}

export interface OutboxStore {
  get(id: string): Promise<OutboxEntry | undefined>;
  put(entry: OutboxEntry): Promise<void>;
  remove(id: string): Promise<void>;
  /** Entries in state `pending`, oldest first (the first `limit` when given). */
  pending(limit?: number): Promise<OutboxEntry[]>;
  /** The `message` entry that sent `timestamp` to `recipientId`. */
  findMessage(recipientId: AccountId, timestamp: number): Promise<OutboxEntry | undefined>;
  /** Removes entries that are no longer pending and were created before `before`. */
  prune(before: number): Promise<void>;
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
  readonly preKeys: PreKeyRecordStore;
  readonly signedPreKeys: SignedPreKeyRecordStore;
  readonly kyberPreKeys: KyberPreKeyRecordStore;
  readonly sessions: SessionRecordStore;
  readonly contacts: ContactStore;
  readonly messages: MessageStore;
  readonly outbox: OutboxStore;
  readonly envelopes: ProcessedEnvelopeStore;
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
