/**
 * The signed-in side of the app: one {@link Client} on a browser profile, and what the screens show of it
 * (chats with their last message and unread count, typing, connection state, notices). Screens subscribe to
 * {@link Session.subscribe} and read the getters; everything they do goes through the methods here, which
 * call the SDK. The SDK's events say what changed; the session re-reads the store and notifies.
 */
import {
  Client,
  type AttachmentInput,
  type AttachmentSendOptions,
  type JsonValue,
  ConnectionState,
  isGroupId,
  type AccountId,
  type ClientEvents,
  type ContactView,
  type ConversationId,
  type GroupView,
  type MessageId,
  type MessageRecord,
  type StateChange,
} from '../../client/index.js';
import { WebCryptoProvider } from '../../protocol/webcrypto-provider.js';
import { CallsModel } from './calls.js';
import { errorInWords } from './errors.js';
import { browserFetch, type Profile } from './profile.js';
import { WebBackups } from './backups.js';

/** Per-chat choices of the user, kept in the profile's settings. */
export interface ChatPrefs {
  readonly archived: boolean;
  readonly muted: boolean;
  readonly pinned: boolean;
}

const NO_PREFS: ChatPrefs = { archived: false, muted: false, pinned: false };

/** A row of the chats list. */
export interface ChatSummary {
  readonly id: ConversationId;
  readonly title: string;
  readonly group: boolean;
  readonly last: MessageRecord | undefined;
  readonly unread: number;
  readonly prefs: ChatPrefs;
}

/** A notice shown inside a conversation (not a message: it is not sent anywhere). */
export interface ChatNotice {
  readonly id: string;
  readonly conversationId: ConversationId;
  readonly at: number;
  readonly text: string;
  readonly kind: 'identity' | 'devices' | 'timer';
}

/** A message shown to the user briefly (an error in words, or a confirmation). */
export interface Toast {
  readonly id: number;
  readonly text: string;
  readonly error: boolean;
}

/** A typing indicator goes away after this long without a refresh. */
const TYPING_TTL_MS = 8_000;
const PREFS_KEY = 'web.chatPrefs';
const NOTICES_KEY = 'web.notices';
/** Where earlier releases kept the copies of the files we sent, by `<message id>#<index>` (read only now). */
const SENT_FILES_KEY = 'web.sentFiles';

type Listener = () => void;

export class Session {
  readonly client: Client;
  readonly profile: Profile;
  /** Voice and video calls (the call screen and the call buttons). */
  readonly calls: CallsModel;
  /** Backups: the Settings screen, the restore offer and the automatic backups (./backups.ts). */
  readonly backups: WebBackups;
  #connection: StateChange | undefined;
  #connectionAt = 0;
  #chats: ChatSummary[] = [];
  #titles = new Map<ConversationId, string>();
  #timers = new Map<ConversationId, number>();
  #groups = new Map<ConversationId, GroupView>();
  #prefs: Record<string, ChatPrefs> = {};
  #notices: ChatNotice[] = [];
  #typing = new Map<ConversationId, Map<AccountId, number>>();
  #toasts: Toast[] = [];
  #toastSeq = 0;
  #listeners = new Set<Listener>();
  /** Conversations whose messages changed, by a counter the message list watches. */
  #versions = new Map<ConversationId, number>();
  #openChat: ConversationId | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #typingTimer: ReturnType<typeof setInterval>;
  #urls = new Map<string, Promise<string>>();
  #unsubscribe: Array<() => void> = [];
  #closed = false;
  /** Called for messages that arrive while the tab is hidden or the chat is not open (notifications). */
  onIncoming: ((message: MessageRecord, chat: ChatSummary | undefined) => void) | undefined;

  private constructor(client: Client, profile: Profile) {
    this.client = client;
    this.profile = profile;
    this.calls = new CallsModel(this);
    this.backups = new WebBackups(client, { onAutomaticError: (text) => this.toast(text, true) });
    this.#typingTimer = setInterval(() => this.#expireTyping(), 1_000);
  }

  /** Opens the client of a registered profile, connects it, and resumes its outbox. */
  static async open(profile: Profile): Promise<Session> {
    const client = await Client.open({
      store: profile.store,
      media: profile.media,
      crypto: new WebCryptoProvider(),
      fetch: browserFetch,
      // Attachments are fetched and decrypted when they are shown (see attachmentUrl), not on arrival.
      autoDownloadBytes: 0,
      expiryCheckMs: 5_000,
    });
    const session = new Session(client, profile);
    await session.#loadSettings();
    session.#listen();
    client.connect();
    // Sends interrupted by a closed tab are still in the outbox: deliver them now.
    client.resumeOutbox();
    await session.refreshChats();
    session.backups.start();
    return session;
  }

  // ---- observation -----------------------------------------------------------------------------------------

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get connection(): StateChange | undefined {
    return this.#connection;
  }

  /** When the connection state last changed, ms. */
  get connectionAt(): number {
    return this.#connectionAt;
  }

  get online(): boolean {
    return this.client.state === ConnectionState.Connected;
  }

  get chats(): readonly ChatSummary[] {
    return this.#chats;
  }

  get toasts(): readonly Toast[] {
    return this.#toasts;
  }

  /** The counter of a conversation's messages: it changes whenever they do. */
  version(conversationId: ConversationId): number {
    return this.#versions.get(conversationId) ?? 0;
  }

  title(conversationId: ConversationId): string {
    return this.#titles.get(conversationId) ?? (isGroupId(conversationId) ? 'Group' : 'Unknown');
  }

  /** The conversation's disappearing-message timer, seconds (0 = off). */
  timer(conversationId: ConversationId): number {
    return this.#timers.get(conversationId) ?? 0;
  }

  group(conversationId: ConversationId): GroupView | undefined {
    return this.#groups.get(conversationId);
  }

  /** The number of an account (when known), else a short form of its id. */
  nameOf(accountId: AccountId): string {
    if (accountId === this.client.accountId) return 'You';
    return this.#titles.get(accountId) ?? `${accountId.slice(0, 8)}…`;
  }

  typing(conversationId: ConversationId): AccountId[] {
    return [...(this.#typing.get(conversationId)?.keys() ?? [])];
  }

  notices(conversationId: ConversationId): ChatNotice[] {
    return this.#notices.filter((n) => n.conversationId === conversationId);
  }

  prefs(conversationId: ConversationId): ChatPrefs {
    return this.#prefs[conversationId] ?? NO_PREFS;
  }

  // ---- chats ---------------------------------------------------------------------------------------------

  /** Re-reads contacts, groups and each chat's newest messages. */
  async refreshChats(): Promise<void> {
    const [contacts, groups] = await Promise.all([this.client.contacts(), this.client.groups()]);
    const titles = new Map<ConversationId, string>();
    for (const c of contacts) titles.set(c.accountId, contactTitle(c));
    this.#groups = new Map(groups.map((g) => [g.id, g]));
    for (const g of groups) {
      titles.set(g.id, g.name || 'Unnamed group');
      // Members we have no contact for are named by the numbers the group state carries.
      for (const m of g.members) if (m.number !== undefined && !titles.has(m.accountId)) titles.set(m.accountId, m.number);
    }
    this.#titles = titles;
    this.#timers = new Map<ConversationId, number>([...contacts.map((c) => [c.accountId, c.expireTimer] as const), ...groups.map((g) => [g.id, g.expireTimer] as const)]);
    // One summary per conversation with messages, from the store's indexes (no history is read); groups without
    // messages yet, and the open chat, are rows too. Contacts we never exchanged a message with (group members)
    // are not chats.
    const summaries = new Map((await this.client.conversationSummaries()).map((x) => [x.conversationId, x]));
    const ids = new Set<ConversationId>([...summaries.keys(), ...groups.map((g) => g.id), ...(this.#openChat === undefined ? [] : [this.#openChat])]);
    const chats: ChatSummary[] = [];
    for (const id of ids) {
      const x = summaries.get(id);
      chats.push({ id, title: this.title(id), group: isGroupId(id), last: x?.last, unread: x?.unread ?? 0, prefs: this.prefs(id) });
    }
    chats.sort((a, b) => Number(b.prefs.pinned) - Number(a.prefs.pinned) || sortTime(b) - sortTime(a));
    this.#chats = chats;
    this.#notify();
  }

  /** The conversation with a phone number (resolved through the server) or an existing id. */
  async startChat(to: string): Promise<ConversationId> {
    const id = isGroupId(to) ? to : await this.client.resolve(to.replace(/[\s()-]/g, ''));
    if (!this.#titles.has(id) && !isGroupId(id)) this.#titles.set(id, to);
    return id;
  }

  /** The chat the user looks at (its messages are marked read while the tab is visible). */
  setOpenChat(id: ConversationId | undefined): void {
    this.#openChat = id;
    if (id !== undefined) this.markRead(id);
  }

  markRead(id: ConversationId): void {
    if (typeof document !== 'undefined' && document.visibilityState !== 'visible') return;
    this.#run('read', async () => {
      const updated = await this.client.markRead(id);
      if (updated.length > 0) this.#changed(id);
    });
  }

  async setPrefs(id: ConversationId, change: Partial<ChatPrefs>): Promise<void> {
    this.#prefs = { ...this.#prefs, [id]: { ...this.prefs(id), ...change } };
    const value = Object.fromEntries(Object.entries(this.#prefs).map(([k, p]) => [k, { archived: p.archived, muted: p.muted, pinned: p.pinned }]));
    await this.profile.store.transaction((tx) => tx.settings.put(PREFS_KEY, value));
    await this.refreshChats();
  }

  // ---- messages ------------------------------------------------------------------------------------------

  /** A conversation's newest `limit` messages, oldest first. */
  messages(id: ConversationId, limit: number): Promise<MessageRecord[]> {
    return this.client.messages(id, { limit });
  }

  /** The `limit` messages just older than `before`, oldest first (one page, however long the chat). */
  olderMessages(id: ConversationId, before: MessageRecord, limit: number): Promise<MessageRecord[]> {
    return this.profile.messagesBefore(id, { timestamp: before.timestamp, id: before.id }, limit);
  }

  /**
   * Sends a text. The message is stored (pending) before the network is used, so the list shows it at once;
   * the promise settles when the server accepted it. A closed tab leaves it in the outbox, which resumes.
   */
  sendText(id: ConversationId, text: string, options: { quote?: MessageRecord | undefined; viewOnce?: boolean } = {}): void {
    this.#sending(id, this.client.sendText(id, text, options));
  }

  /** Tracks a send: the list re-reads as soon as the pending message is stored, and again when it settles. */
  #sending(id: ConversationId, sent: Promise<unknown>): void {
    for (const ms of [10, 60, 250]) setTimeout(() => this.#changed(id), ms);
    this.#run('send', async () => {
      try {
        await sent;
      } finally {
        this.#changed(id);
      }
    });
  }

  /** Tracks a send like a text's (see {@link sendText}). */
  trackSend(id: ConversationId, sent: Promise<unknown>): void {
    this.#sending(id, sent);
  }

  /**
   * Sends a prepared file. The SDK keeps our copy in the media cache under the message (its attachment's
   * `path`), so our own bubble shows the file, after reloads too, without downloading our upload.
   */
  async sendAttachment(id: ConversationId, input: AttachmentInput, options: Pick<AttachmentSendOptions, 'caption' | 'quote' | 'viewOnce'> = {}): Promise<MessageRecord> {
    const m = await this.client.sendAttachment(id, input, options);
    this.#changed(id);
    return m;
  }

  /** Where an earlier release of the app kept the copy of a file we sent (before the SDK kept it). */
  async #sentCopy(key: string): Promise<string | undefined> {
    const map = await this.profile.store.transaction((tx) => tx.settings.get(SENT_FILES_KEY));
    const location = map && typeof map === 'object' && !Array.isArray(map) ? (map as Record<string, JsonValue>)[key] : undefined;
    return typeof location === 'string' ? location : undefined;
  }

  react(message: MessageRecord, emoji: string): void {
    const mine = message.reactions.find((r) => r.authorId === this.client.accountId);
    const remove = mine?.emoji === emoji;
    this.#run('react', async () => {
      await this.client.react(message.id, emoji, { remove });
      this.#changed(message.conversationId);
    });
  }

  edit(message: MessageRecord, text: string): void {
    this.#run('edit', async () => {
      await this.client.edit(message.id, text);
      this.#changed(message.conversationId);
    });
  }

  deleteForEveryone(message: MessageRecord): void {
    this.#run('delete', async () => {
      await this.client.deleteForEveryone(message.id);
      this.#changed(message.conversationId);
    });
  }

  setTimer(id: ConversationId, seconds: number): void {
    this.#run('timer', async () => {
      await this.client.setExpireTimer(id, seconds);
      this.#changed(id);
    });
  }

  /**
   * Opens a view-once message: resolves with it as it was. Its attachments are first read into memory (downloaded
   * when needed) and shown from there, because the SDK then erases the text, the attachments and their saved
   * files; {@link closeViewOnce} lets go of that memory.
   */
  async openViewOnce(id: MessageId): Promise<MessageRecord> {
    const before = await this.client.message(id);
    if (before?.viewOnce === true && before.status !== 'viewed') {
      await Promise.all(
        before.attachments.map(async (_, index) => {
          const key = `${id}#${index}`;
          const saved = await this.attachmentUrl(before, index);
          const bytes = await (await fetch(saved)).blob();
          this.#urls.set(key, Promise.resolve(URL.createObjectURL(bytes)));
        }),
      );
    }
    const m = await this.client.markViewed(id);
    this.#changed(m.conversationId);
    return m;
  }

  /** Forgets what {@link openViewOnce} showed of a view-once message (its attachments' bytes in memory). */
  closeViewOnce(m: MessageRecord): void {
    m.attachments.forEach((_, index) => {
      const key = `${m.id}#${index}`;
      void this.#urls.get(key)?.then((url) => URL.revokeObjectURL(url));
      this.#urls.delete(key);
    });
  }

  sendTyping(id: ConversationId, started: boolean): void {
    if (!this.online) return;
    this.client.sendTyping(id, started).catch(() => undefined); // ephemeral: a lost indicator does not matter
  }

  /**
   * A `blob:` URL of an attachment's plaintext, downloading and decrypting it first when needed (once per
   * attachment; later callers share the same URL).
   */
  attachmentUrl(message: MessageRecord, index: number): Promise<string> {
    const key = `${message.id}#${index}`;
    let url = this.#urls.get(key);
    if (!url) {
      url = (async () => {
        let a = message.attachments[index];
        if (!a) throw new Error('no such attachment');
        if (message.direction === 'outgoing' && a.path === undefined) {
          const copy = await this.#sentCopy(key);
          if (copy !== undefined) return this.profile.objectUrl(copy);
          // Restored from a backup, sent from another device of ours, or forwarded: fetched from the server while it
          // has the blob (the SDK downloads a file it has no copy of).
        }
        if (a.state !== 'saved' || a.path === undefined) a = await this.client.downloadAttachment(message.id, { index });
        if (a.path === undefined) throw new Error('the attachment could not be downloaded');
        return this.profile.objectUrl(a.path);
      })();
      url.catch(() => this.#urls.delete(key));
      this.#urls.set(key, url);
    }
    return url;
  }

  // ---- groups --------------------------------------------------------------------------------------------

  async createGroup(name: string, members: string[]): Promise<ConversationId> {
    const g = await this.client.createGroup(name, members);
    await this.refreshChats();
    return g.id;
  }

  async changeGroup(id: ConversationId, work: (client: Client) => Promise<unknown>): Promise<void> {
    try {
      await work(this.client);
    } catch (err) {
      this.toast(errorInWords(err), true);
      return;
    }
    this.#changed(id);
    await this.refreshChats();
  }

  // ---- toasts --------------------------------------------------------------------------------------------

  toast(text: string, error = false): void {
    const t = { id: ++this.#toastSeq, text, error };
    this.#toasts = [...this.#toasts, t].slice(-4);
    this.#notify();
    setTimeout(() => this.dismiss(t.id), error ? 10_000 : 4_000);
  }

  dismiss(id: number): void {
    this.#toasts = this.#toasts.filter((t) => t.id !== id);
    this.#notify();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#typingTimer);
    clearTimeout(this.#refreshTimer);
    this.backups.stop();
    for (const off of this.#unsubscribe) off();
    this.calls.close();
    await this.client.close();
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #run(what: string, work: () => Promise<void>): void {
    work().catch((err: unknown) => {
      if (this.#closed) return;
      this.toast(errorInWords(err), true);
      console.warn(`parley: ${what} failed`, err);
    });
  }

  async #loadSettings(): Promise<void> {
    const [prefs, notices] = await this.profile.store.transaction(async (tx) => [await tx.settings.get(PREFS_KEY), await tx.settings.get(NOTICES_KEY)]);
    if (prefs && typeof prefs === 'object' && !Array.isArray(prefs)) this.#prefs = prefs as unknown as Record<string, ChatPrefs>;
    if (Array.isArray(notices)) this.#notices = (notices as readonly unknown[]).filter(isNotice);
  }

  #listen(): void {
    const c = this.client;
    const on = <K extends keyof ClientEvents>(name: K, fn: (e: ClientEvents[K]) => void): void => {
      this.#unsubscribe.push(c.on(name, fn));
    };
    on('state', (s) => {
      this.#connection = s;
      this.#connectionAt = Date.now();
      this.#notify();
    });
    on('message', (e) => {
      const id = e.message.conversationId;
      this.#clearTyping(id, e.from.accountId);
      this.#changed(id);
      if (this.#openChat === id) this.markRead(id);
      if (e.message.direction === 'incoming') {
        const chat = this.#chats.find((x) => x.id === id);
        if (!this.prefs(id).muted && (this.#openChat !== id || document.visibilityState !== 'visible')) this.onIncoming?.(e.message, chat);
      }
    });
    on('reaction', (e) => e.message && this.#changed(e.message.conversationId));
    on('edit', (e) => e.message && this.#changed(e.message.conversationId));
    on('delete', (e) => this.#changed(e.groupId ?? e.from.accountId));
    on('receipt', (e) => {
      for (const m of e.updated) this.#changed(m.conversationId);
    });
    on('messageStatus', (e) => this.#changed(e.message.conversationId));
    // The SDK records timer changes in the chat (a `timer` system message, shown by the bubble list).
    on('timer', (e) => this.#changed(e.message?.conversationId ?? e.groupId ?? e.from.accountId));
    on('decryptionFailed', (e) => this.#changed(e.groupId ?? e.from.accountId));
    on('groupUpdate', (e) => this.#changed(e.groupId));
    // A group's master key, sender keys or state arrived: its name and members can be shown now.
    on('groupState', (e) => this.#changed(e.groupId));
    on('callRecorded', (e) => this.#changed(e.message.conversationId));
    on('expired', () => this.#changedAll());
    on('attachment', () => this.#changedAll());
    on('historySynced', () => this.#changedAll());
    on('readSynced', (e) => {
      for (const m of e.messages) this.#changed(m.conversationId);
    });
    on('typing', (e) => {
      const conv: ConversationId = e.groupId ?? e.from.accountId;
      if (e.started) {
        const m = this.#typing.get(conv) ?? new Map<AccountId, number>();
        m.set(e.from.accountId, Date.now() + TYPING_TTL_MS);
        this.#typing.set(conv, m);
        this.#notify();
      } else this.#clearTyping(conv, e.from.accountId);
    });
    on('identityChanged', (e) => {
      const who = e.number ?? this.nameOf(e.accountId);
      const text =
        e.status === 'verification-required'
          ? `${who}’s safety number changed. Sending is paused until you check it.`
          : `${who}’s safety number changed (a new phone, or someone in the middle). Compare it if you care.`;
      this.#addNotice({ conversationId: e.accountId, text, kind: 'identity' });
    });
    on('devicesChanged', (e) => {
      if (e.accountId === c.accountId || e.added.length === 0) return;
      this.#addNotice({ conversationId: e.accountId, text: `${this.nameOf(e.accountId)} linked a new device.`, kind: 'devices' });
    });
    on('error', (e) => console.warn(`parley: background ${e.context}`, e.error));
    // Everything queued while away has been processed: a good moment to re-read the list (group state refreshed
    // in the background, names that became known).
    on('queueEmpty', () => this.#scheduleRefresh());
  }

  #addNotice(n: Omit<ChatNotice, 'id' | 'at'>): void {
    const notice: ChatNotice = { ...n, id: `${Date.now()}-${Math.random().toString(36).slice(2)}`, at: Date.now() };
    this.#notices = [...this.#notices, notice].slice(-200);
    this.#changed(n.conversationId);
    this.profile.store
      .transaction((tx) => tx.settings.put(NOTICES_KEY, this.#notices as unknown as Parameters<typeof tx.settings.put>[1]))
      .catch((err: unknown) => console.warn('parley: notices not saved', err));
  }

  #clearTyping(conv: ConversationId, who: AccountId): void {
    if (this.#typing.get(conv)?.delete(who)) this.#notify();
  }

  #expireTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const m of this.#typing.values()) {
      for (const [who, until] of m) {
        if (until <= now) {
          m.delete(who);
          changed = true;
        }
      }
    }
    if (changed) this.#notify();
  }

  #changed(id: ConversationId): void {
    this.#versions.set(id, this.version(id) + 1);
    this.#scheduleRefresh();
    this.#notify();
  }

  #changedAll(): void {
    for (const c of this.#chats) this.#versions.set(c.id, this.version(c.id) + 1);
    this.#scheduleRefresh();
    this.#notify();
  }

  #scheduleRefresh(): void {
    if (this.#refreshTimer !== undefined || this.#closed) return;
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      this.refreshChats().catch((err: unknown) => console.warn('parley: chats not refreshed', err));
    }, 80);
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }
}

function isNotice(v: unknown): v is ChatNotice {
  if (typeof v !== 'object' || v === null) return false;
  const n = v as Record<string, unknown>;
  return typeof n.id === 'string' && typeof n.conversationId === 'string' && typeof n.at === 'number' && typeof n.text === 'string' && (n.kind === 'identity' || n.kind === 'devices' || n.kind === 'timer');
}

function contactTitle(c: ContactView): string {
  return c.number ?? `${c.accountId.slice(0, 8)}…`;
}

function sortTime(c: ChatSummary): number {
  return c.last?.timestamp ?? 0;
}
