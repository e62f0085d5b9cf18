/**
 * The Client: one registered device, composed of small parts that each do one thing:
 *
 * - transport: {@link WebSocketTransport} (pushes and requests) and {@link HttpTransport} (requests while the
 *   socket is down), behind one {@link Requester};
 * - {@link MessageReceiver}: the receive pipeline (decrypt, persist, commit, ack);
 * - {@link MessageSender} and {@link Outbox}: encryption per device, device-set repair, exactly-once retries;
 * - {@link SessionManager}: bundles and sessions; {@link KeyManager}: prekey upload, replenishment, rotation;
 * - {@link Outgoing}: what the user sends; {@link ContactDirectory}: numbers and accounts;
 * - identity.ts: safety numbers and verification.
 *
 * The Client wires them together, turns committed batches into typed events, and exposes the user's verbs.
 */
import type { CryptoProvider } from '../protocol/index.js';
import { ServiceApi } from './api.js';
import { SerialQueue, drop } from './async.js';
import { checkText } from './content.js';
import { ContactDirectory, type ContactView } from './contacts.js';
import type { DevicesChangeNotice } from './devices.js';
import { Emitter } from './emitter.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ClientEvents, Sender } from './events.js';
import { GroupManager, type GroupChange, type GroupOptions } from './groups/manager.js';
import { GroupSender } from './groups/sender.js';
import type { GroupView } from './groups/state.js';
import { isE164, isGroupId, type AccountId, type ConversationId, type E164, type GroupId, type MessageId } from './ids.js';
import { safetyNumber, setVerificationStatus, type SafetyNumber } from './identity.js';
import { decodeHistoryBundle, importHistoryBundle } from './history.js';
import { KeyManager, type KeyPolicy, type MaintenanceReport } from './keys.js';
import { decryptBlob } from './link-crypto.js';
import { LinkedDevices, type DeviceView } from './linked-devices.js';
import { PRIMARY_DEVICE_ID } from '../protocol/device-identity.js';
import { fromHex } from '../protocol/index.js';
import { Outbox } from './outbox.js';
import { Outgoing, TimestampClock, type TextOptions } from './outgoing.js';
import { requireAccount, type IdentityChangeNotice } from './protocol-stores.js';
import { MessageReceiver, PENDING_HISTORY_KEY, RESEND_WINDOW_MS, type ReceivedBatch, type ReceivedItem } from './receiver.js';
import { DEFAULT_SEND_POLICY, MessageSender, type SendPolicy } from './sender.js';
import { SessionManager } from './sessions.js';
import type { AccountRecord, ClientStore, ContactRecord, GroupSettingsRecord, IdentityRecord, MessageRecord } from './store/types.js';
import type { BackoffOptions } from './transport/backoff.js';
import { HttpTransport, type FetchLike } from './transport/http.js';
import type { ApiRequest, ApiResponse, RequestOptions, Requester } from './transport/types.js';
import { ConnectionState, WebSocketTransport, type WebSocketConstructor } from './transport/websocket.js';

export interface ClientOptions {
  readonly store: ClientStore;
  readonly crypto: CryptoProvider;
  /** Default `globalThis.WebSocket` (in Node: pass the `ws` package's WebSocket). */
  readonly WebSocket?: WebSocketConstructor | undefined;
  /** Default `globalThis.fetch`. */
  readonly fetch?: FetchLike | undefined;
  /** Default `Date.now`. */
  readonly now?: (() => number) | undefined;
  readonly transport?: {
    readonly requestTimeoutMs?: number;
    readonly connectTimeoutMs?: number;
    readonly keepAliveMs?: number;
    readonly backoff?: BackoffOptions;
  };
  readonly receiver?: { readonly batchSize?: number; readonly batchDelayMs?: number };
  readonly send?: Partial<SendPolicy> | undefined;
  readonly keys?: Partial<KeyPolicy> | undefined;
  readonly outbox?: { readonly concurrency?: number; readonly receiptDelayMs?: number; readonly retryLaterMs?: number };
  /** Send delivery receipts (default true). */
  readonly deliveryReceipts?: boolean | undefined;
  /** Send read and viewed receipts (default true). */
  readonly readReceipts?: boolean | undefined;
  /** Check keys (replenish, rotate) on connecting and after PreKey messages (default true). */
  readonly maintainKeys?: boolean | undefined;
  /** How often disappearing messages are looked for while connected, ms (default 30,000; 0 = only on demand). */
  readonly expiryCheckMs?: number | undefined;
}

/** Settings key set once this companion removed itself (logged out): the profile cannot be opened again. */
const REMOVED_KEY = 'account.removed';

/** The server keeps envelopes 30 days: guids of processed ones are remembered a day longer. */
const PROCESSED_GUID_TTL_MS = 31 * 24 * 3600_000;

/** Uses the socket when it is up, HTTP otherwise. */
class RoutedRequester implements Requester {
  constructor(
    readonly ws: WebSocketTransport,
    readonly http: HttpTransport,
  ) {}

  request(req: ApiRequest, options?: RequestOptions): Promise<ApiResponse> {
    return this.ws.state === ConnectionState.Connected ? this.ws.request(req, options) : this.http.request(req, options);
  }
}

export class Client {
  readonly #o: ClientOptions;
  readonly #account: AccountRecord;
  readonly #events: Emitter<ClientEvents>;
  readonly #ws: WebSocketTransport;
  readonly #api: ServiceApi;
  readonly #clock: TimestampClock;
  readonly #sessions: SessionManager;
  readonly #sender: MessageSender;
  readonly #groupSender: GroupSender;
  readonly #groups: GroupManager;
  readonly #outbox: Outbox;
  readonly #receiver: MessageReceiver;
  readonly #outgoing: Outgoing;
  readonly #contacts: ContactDirectory;
  readonly #keys: KeyManager;
  readonly #devices: LinkedDevices;
  #importingHistory = false;
  /** Post-commit processing of received batches, in order (number confirmation, events). */
  readonly #post = new SerialQueue();
  /** Background follow-ups in flight (see #background). */
  readonly #tasks = new Set<Promise<void>>();
  #keyTimer: ReturnType<typeof setTimeout> | undefined;
  #expiryTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  private constructor(options: ClientOptions, account: AccountRecord) {
    this.#o = options;
    this.#account = account;
    const now = options.now ?? Date.now;
    this.#clock = new TimestampClock(now);
    this.#events = new Emitter<ClientEvents>((error) => this.#events.emit('error', { context: 'listener', error }));
    const credentials = { accountId: account.accountId, deviceId: account.deviceId, password: account.password };
    const http = new HttpTransport({ url: account.serverUrl, credentials, fetch: options.fetch, requestTimeoutMs: options.transport?.requestTimeoutMs });
    this.#ws = new WebSocketTransport({
      url: account.serverUrl,
      credentials,
      WebSocket: options.WebSocket,
      requestTimeoutMs: options.transport?.requestTimeoutMs,
      connectTimeoutMs: options.transport?.connectTimeoutMs,
      keepAliveMs: options.transport?.keepAliveMs,
      backoff: options.transport?.backoff,
      onRequest: (req) => this.#onPush(req.verb, req.path, req.body),
      checkCredentials: async () => {
        const res = await http.request({ verb: 'GET', path: '/v1/accounts/whoami' }, { timeoutMs: 5_000 });
        return res.status !== 401;
      },
    });
    this.#ws.on('state', (change) => {
      this.#events.emit('state', change);
      if (change.state === ConnectionState.Connected) {
        this.#outbox.retryFailedSoon();
        this.#scheduleKeyMaintenance(0);
        drop(this.#post.run(() => this.#housekeeping()), (error) => this.#events.emit('error', { context: 'housekeeping', error }));
      }
    });
    this.#api = new ServiceApi(new RoutedRequester(this.#ws, http));
    const api = (): ServiceApi => this.#api;
    const onIdentityChanged = (n: IdentityChangeNotice): void => drop(this.#post.run(() => this.#emitIdentityChange(n)));
    const onMessageStatus = (message: MessageRecord): void => this.#events.emit('messageStatus', { message });
    const onDevicesChanged = (n: DevicesChangeNotice): void => drop(this.#post.run(async () => this.#events.emit('devicesChanged', n)));
    this.#sessions = new SessionManager({ crypto: options.crypto, store: options.store, api, now, onIdentityChanged, onDevicesChanged });
    this.#sender = new MessageSender({
      crypto: options.crypto,
      store: options.store,
      api,
      sessions: this.#sessions,
      now,
      policy: options.send,
      onIdentityChanged,
      onMessageStatus,
      deliverGroup: (id, o) => this.#groupSender.deliver(id, o),
    });
    this.#groupSender = new GroupSender({
      crypto: options.crypto,
      store: options.store,
      api,
      sessions: this.#sessions,
      now,
      nextTimestamp: () => this.#clock.next(),
      policy: { ...DEFAULT_SEND_POLICY, ...options.send },
      deliverPairwise: (id, signal) => this.#outbox.deliver(id, signal),
      finish: (entry, state, error) => this.#sender.finish(entry, state, error),
      onIdentityChanged,
    });
    this.#outbox = new Outbox({
      store: options.store,
      sender: this.#sender,
      now,
      concurrency: options.outbox?.concurrency,
      receiptDelayMs: options.outbox?.receiptDelayMs,
      retryLaterMs: options.outbox?.retryLaterMs,
      onError: (error) => this.#events.emit('error', { context: 'outbox', error }),
    });
    this.#receiver = new MessageReceiver({
      crypto: options.crypto,
      store: options.store,
      now,
      nextTimestamp: () => this.#clock.next(),
      batchSize: options.receiver?.batchSize,
      batchDelayMs: options.receiver?.batchDelayMs,
      deliveryReceipts: options.deliveryReceipts,
      onBatch: (batch) => drop(this.#post.run(() => this.#afterBatch(batch)), (error) => this.#events.emit('error', { context: 'receive', error })),
    });
    this.#outgoing = new Outgoing({ store: options.store, outbox: this.#outbox, sender: this.#sender, groups: this.#groupSender, clock: this.#clock });
    this.#contacts = new ContactDirectory({ store: options.store, api, now });
    this.#groups = new GroupManager({
      crypto: options.crypto,
      store: options.store,
      api,
      contacts: this.#contacts,
      groups: this.#groupSender,
      now,
      onError: (error) => this.#events.emit('error', { context: 'groups', error }),
    });
    this.#keys = new KeyManager({ crypto: options.crypto, store: options.store, api, now, policy: options.keys });
    this.#devices = new LinkedDevices({
      crypto: options.crypto,
      store: options.store,
      api,
      now,
      nextTimestamp: () => this.#clock.next(),
      kick: () => this.#outbox.kick(),
      onDevicesChanged,
    });
  }

  /** A client for the account in `options.store` (`CLIENT_NOT_REGISTERED` when there is none). */
  static async open(options: ClientOptions): Promise<Client> {
    const { account, removed } = await options.store.transaction(async (tx) => ({ account: await requireAccount(tx), removed: await tx.settings.get(REMOVED_KEY) }));
    if (removed === true) throw new ClientError(ClientErrorCode.NotRegistered, 'this device was removed from its account: link a new profile');
    return new Client(options, account);
  }

  get accountId(): AccountId {
    return this.#account.accountId;
  }

  get deviceId(): number {
    return this.#account.deviceId;
  }

  get number(): E164 {
    return this.#account.number;
  }

  /** Whether this is the account's primary device (device 1, the one that registered the number). */
  get isPrimary(): boolean {
    return this.#account.deviceId === PRIMARY_DEVICE_ID && this.#account.accountIdentityKey === undefined;
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#ws.state;
  }

  /** The typed API of the server (for what the Client does not wrap). */
  get api(): ServiceApi {
    return this.#api;
  }

  /** Adds an event listener; returns a function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * Connects (and stays connected, reconnecting with backoff): queued messages arrive as events, the outbox
   * resumes what was not sent yet, and keys are checked.
   */
  connect(): void {
    this.#ensureOpen();
    this.#ws.connect();
    this.#outbox.kick();
    const every = this.#o.expiryCheckMs ?? 30_000;
    if (every > 0 && this.#expiryTimer === undefined) {
      this.#expiryTimer = setInterval(() => drop(this.purgeExpired(), (error) => this.#events.emit('error', { context: 'expiry', error })), every);
    }
  }

  /** Resolves once connected (or rejects on timeout / abort / close). */
  waitUntilConnected(options?: RequestOptions): Promise<void> {
    return this.#ws.waitUntilConnected(options);
  }

  /**
   * Resolves when everything received so far has been processed and emitted, nothing deliverable is left
   * in the outbox (receipts and retry requests included), and the follow-ups it started (a history import,
   * device-list and group refreshes) have finished.
   */
  async whenIdle(): Promise<void> {
    for (let round = 0; round < 3; round++) {
      await this.#receiver.whenIdle();
      await this.#post.run(async () => undefined);
      await this.#outbox.whenIdle();
      await Promise.allSettled([...this.#tasks]);
    }
  }

  /** Resumes delivery of whatever the outbox still holds (pending sends of an earlier run). */
  resumeOutbox(): void {
    this.#outbox.kick();
  }

  /** Disconnects and stops background work. Committed state is safe; unacked pushes are redelivered later. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#keyTimer);
    clearInterval(this.#expiryTimer);
    this.#ws.close();
    this.#outbox.stop();
    await this.#receiver.whenIdle();
    await this.#post.run(async () => undefined);
  }

  // ---- sending ---------------------------------------------------------------------------------------

  /** The account of a phone number (or an account id passed through). */
  async resolve(to: string, options?: RequestOptions): Promise<AccountId> {
    if (to === this.#account.number || to === this.#account.accountId) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'that is this account: notes to self need linked devices (a later milestone)');
    }
    if (isE164(to)) return this.#contacts.resolve(to, options);
    const contact = await this.#o.store.transaction((tx) => tx.contacts.get(to as AccountId));
    if (contact) return contact.accountId;
    throw new ClientError(ClientErrorCode.InvalidArgument, 'recipient must be an E.164 phone number or a known account id');
  }

  /** A conversation: a group id as it is, else the account of a number or known account id. */
  async #conversation(to: string, options?: RequestOptions): Promise<ConversationId> {
    if (isGroupId(to)) return to;
    return this.resolve(to, options);
  }

  /**
   * Sends a text message to a contact or a group; resolves once the server accepted it for every device of the
   * recipient (for a group: once, for every member device, encrypted with our sender key).
   */
  async sendText(to: string, text: string, options: TextOptions = {}): Promise<MessageRecord> {
    this.#ensureOpen();
    checkText(text);
    return this.#outgoing.sendText(await this.#conversation(to, { signal: options.signal }), text, options);
  }

  /** Reacts to a stored message (or removes the reaction). */
  async react(target: MessageId, emoji: string, options: { remove?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    this.#ensureOpen();
    await this.#outgoing.react(await this.#message(target), emoji, options.remove ?? false, options.signal);
  }

  /** Edits one of our text messages. */
  async edit(target: MessageId, text: string, signal?: AbortSignal): Promise<void> {
    this.#ensureOpen();
    await this.#outgoing.edit(await this.#message(target), text, signal);
  }

  /** Deletes one of our messages for everyone. */
  async deleteForEveryone(target: MessageId, signal?: AbortSignal): Promise<void> {
    this.#ensureOpen();
    await this.#outgoing.deleteForEveryone(await this.#message(target), signal);
  }

  /** Marks a conversation's unread messages (or the given ones) read and sends a read receipt. */
  async markRead(conversation: string, ids?: readonly MessageId[]): Promise<MessageRecord[]> {
    this.#ensureOpen();
    const conversationId = await this.#conversation(conversation);
    return this.#outgoing.markRead(conversationId, { ids, sendReceipt: this.#o.readReceipts !== false });
  }

  /** Opens a view-once message: returns it with its text, which is then erased here. */
  async markViewed(id: MessageId): Promise<MessageRecord> {
    this.#ensureOpen();
    return this.#outgoing.markViewed(id, this.#o.readReceipts !== false);
  }

  /** Sends a typing indicator (ephemeral). */
  async sendTyping(to: string, started = true, options?: RequestOptions): Promise<void> {
    this.#ensureOpen();
    await this.#outgoing.sendTyping(await this.#conversation(to, options), started, options);
  }

  /** Sets a conversation's disappearing-message timer, seconds (0 = off). */
  async setExpireTimer(to: string, seconds: number, signal?: AbortSignal): Promise<MessageRecord> {
    this.#ensureOpen();
    return this.#outgoing.setExpireTimer(await this.#conversation(to, { signal }), seconds, signal);
  }

  /** Deletes messages whose disappearing timer ran out (an `expired` event names them); resolves with how many. */
  async purgeExpired(): Promise<number> {
    const now = this.#clock.now();
    const ids = await this.#o.store.transaction(async (tx) => {
      const expired = await tx.messages.expired(now);
      for (const m of expired) await tx.messages.remove(m.id);
      return expired.map((m) => m.id);
    });
    if (ids.length > 0) this.#events.emit('expired', { ids });
    return ids.length;
  }

  // ---- reading -------------------------------------------------------------------------------------------

  /** A conversation's messages, oldest first (the newest `limit` when given). */
  async messages(conversation: string, options: { limit?: number } = {}): Promise<MessageRecord[]> {
    const conversationId = await this.#conversation(conversation);
    return this.#o.store.transaction((tx) => tx.messages.list(conversationId, options));
  }

  /** One stored message. */
  async message(id: MessageId): Promise<MessageRecord | undefined> {
    return this.#o.store.transaction((tx) => tx.messages.get(id));
  }

  /** All contacts, with their identity status. */
  contacts(): Promise<ContactView[]> {
    return this.#contacts.list();
  }

  // ---- groups --------------------------------------------------------------------------------------------

  /**
   * Creates a group with this account as its only admin and `members` (E.164 numbers or account ids) as
   * members; our sender key and the group's master key go to every member device.
   */
  createGroup(
    name: string,
    members: readonly string[],
    options?: { description?: string; settings?: Partial<GroupSettingsRecord>; signal?: AbortSignal },
  ): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.create(name, members, options);
  }

  /** Adds members (`CLIENT_FORBIDDEN` when only admins may and we are not one; `CLIENT_GROUP_FULL` past 1,024). */
  addMembers(groupId: string, members: readonly string[], options?: GroupOptions): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.addMembers(groupId, members, options);
  }

  /** Removes members; every remaining member replaces its sender key, so they cannot read what follows. */
  removeMembers(groupId: string, members: readonly string[], options?: GroupOptions): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.removeMembers(groupId, members, options);
  }

  /** Makes members admins. */
  promote(groupId: string, members: readonly string[], options?: GroupOptions): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.promote(groupId, members, options);
  }

  /** Makes admins plain members. */
  demote(groupId: string, members: readonly string[], options?: GroupOptions): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.demote(groupId, members, options);
  }

  /** Changes the group's name, description, avatar (null removes it) and/or settings. */
  updateGroup(groupId: string, change: GroupChange, options?: GroupOptions): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.update(groupId, change, options);
  }

  /** Leaves the group (its history stays here). */
  leaveGroup(groupId: string, options?: GroupOptions): Promise<void> {
    this.#ensureOpen();
    return this.#groups.leave(groupId, options);
  }

  /** Creates an invite link (`parley://join#...`; it carries the master key: share it only with people to invite). */
  createInviteLink(groupId: string, options?: GroupOptions): Promise<string> {
    this.#ensureOpen();
    return this.#groups.createInviteLink(groupId, options);
  }

  /** Turns the group's invite link off. */
  revokeInviteLink(groupId: string, options?: GroupOptions): Promise<void> {
    this.#ensureOpen();
    return this.#groups.revokeInviteLink(groupId, options);
  }

  /** Joins a group through an invite link. */
  joinGroup(link: string, options?: GroupOptions): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.join(link, options);
  }

  /** A group this device knows, or undefined. */
  group(groupId: string): Promise<GroupView | undefined> {
    return this.#groups.view(groupId);
  }

  /** Every group this device knows (also those it left), by name. */
  groups(): Promise<GroupView[]> {
    return this.#groups.list();
  }

  /** Fetches a group's state from the server. */
  refreshGroup(groupId: string, options?: GroupOptions): Promise<GroupView> {
    this.#ensureOpen();
    return this.#groups.refresh(groupId, options);
  }

  // ---- identity ------------------------------------------------------------------------------------------

  /** The safety number of the conversation with `contact`. */
  async safetyNumber(contact: string): Promise<SafetyNumber> {
    return safetyNumber(this.#o.crypto, this.#o.store, await this.resolve(contact));
  }

  /**
   * Marks the contact's current identity key verified (after comparing safety numbers). Pass the key the
   * safety number was computed from, so that a key that changed meanwhile is not verified by mistake.
   */
  async markVerified(contact: string, identityKey?: Uint8Array): Promise<IdentityRecord> {
    return setVerificationStatus(this.#o.store, await this.resolve(contact), 'verified', identityKey);
  }

  /** Accepts the contact's current key without verifying it (unblocks sending after a verified key changed). */
  async markUnverified(contact: string): Promise<IdentityRecord> {
    return setVerificationStatus(this.#o.store, await this.resolve(contact), 'unverified');
  }

  // ---- linked devices ------------------------------------------------------------------------------------

  /**
   * Links the companion that shows `uri` (`parley://link/...`; the primary only: `CLIENT_NOT_PRIMARY`): vouches
   * for its key, waits until it registered, publishes the new signed device list and sends it the recent history.
   */
  linkDevice(uri: string, options: { signal?: AbortSignal | undefined } = {}): Promise<{ deviceId: number }> {
    this.#ensureOpen();
    return this.#devices.link(uri, options);
  }

  /** This account's devices (from the server), and which the signed device list names. */
  devices(options?: RequestOptions): Promise<DeviceView[]> {
    this.#ensureOpen();
    return this.#devices.list(options);
  }

  /**
   * Removes a device: on the primary, a companion (a new list without it is published); on a companion, only
   * itself (logging out: the client closes and the profile cannot be opened again, `CLIENT_NOT_REGISTERED`).
   */
  async removeDevice(deviceId: number, options?: RequestOptions): Promise<void> {
    this.#ensureOpen();
    await this.#devices.remove(deviceId, options);
    if (deviceId === this.#account.deviceId) {
      await this.#o.store.transaction((tx) => tx.settings.put(REMOVED_KEY, true));
      await this.close();
    }
  }

  // ---- keys ----------------------------------------------------------------------------------------------

  /** Replenishes and rotates prekeys as the key policy says (also done automatically while connected). */
  maintainKeys(options?: RequestOptions): Promise<MaintenanceReport> {
    return this.#keys.maintain(options);
  }

  /** The key manager (rotation on demand). */
  get keys(): KeyManager {
    return this.#keys;
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #ensureOpen(): void {
    if (this.#closed) throw new ClientError(ClientErrorCode.Closed, 'client closed');
  }

  async #message(id: MessageId): Promise<MessageRecord> {
    const m = await this.message(id);
    if (!m) throw new ClientError(ClientErrorCode.InvalidArgument, 'no such message');
    return m;
  }

  async #onPush(verb: string, path: string, body: Uint8Array): Promise<{ status: number }> {
    if (verb === 'PUT' && path === '/v1/queue/message') {
      // Answered (acked) only once the envelope's effects are committed.
      await this.#receiver.receive(body);
      return { status: 200 };
    }
    if (verb === 'PUT' && path === '/v1/queue/empty') {
      await this.#receiver.whenIdle();
      await this.#post.run(async () => undefined);
      this.#events.emit('queueEmpty', {});
      return { status: 200 };
    }
    return { status: 404 };
  }

  /** Forgets what is no longer needed: old envelope guids, sent outbox entries past the resend window, expired messages. */
  async #housekeeping(): Promise<void> {
    const now = this.#clock.now();
    await this.#o.store.transaction(async (tx) => {
      await tx.envelopes.prune(now - PROCESSED_GUID_TTL_MS);
      await tx.outbox.prune(now - RESEND_WINDOW_MS);
    });
    await this.purgeExpired();
    this.#startHistoryImport();
    if (this.isPrimary) this.#background('devices', () => this.#devices.prune());
  }

  /** Imports the history bundle announced to this companion, if one is pending (in the background). */
  #startHistoryImport(): void {
    if (this.#importingHistory || this.#closed) return;
    this.#importingHistory = true;
    this.#background('history', () =>
      this.#importHistory().finally(() => {
        this.#importingHistory = false;
      }),
    );
  }

  async #importHistory(): Promise<void> {
    const pending = await this.#o.store.transaction((tx) => tx.settings.get(PENDING_HISTORY_KEY));
    if (pending === undefined || pending === null || typeof pending !== 'object' || Array.isArray(pending)) return;
    const p = pending as { blobId?: unknown; key?: unknown; sha256?: unknown; size?: unknown };
    const clear = (): Promise<void> => this.#o.store.transaction((tx) => tx.settings.put(PENDING_HISTORY_KEY, null));
    if (typeof p.blobId !== 'string' || !/^[0-9a-f]{64}$/.test(p.blobId) || typeof p.key !== 'string' || typeof p.sha256 !== 'string' || typeof p.size !== 'number') {
      await clear();
      return;
    }
    let bundle;
    try {
      const bytes = await this.#api.getBlob(p.blobId, { timeoutMs: 60_000 });
      bundle = decodeHistoryBundle(await decryptBlob(this.#o.crypto, bytes, { key: fromHex(p.key), sha256: fromHex(p.sha256), size: p.size }));
    } catch (err) {
      // A blob that is gone or does not authenticate never will: forget it (the error says why).
      if (ClientError.is(err, ClientErrorCode.BadBlob)) await clear();
      throw err;
    }
    const now = this.#clock.now();
    const imported = await this.#o.store.transaction(async (tx) => {
      const r = await importHistoryBundle(tx, bundle, now);
      await tx.settings.put(PENDING_HISTORY_KEY, null);
      return r;
    });
    for (const id of imported.newGroups) this.#background('groups', () => this.#groups.refresh(id));
    this.#events.emit('historySynced', { messages: imported.messages, contacts: imported.contacts, groups: imported.groups });
  }

  /**
   * Runs follow-up work that needs the network (history import, device-list and group refreshes) outside the
   * receive pipeline; {@link whenIdle} waits for it, and a failure becomes an `error` event in `context`.
   */
  #background(context: string, work: () => Promise<unknown>): void {
    const task: Promise<void> = work().then(
      () => undefined,
      (error: unknown) => this.#events.emit('error', { context, error }),
    );
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }

  #scheduleKeyMaintenance(delayMs: number): void {
    if (this.#o.maintainKeys === false || this.#closed || this.#keyTimer !== undefined) return;
    this.#keyTimer = setTimeout(() => {
      drop(
        this.#keys.maintain().finally(() => {
          this.#keyTimer = undefined;
        }),
        (error) => this.#events.emit('error', { context: 'keys', error }),
      );
    }, delayMs);
  }

  async #emitIdentityChange(n: IdentityChangeNotice): Promise<void> {
    const contact = await this.#o.store.transaction((tx) => tx.contacts.get(n.accountId));
    this.#events.emit('identityChanged', { ...n, number: contact?.numberVerified ? contact.number : undefined });
  }

  /** After a batch was committed and acked: confirm new senders' numbers, emit events, start follow-ups. */
  async #afterBatch(batch: ReceivedBatch): Promise<void> {
    if (batch.outboxChanged) this.#outbox.kick();
    if (batch.usedPreKeys) this.#scheduleKeyMaintenance(1_000);
    if (batch.history) this.#startHistoryImport();
    if (batch.refreshOwnDevices) {
      this.#background('devices', () => this.#sessions.refreshDeviceList(this.#account.accountId));
    }
    for (const id of batch.refreshGroups) {
      // In the background: a group known only by a sender key so far, or one we may be behind on.
      this.#background('groups', () => this.#groups.refresh(id));
    }
    const senders = new Map<AccountId, ContactRecord | undefined>();
    for (const item of batch.items) {
      if (item.kind === 'ignored' || senders.has(item.source)) continue;
      if (item.source === this.#account.accountId) {
        senders.set(item.source, undefined);
        continue;
      }
      let contact: ContactRecord | undefined;
      try {
        contact = await this.#contacts.confirm(item.source, { timeoutMs: 5_000 });
      } catch {
        contact = await this.#o.store.transaction((tx) => tx.contacts.get(item.source));
      }
      senders.set(item.source, contact);
    }
    for (const n of batch.identityChanges) {
      const c = senders.get(n.accountId);
      this.#events.emit('identityChanged', { ...n, number: c?.numberVerified ? c.number : undefined });
    }
    for (const item of batch.items) {
      if (item.kind === 'ignored') continue;
      const c = senders.get(item.source);
      const own = item.source === this.#account.accountId;
      const from: Sender = own
        ? { accountId: item.source, deviceId: item.deviceId, number: this.#account.number, numberVerified: true }
        : { accountId: item.source, deviceId: item.deviceId, number: c?.number, numberVerified: c?.numberVerified ?? false };
      this.#emitItem(from, item);
    }
  }

  #emitItem(from: Sender, item: Exclude<ReceivedItem, { kind: 'ignored' }>): void {
    const e = this.#events;
    const groupId: GroupId | undefined = item.groupId;
    switch (item.kind) {
      case 'group-update':
        e.emit('groupUpdate', { groupId: item.groupId, message: item.message, group: item.group });
        break;
      case 'message':
        e.emit('message', { from, message: item.message });
        break;
      case 'timer':
        e.emit('timer', { from, groupId, expireTimer: item.expireTimer, timestamp: item.timestamp });
        break;
      case 'reaction':
        e.emit('reaction', { from, groupId, targetId: item.targetId, emoji: item.emoji, remove: item.remove, timestamp: item.timestamp, message: item.message });
        break;
      case 'edit':
        e.emit('edit', { from, groupId, targetId: item.targetId, timestamp: item.timestamp, body: item.body, message: item.message });
        break;
      case 'delete':
        e.emit('delete', { from, groupId, targetId: item.targetId, timestamp: item.timestamp });
        break;
      case 'receipt':
        e.emit('receipt', { from, kind: item.receipt, timestamp: item.timestamp, timestamps: item.timestamps, updated: item.updated });
        for (const message of item.updated) e.emit('messageStatus', { message });
        break;
      case 'typing':
        e.emit('typing', { from, groupId, started: item.started, timestamp: item.timestamp });
        break;
      case 'undecryptable':
        e.emit('decryptionFailed', { from, groupId, timestamp: item.timestamp, code: item.code, retryRequested: item.retryRequested });
        break;
      case 'read-sync':
        if (item.messages.length > 0) e.emit('readSynced', { messages: item.messages });
        break;
      case 'retry-request':
        break; // handled in the pipeline (the resend is queued); nothing for the user to see
    }
  }
}
