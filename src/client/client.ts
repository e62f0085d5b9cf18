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
import { checkBody, checkText } from './content.js';
import { ContactDirectory, type ContactView } from './contacts.js';
import type { DevicesChangeNotice } from './devices.js';
import { Emitter } from './emitter.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ClientEvents, GroupStateCause, Sender } from './events.js';
import { GroupManager, type GroupChange, type GroupOptions } from './groups/manager.js';
import { GroupSender } from './groups/sender.js';
import { requireActiveGroup, type GroupView } from './groups/state.js';
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
import { DEFAULT_SEND_POLICY, errorCode, MessageSender, type SendPolicy } from './sender.js';
import { SessionManager } from './sessions.js';
import type { AccountRecord, AttachmentRecord, ClientStore, ContactRecord, ConversationSummaryRecord, GroupSettingsRecord, IdentityRecord, MessageRecord } from './store/types.js';
import { savedFiles } from './message-records.js';
import type { BackoffOptions } from './transport/backoff.js';
import { HttpTransport, type FetchLike } from './transport/http.js';
import type { ApiRequest, ApiResponse, RequestOptions, Requester } from './transport/types.js';
import { ConnectionState, WebSocketTransport, type WebSocketConstructor } from './transport/websocket.js';
import { BlobHttp } from './media/blob-http.js';
import { encryptedMediaSize, type MediaType } from './media/crypto.js';
import { downloadAttachment } from './media/download.js';
import { isFetchable, MAX_CONTENT_TYPE_LENGTH, mediaTypeOf } from './media/pointers.js';
import { sanitizeFileName } from './media/memory-files.js';
import { uploadAttachment, type UploadContext } from './media/upload.js';
import type { Call, CallMediaOptions } from './calls/call.js';
import { CallManager, type CallOptions } from './calls/manager.js';
import type { GroupCall, GroupCallMediaOptions } from './calls/group-call.js';
import { GroupCallManager } from './calls/group-manager.js';
import { connectionFactory } from './calls/rtc.js';
import { TurnCredentialsCache } from './calls/turn.js';
import { callMessageInit, type CallMedia, type CallSignal } from './calls/wire.js';
import { hasOtherDevices } from './outgoing.js';
import { BackupManager, type BackupResult, type BackupStatus, type CreateBackupOptions, type RestoreBackupOptions } from './backup/manager.js';
import type { RestoredBackup } from './backup/import.js';
import { BackupApi } from './backup/transfer.js';
import { MAX_THUMBNAIL_BYTES, type AttachmentInput, type MediaFiles, type MediaHashing, type MediaSource, type TransferProgress } from './media/types.js';

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
  /**
   * Where downloaded attachments are staged and saved (Node: `src/node/media/`; browsers and tests:
   * {@link InMemoryMediaFiles}). Needed to download and forward attachments (`CLIENT_INVALID_ARGUMENT` without).
   */
  readonly media?: MediaFiles | undefined;
  /**
   * Incoming attachments up to this many bytes are downloaded as soon as their message is stored (default
   * 100 MiB; 0 = never): `whenIdle` waits for them, and each ends with an `attachment` event. Larger ones wait
   * for {@link Client.downloadAttachment}.
   */
  readonly autoDownloadBytes?: number | undefined;
  /**
   * Keep a copy of each file this device sends in {@link ClientOptions.media}, as the attachment's `path`
   * (default true): the sender's chat shows it after a restart, and it can be forwarded, without downloading
   * our own upload. The copy is removed with the message (deleted for everyone, or expired).
   */
  readonly keepSentFiles?: boolean | undefined;
  /** Tuning of media transfers (tests use small chunks). */
  readonly mediaTransfer?: {
    /** Bytes per upload PATCH (default 8 MiB). */
    readonly uploadChunkBytes?: number;
    /** Failed requests in a row before a transfer gives up (default 6). */
    readonly maxAttempts?: number;
    readonly backoff?: BackoffOptions;
    /** Per-request response timeout, ms (default 60,000). */
    readonly timeoutMs?: number;
    /** How long a download may go without a byte, ms (default 30,000). */
    readonly idleTimeoutMs?: number;
    /** Where the hashes of a file run besides the encryption (Node: `workerHashing`, another core); default inline. */
    readonly hashing?: MediaHashing | undefined;
  };
  /** Voice and video calls (docs/calls.md): the RTCPeerConnection to use, ICE servers, timeouts. */
  readonly calls?: CallOptions | undefined;
}

/** Options of {@link Client.placeCall}. */
export interface PlaceCallOptions extends CallMediaOptions {
  /** Default: `video` when a video track is given, else `audio`. */
  readonly media?: CallMedia | undefined;
}

/** Options of {@link Client.sendAttachment}. */
export interface AttachmentSendOptions {
  /** Text shown with the file. */
  readonly caption?: string | undefined;
  /** The message replied to. */
  readonly quote?: MessageRecord | undefined;
  readonly viewOnce?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: TransferProgress) => void) | undefined;
}

/** Options of {@link Client.downloadAttachment}. */
export interface AttachmentDownloadOptions {
  /** Which attachment of the message (default 0). */
  readonly index?: number | undefined;
  /** Aborts this caller's download (a download another caller joined is not aborted by it). */
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: TransferProgress) => void) | undefined;
}

/** Default of {@link ClientOptions.autoDownloadBytes}: 100 MiB. */
export const DEFAULT_AUTO_DOWNLOAD_BYTES = 100 * 1024 * 1024;

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
  readonly #calls: CallManager;
  readonly #groupCalls: GroupCallManager;
  #importingHistory = false;
  /** Post-commit processing of received batches, in order (number confirmation, events). */
  readonly #post = new SerialQueue();
  /** Background follow-ups in flight (see #background). */
  readonly #tasks = new Set<Promise<void>>();
  readonly #blobs: BlobHttp;
  /** Downloads in flight, by `<message id>#<index>`: a second caller joins the first. */
  readonly #downloads = new Map<string, Promise<AttachmentRecord>>();
  /** Aborted on close: stops background transfers. */
  readonly #closing = new AbortController();
  #backupManager: BackupManager | undefined;
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
    this.#blobs = new BlobHttp({
      url: account.serverUrl,
      credentials,
      fetch: options.fetch,
      timeoutMs: options.mediaTransfer?.timeoutMs,
      idleTimeoutMs: options.mediaTransfer?.idleTimeoutMs,
    });
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
    const requester = new RoutedRequester(this.#ws, http);
    this.#api = new ServiceApi(requester);
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
    const turn = new TurnCredentialsCache(() => requester, () => this.#clock.now());
    this.#calls = new CallManager(
      {
        self: { accountId: account.accountId, deviceId: account.deviceId },
        store: options.store,
        now: () => this.#clock.now(),
        randomBytes: (n) => options.crypto.randomBytes(n),
        send: (to, signal, durable) => this.#outgoing.sendCall(to, callMessageInit(signal), durable),
        hasOtherDevices: () => options.store.transaction(async (tx) => hasOtherDevices(tx, await requireAccount(tx))),
        inOtherCall: () => this.#groupCalls.joined,
        turn: () => turn.get(),
        emitCall: (event) => this.#events.emit('call', event),
        emitRejected: (event) => this.#events.emit('callRejected', event),
        emitMessage: (message) => this.#events.emit('callRecorded', { message }),
        onError: (error) => this.#events.emit('error', { context: 'calls', error }),
      },
      options.calls,
    );
    const self = { accountId: account.accountId, deviceId: account.deviceId };
    this.#groupCalls = new GroupCallManager(
      {
        self,
        store: options.store,
        now: () => this.#clock.now(),
        randomBytes: (n) => options.crypto.randomBytes(n),
        send: (to, signal, durable) => this.#outgoing.sendCall(to, callMessageInit(signal), durable),
        members: (groupId) => options.store.transaction(async (tx) => (await requireActiveGroup(tx, groupId, self.accountId)).members.map((m) => m.accountId)),
        hasOtherDevices: () => options.store.transaction(async (tx) => hasOtherDevices(tx, await requireAccount(tx))),
        inOtherCall: () => this.#calls.active.length > 0,
        createConnection: connectionFactory(options.calls ?? {}, () => turn.get(), (error) => this.#events.emit('error', { context: 'calls', error })),
        emitCall: (event) => this.#events.emit('groupCall', event),
        emitRejected: (event) => this.#events.emit('callRejected', event),
        emitMessage: (message) => this.#events.emit('callRecorded', { message }),
        onError: (error) => this.#events.emit('error', { context: 'calls', error }),
      },
      options.calls,
    );
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

  /**
   * Encrypted backups of this device's conversations (docs/backups.md): `setUp` (recovery key and/or
   * password, schedule), `create`, `status`, `restore` (on a new device after re-registering the number).
   */
  get backups(): BackupManager {
    const account = this.#account;
    this.#backupManager ??= new BackupManager({
      crypto: this.#o.crypto,
      store: this.#o.store,
      media: this.#o.media,
      api: new BackupApi({
        url: account.serverUrl,
        credentials: { accountId: account.accountId, deviceId: account.deviceId, password: account.password },
        fetch: this.#o.fetch,
        timeoutMs: this.#o.mediaTransfer?.timeoutMs,
      }),
      blobs: this.#blobs,
      now: this.#o.now,
      uploadChunkBytes: this.#o.mediaTransfer?.uploadChunkBytes,
    });
    return this.#backupManager;
  }

  /** Makes a backup with the configured protection ({@link BackupManager.create}). */
  createBackup(options?: CreateBackupOptions): Promise<BackupResult> {
    this.#ensureOpen();
    return this.backups.create(options);
  }

  /** Restores a backup into this profile ({@link BackupManager.restore}): everything is checked before anything is imported. */
  restoreBackup(options: RestoreBackupOptions): Promise<RestoredBackup> {
    this.#ensureOpen();
    return this.backups.restore(options);
  }

  /** This device's backup set-up and the account's current backup ({@link BackupManager.status}). */
  backupStatus(signal?: AbortSignal): Promise<BackupStatus> {
    return this.backups.status(signal);
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
    this.#closing.abort(new ClientError(ClientErrorCode.Closed, 'client closed'));
    this.#calls.close();
    this.#groupCalls.close();
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

  /** Deletes one of our messages for everyone (and the saved files of its attachments here). */
  async deleteForEveryone(target: MessageId, signal?: AbortSignal): Promise<void> {
    this.#ensureOpen();
    const files = await this.#outgoing.deleteForEveryone(await this.#message(target), signal);
    await this.#removeFiles(files);
  }

  // ---- calls ---------------------------------------------------------------------------------------------

  /**
   * Calls a contact (a phone number or account id): every device of the account rings; the first to answer
   * gets the call. Resolves with the {@link Call} once the offer was sent; `call` events follow (`ringing`,
   * `connected`, `ended`). `CLIENT_INVALID_ARGUMENT` when already in a call.
   */
  async placeCall(to: string, options: PlaceCallOptions = {}): Promise<Call> {
    this.#ensureOpen();
    const peer = await this.resolve(to);
    return this.#calls.place(peer, options);
  }

  /**
   * Sends one call message as it is, to every device of `to` (low level: for tests, bots and a future SFU;
   * {@link placeCall} and the verbs of {@link Call} send everything a call needs). Offers and hang-ups are
   * durable by default (stored by the server), the rest ephemeral. Resolves with its sender timestamp.
   */
  async sendCallSignal(to: string, signal: CallSignal, options: { durable?: boolean } = {}): Promise<number> {
    this.#ensureOpen();
    const durable = options.durable ?? (signal.kind === 'offer' || signal.kind === 'hangup');
    return this.#outgoing.sendCall(await this.resolve(to), callMessageInit(signal), durable);
  }

  /** The calls in progress here (ringing, connecting or connected). */
  get activeCalls(): Call[] {
    return this.#calls.active;
  }

  /** A call in progress, by id. */
  call(callId: string): Call | undefined {
    return this.#calls.get(callId);
  }

  /**
   * Starts a call in a group (docs/calls.md, "Group calls"): every device of every other member rings, and
   * this device is in the call at once; the others join with `call.join()`. Up to 8 devices take part (a
   * full mesh). A call of the group that this device knows and is not in is joined instead.
   * `CLIENT_UNKNOWN_GROUP`, `CLIENT_NOT_GROUP_MEMBER`; `CLIENT_INVALID_ARGUMENT` when already in a call.
   */
  async startGroupCall(groupId: string, options: GroupCallMediaOptions = {}): Promise<GroupCall> {
    this.#ensureOpen();
    if (!isGroupId(groupId)) throw new ClientError(ClientErrorCode.InvalidArgument, 'a group id is 32 lowercase hex digits');
    return this.#groupCalls.start(groupId, options);
  }

  /**
   * Joins the running call of a group that this device knows of (it rang here, or was heard of): a late join.
   * `CLIENT_INVALID_ARGUMENT` when none is known; `CLIENT_GROUP_FULL` when it already has 8 devices.
   */
  async joinGroupCall(groupId: string, options: GroupCallMediaOptions = {}): Promise<GroupCall> {
    this.#ensureOpen();
    const call = isGroupId(groupId) ? this.#groupCalls.forGroup(groupId) : undefined;
    if (!call) throw new ClientError(ClientErrorCode.InvalidArgument, 'no call of that group is known here');
    await call.join(options);
    return call;
  }

  /** The group calls known here that have not ended (ringing, running without us, or joined). */
  get groupCalls(): GroupCall[] {
    return this.#groupCalls.active;
  }

  /** The running call of a group, as known here. */
  groupCall(groupId: string): GroupCall | undefined {
    return isGroupId(groupId) ? this.#groupCalls.forGroup(groupId) : undefined;
  }

  // ---- media ---------------------------------------------------------------------------------------------

  /**
   * Sends a file to a contact or a group: uploads it (encrypted under a fresh key; resumable, see
   * docs/media.md), then sends the message carrying its pointer (`caption` as the text) like any other, and
   * resolves once the server accepted the message for every device. With a `resumeKey` on the source, a send
   * interrupted by a crash resumes its upload when the same source is sent again.
   */
  async sendAttachment(to: string, attachment: AttachmentInput, options: AttachmentSendOptions = {}): Promise<MessageRecord> {
    this.#ensureOpen();
    const { signal } = options;
    const input = checkAttachmentInput(attachment);
    if (options.caption !== undefined) checkBody(options.caption);
    const conversation = await this.#conversation(to, { signal });
    // The sender's own copy, kept with the message so that its bubble shows the file after a reload (and it can
    // be forwarded) without downloading our own upload; removed again when the send fails before it is queued.
    const copy = this.#o.media && this.#o.keepSentFiles !== false ? await this.#keepCopy(this.#o.media, attachment.source, input.fileName ?? 'file', input.contentType, signal) : undefined;
    let up;
    try {
      up = await uploadAttachment(this.#uploadContext(), attachment.source, input.type, { signal, onProgress: options.onProgress });
    } catch (err) {
      if (copy !== undefined) await this.#removeFiles([copy]);
      throw err;
    }
    const record: AttachmentRecord = {
      type: input.type,
      blobId: up.blobId,
      mediaKey: up.mediaKey,
      plaintextSha256: up.plaintextSha256,
      encryptedSha256: up.encryptedSha256,
      size: up.size,
      contentType: input.contentType,
      fileName: input.fileName,
      width: input.width,
      height: input.height,
      durationMs: input.durationMs,
      voiceNote: input.voiceNote,
      thumbnail: input.thumbnail,
      uploadedAt: up.uploadedAt,
      // The sender has the file: the copy saved above (none without ClientOptions.media).
      state: 'saved',
      path: copy,
      error: undefined,
    };
    const resumeKey = attachment.source.resumeKey;
    let queued = false;
    try {
      return await this.#outgoing.sendAttachments(conversation, [record], {
        caption: options.caption,
        quote: options.quote,
        viewOnce: options.viewOnce,
        signal,
        resumeKeys: resumeKey === undefined ? [] : [resumeKey],
        onQueued: () => {
          queued = true;
        },
      });
    } catch (err) {
      // Once the message is stored the copy belongs to it (the outbox still delivers it); before, it is nobody's.
      if (!queued && copy !== undefined) await this.#removeFiles([copy]);
      throw err;
    }
  }

  /** Saves the plaintext of a file we send into the media folder; resolves with its location. */
  async #keepCopy(media: MediaFiles, source: MediaSource, name: string, contentType: string, signal: AbortSignal | undefined): Promise<string> {
    const writer = await media.output(name, contentType);
    try {
      let size = 0;
      for await (const chunk of source.open()) {
        signal?.throwIfAborted();
        size += chunk.length;
        await writer.write(chunk);
      }
      if (size !== source.size) throw new ClientError(ClientErrorCode.InvalidArgument, `the source gave ${size} bytes, not the ${source.size} it announced`);
      return await writer.commit();
    } catch (err) {
      await writer.abort().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Downloads, verifies and saves attachment `index` of a stored message (into {@link ClientOptions.media});
   * resolves with the attachment as stored (`saved`, with its `path`). An attachment saved already is returned
   * at once; a download of it in flight is joined. A failure is recorded on the attachment (`failed`, with the
   * error code; `CLIENT_BAD_MEDIA` for a file that fails verification) and thrown; an abort leaves it `pending`.
   * Each finished download also emits an `attachment` event.
   */
  downloadAttachment(id: MessageId, options: AttachmentDownloadOptions = {}): Promise<AttachmentRecord> {
    this.#ensureOpen();
    const index = options.index ?? 0;
    if (!Number.isSafeInteger(index) || index < 0) return Promise.reject(new ClientError(ClientErrorCode.InvalidArgument, 'an attachment index is a non-negative integer'));
    const key = `${id}#${index}`;
    const inflight = this.#downloads.get(key);
    if (inflight) return inflight;
    const download = this.#download(id, index, options).finally(() => this.#downloads.delete(key));
    this.#downloads.set(key, download);
    return download;
  }

  /**
   * Sends the attachments of a stored message to another contact or group (with its text as the caption unless
   * `caption` is given). Each blob is offered to the server first: one it still has is not uploaded again;
   * otherwise the saved file is uploaded again under the same media key (the same blob). An attachment that is
   * neither on the server nor saved here cannot be forwarded (`CLIENT_INVALID_ARGUMENT`: download it first).
   */
  async forwardAttachments(
    id: MessageId,
    to: string,
    options: { caption?: string | undefined; signal?: AbortSignal | undefined; onProgress?: ((progress: TransferProgress) => void) | undefined } = {},
  ): Promise<MessageRecord> {
    this.#ensureOpen();
    const { signal } = options;
    const message = await this.#message(id);
    if (message.attachments.length === 0 || message.deleted) throw new ClientError(ClientErrorCode.InvalidArgument, 'the message has no attachments to forward');
    const caption = options.caption ?? message.body;
    checkBody(caption);
    const conversation = await this.#conversation(to, { signal });
    const records: AttachmentRecord[] = [];
    for (const a of message.attachments) {
      if (!isFetchable(a)) throw new ClientError(ClientErrorCode.BadMedia, 'an attachment of the message has an invalid pointer');
      const path = a.state === 'saved' ? a.path : undefined;
      let uploadedAt: number;
      if (path === undefined) {
        const offered = await this.#blobs.createUpload(encryptedMediaSize(a.size), a.blobId, signal);
        if (offered.kind !== 'stored') {
          await this.#blobs.cancelUpload(offered.uploadId).catch(() => undefined);
          throw new ClientError(ClientErrorCode.InvalidArgument, 'an attachment is no longer on the server and not saved here: download it first');
        }
        uploadedAt = this.#clock.now();
      } else {
        const media = this.#requireMedia();
        const source: MediaSource = { size: a.size, open: () => media.read(path) };
        const up = await uploadAttachment(this.#uploadContext(), source, a.type, {
          signal,
          onProgress: options.onProgress,
          known: { mediaKey: a.mediaKey, blobId: a.blobId, plaintextSha256: a.plaintextSha256 },
        });
        uploadedAt = up.uploadedAt;
      }
      records.push({ ...a, uploadedAt, state: 'saved', path: undefined, error: undefined });
    }
    return this.#outgoing.sendAttachments(conversation, records, { caption, signal });
  }

  #requireMedia(): MediaFiles {
    const media = this.#o.media;
    if (!media) throw new ClientError(ClientErrorCode.InvalidArgument, 'attachments need a media folder: pass ClientOptions.media');
    return media;
  }

  #uploadContext(): UploadContext {
    const t = this.#o.mediaTransfer;
    return {
      crypto: this.#o.crypto,
      store: this.#o.store,
      http: this.#blobs,
      now: () => this.#clock.now(),
      chunkBytes: t?.uploadChunkBytes,
      maxAttempts: t?.maxAttempts,
      backoff: t?.backoff,
      hashing: t?.hashing,
    };
  }

  async #download(id: MessageId, index: number, options: AttachmentDownloadOptions): Promise<AttachmentRecord> {
    const media = this.#requireMedia();
    const message = await this.#message(id);
    const a = message.attachments[index];
    if (!a) throw new ClientError(ClientErrorCode.InvalidArgument, 'the message has no such attachment');
    // Saved here. (Our own file sent from another device, or forwarded, is `saved` without a copy here: fetched.)
    if (a.state === 'saved' && a.path !== undefined) return a;
    if (!isFetchable(a)) throw new ClientError(ClientErrorCode.BadMedia, 'the attachment pointer is invalid');
    const signal = options.signal ? AbortSignal.any([options.signal, this.#closing.signal]) : this.#closing.signal;
    const t = this.#o.mediaTransfer;
    let path: string;
    try {
      ({ path } = await downloadAttachment(
        { crypto: this.#o.crypto, http: this.#blobs, files: media, maxAttempts: t?.maxAttempts, backoff: t?.backoff, hashing: t?.hashing },
        a,
        { signal, onProgress: options.onProgress },
      ));
    } catch (err) {
      if (!signal.aborted) await this.#settleAttachment(id, index, a, { state: 'failed', path: undefined, error: errorCode(err) });
      throw err;
    }
    const saved = await this.#settleAttachment(id, index, a, { state: 'saved', path, error: undefined });
    if (!saved) {
      // Deleted meanwhile: the file has no message any more.
      await this.#removeFiles([path]);
      throw new ClientError(ClientErrorCode.InvalidArgument, 'the message was deleted during the download');
    }
    // Retention `fetched`: this device has it (best effort; the blob expires anyway).
    await this.#blobs.markFetched(a.blobId, this.#closing.signal).catch(() => undefined);
    return saved;
  }

  /** Records a download's outcome on the attachment (when it is still there) and emits `attachment`. */
  async #settleAttachment(id: MessageId, index: number, a: AttachmentRecord, outcome: Pick<AttachmentRecord, 'state' | 'path' | 'error'>): Promise<AttachmentRecord | undefined> {
    const updated = await this.#o.store.transaction(async (tx) => {
      const m = await tx.messages.get(id);
      const current = m?.attachments[index];
      if (!m || !current || current.blobId !== a.blobId || m.deleted) return undefined;
      const next: AttachmentRecord = { ...current, ...outcome };
      await tx.messages.put({ ...m, attachments: m.attachments.map((x, i) => (i === index ? next : x)) });
      return next;
    });
    if (updated) this.#events.emit('attachment', { messageId: id, index, attachment: updated });
    return updated;
  }

  /** Removes saved files no message refers to any more (best effort). */
  async #removeFiles(files: readonly string[]): Promise<void> {
    const media = this.#o.media;
    if (!media) return;
    for (const f of files) {
      try {
        await media.remove(f);
      } catch (error) {
        this.#events.emit('error', { context: 'media', error });
      }
    }
  }

  /** Starts the automatic downloads of a received message's attachments (those small enough). */
  #autoDownload(message: MessageRecord): void {
    const limit = this.#o.autoDownloadBytes ?? DEFAULT_AUTO_DOWNLOAD_BYTES;
    if (!this.#o.media || limit <= 0 || this.#closed) return;
    message.attachments.forEach((a, index) => {
      if (a.state !== 'pending' || a.size > limit || !isFetchable(a)) return;
      // A failure is recorded on the attachment and reported by the `attachment` event.
      this.#background('media', () => this.downloadAttachment(message.id, { index }).catch(() => undefined));
    });
  }

  /** Marks a conversation's unread messages (or the given ones) read and sends a read receipt. */
  async markRead(conversation: string, ids?: readonly MessageId[]): Promise<MessageRecord[]> {
    this.#ensureOpen();
    const conversationId = await this.#conversation(conversation);
    return this.#outgoing.markRead(conversationId, { ids, sendReceipt: this.#o.readReceipts !== false });
  }

  /**
   * Opens a view-once message: returns it as it was, with its text and attachments, which are then erased
   * here, saved files included (read an attachment's file before calling this to show it).
   */
  async markViewed(id: MessageId): Promise<MessageRecord> {
    this.#ensureOpen();
    const { shown, files } = await this.#outgoing.markViewed(id, this.#o.readReceipts !== false);
    await this.#removeFiles(files);
    return shown;
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
    const { ids, files } = await this.#o.store.transaction(async (tx) => {
      const expired = await tx.messages.expired(now);
      for (const m of expired) await tx.messages.remove(m.id);
      return { ids: expired.map((m) => m.id), files: expired.flatMap(savedFiles) };
    });
    // Their saved files (downloads, and the copies of what we sent) go with them.
    if (files.length > 0) await this.#removeFiles(files);
    if (ids.length > 0) this.#events.emit('expired', { ids });
    return ids.length;
  }

  // ---- reading -------------------------------------------------------------------------------------------

  /** A conversation's messages, oldest first (the newest `limit` when given). */
  async messages(conversation: string, options: { limit?: number } = {}): Promise<MessageRecord[]> {
    const conversationId = await this.#conversation(conversation);
    return this.#o.store.transaction((tx) => tx.messages.list(conversationId, options));
  }

  /**
   * The chats list: every conversation that has messages, with its newest message and unread count, newest
   * first. Read from the store's indexes (one newest message per conversation, unread ones counted), not from
   * the histories, so it stays cheap however long the chats are. Contacts and groups without messages are not
   * in it (see {@link contacts} and {@link groups}).
   */
  async conversationSummaries(): Promise<ConversationSummaryRecord[]> {
    const all = await this.#o.store.transaction((tx) => tx.messages.summaries());
    return all.sort((a, b) => b.last.timestamp - a.last.timestamp || (a.conversationId < b.conversationId ? -1 : a.conversationId > b.conversationId ? 1 : 0));
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
    for (const id of imported.newGroups) this.#refreshGroupInBackground(id);
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
      this.#refreshGroupInBackground(id);
    }
    const senders = new Map<AccountId, ContactRecord | undefined>();
    for (const item of batch.items) {
      // A sender key says nothing to show about its sender: no directory lookup for it.
      if (item.kind === 'ignored' || item.kind === 'group-key' || senders.has(item.source)) continue;
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
      if (item.kind === 'group-key') {
        await this.#emitGroupState(item.groupId, 'sender-key');
        continue;
      }
      const c = senders.get(item.source);
      const own = item.source === this.#account.accountId;
      const from: Sender = own
        ? { accountId: item.source, deviceId: item.deviceId, number: this.#account.number, numberVerified: true }
        : { accountId: item.source, deviceId: item.deviceId, number: c?.number, numberVerified: c?.numberVerified ?? false };
      this.#emitItem(from, item);
    }
  }

  /** Fetches a group's state in the background, then emits `groupState` (`refreshed`). */
  #refreshGroupInBackground(id: GroupId): void {
    this.#background('groups', async () => {
      await this.#groups.refresh(id);
      await this.#emitGroupState(id, 'refreshed');
    });
  }

  /** Emits `groupState` with the group as it is now stored. */
  async #emitGroupState(groupId: GroupId, cause: GroupStateCause): Promise<void> {
    const [record, group] = await Promise.all([this.#o.store.transaction((tx) => tx.groups.get(groupId)), this.#groups.view(groupId)]);
    this.#events.emit('groupState', { groupId, cause, group, hasMasterKey: record?.masterKey !== undefined });
  }

  #emitItem(from: Sender, item: Exclude<ReceivedItem, { kind: 'ignored' | 'group-key' }>): void {
    const e = this.#events;
    const groupId: GroupId | undefined = item.groupId;
    switch (item.kind) {
      case 'group-update':
        e.emit('groupUpdate', { groupId: item.groupId, message: item.message, group: item.group });
        this.#groupCalls.membershipChanged(item.groupId);
        break;
      case 'message':
        e.emit('message', { from, message: item.message });
        this.#autoDownload(item.message);
        break;
      case 'timer':
        e.emit('timer', { from, groupId, expireTimer: item.expireTimer, timestamp: item.timestamp, message: item.message });
        break;
      case 'reaction':
        e.emit('reaction', { from, groupId, targetId: item.targetId, emoji: item.emoji, remove: item.remove, timestamp: item.timestamp, message: item.message });
        break;
      case 'edit':
        e.emit('edit', { from, groupId, targetId: item.targetId, timestamp: item.timestamp, body: item.body, message: item.message });
        break;
      case 'delete':
        e.emit('delete', { from, groupId, targetId: item.targetId, timestamp: item.timestamp });
        if (item.files.length > 0) this.#background('media', () => this.#removeFiles(item.files));
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
      case 'call':
        if (item.signal?.groupId !== undefined) this.#groupCalls.handle(from, item);
        else this.#calls.handle(from, item);
        break;
      case 'retry-request':
        break; // handled in the pipeline (the resend is queued); nothing for the user to see
    }
  }
}

/** What {@link Client.sendAttachment} sends of an input, checked (`CLIENT_INVALID_ARGUMENT`). */
function checkAttachmentInput(input: AttachmentInput): {
  type: MediaType;
  contentType: string;
  fileName: string | undefined;
  width: number | undefined;
  height: number | undefined;
  durationMs: number | undefined;
  voiceNote: boolean;
  thumbnail: Uint8Array | undefined;
} {
  const invalid = (message: string): ClientError => new ClientError(ClientErrorCode.InvalidArgument, message);
  const contentType = input.contentType.trim();
  if (contentType === '' || contentType.length > MAX_CONTENT_TYPE_LENGTH || !/^[\x21-\x7e]+\/[\x20-\x7e]+$/.test(contentType)) throw invalid('a content type is a MIME type');
  const type = input.type ?? mediaTypeOf(contentType);
  if (!['image', 'video', 'audio', 'document'].includes(type)) throw invalid('unknown media type');
  const dimension = (v: number | undefined, what: string): number | undefined => {
    if (v === undefined || v === 0) return undefined;
    if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) throw invalid(`${what} is a non-negative 32-bit integer`);
    return v;
  };
  const thumbnail = input.thumbnail?.bytes;
  if (thumbnail !== undefined && thumbnail.length > MAX_THUMBNAIL_BYTES) throw invalid(`a thumbnail is at most ${MAX_THUMBNAIL_BYTES} bytes`);
  const size = input.source.size;
  if (!Number.isSafeInteger(size) || size < 0) throw invalid('a source has a size in bytes');
  return {
    type,
    contentType,
    fileName: input.fileName === undefined || input.fileName === '' ? undefined : sanitizeFileName(input.fileName),
    width: dimension(input.width, 'a width'),
    height: dimension(input.height, 'a height'),
    durationMs: dimension(input.durationMs, 'a duration'),
    voiceNote: input.voiceNote ?? false,
    thumbnail: thumbnail === undefined || thumbnail.length === 0 ? undefined : thumbnail.slice(),
  };
}
