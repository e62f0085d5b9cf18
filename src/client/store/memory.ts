/**
 * {@link ClientStore} in memory: for tests, for the browser before the web app's IndexedDB store, and for
 * short-lived bots. Transactions are real: writes are recorded in an undo log and rolled back when the
 * transaction (or a savepoint) fails. Records are copied in and out, so callers cannot change stored state
 * behind the store's back.
 */
import { SerialQueue } from '../async.js';
import type { AccountId, ConversationId, E164, GroupId, MessageId } from '../ids.js';
import { isUnread } from './unread.js';
import type {
  AccountRecord,
  ClientStore,
  ContactRecord,
  DeviceIdentityRecord,
  GroupRecord,
  IdentityRecord,
  JsonValue,
  MessageRecord,
  OutboxEntry,
  AttachmentRecord,
  StoredSenderKey,
  StoreTx,
  UploadJobRecord,
} from './types.js';

type Undo = () => void;

/** A Map whose writes are undone when the transaction fails. */
class TxMap<K, V> {
  readonly #map = new Map<K, V>();
  readonly #log: () => Undo[] | undefined;

  constructor(log: () => Undo[] | undefined) {
    this.#log = log;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    this.#record(key);
    this.#map.set(key, value);
  }

  delete(key: K): void {
    if (!this.#map.has(key)) return;
    this.#record(key);
    this.#map.delete(key);
  }

  clear(): void {
    for (const key of [...this.#map.keys()]) this.delete(key);
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  #record(key: K): void {
    const log = this.#log();
    if (!log) return;
    const had = this.#map.has(key);
    const old = this.#map.get(key);
    log.push(() => {
      if (had) this.#map.set(key, old as V);
      else this.#map.delete(key);
    });
  }
}

const copy = (b: Uint8Array): Uint8Array => b.slice();
const copyAccount = (a: AccountRecord): AccountRecord => ({
  ...a,
  identityPublicKey: copy(a.identityPublicKey),
  identityPrivateKey: copy(a.identityPrivateKey),
  accountIdentityKey: a.accountIdentityKey && copy(a.accountIdentityKey),
});
const copyIdentity = (r: IdentityRecord): IdentityRecord => ({ ...r, identityKey: copy(r.identityKey) });
const copyDeviceIdentity = (r: DeviceIdentityRecord): DeviceIdentityRecord => ({ ...r, identityKey: copy(r.identityKey) });
const copyAttachment = (a: AttachmentRecord): AttachmentRecord => ({
  ...a,
  mediaKey: copy(a.mediaKey),
  plaintextSha256: copy(a.plaintextSha256),
  encryptedSha256: copy(a.encryptedSha256),
  thumbnail: a.thumbnail && copy(a.thumbnail),
});
const copyUploadJob = (j: UploadJobRecord): UploadJobRecord => ({
  ...j,
  mediaKey: copy(j.mediaKey),
  completed: j.completed && { ...j.completed, plaintextSha256: copy(j.completed.plaintextSha256), encryptedSha256: copy(j.completed.encryptedSha256) },
});
const copyMessage = (m: MessageRecord): MessageRecord => ({
  ...m,
  reactions: m.reactions.map((r) => ({ ...r })),
  quote: m.quote && { ...m.quote },
  receipts: m.receipts.map((r) => ({ ...r })),
  groupUpdate: m.groupUpdate && {
    ...m.groupUpdate,
    added: [...m.groupUpdate.added],
    removed: [...m.groupUpdate.removed],
    promoted: [...m.groupUpdate.promoted],
    demoted: [...m.groupUpdate.demoted],
  },
  attachments: m.attachments.map(copyAttachment),
  ...(m.call ? { call: { ...m.call } } : {}),
});
/** A conversation's order: sender timestamp, then id. */
const byConversationOrder = (a: MessageRecord, b: MessageRecord): number => a.timestamp - b.timestamp || a.id.localeCompare(b.id);
const copyGroup = (g: GroupRecord): GroupRecord => ({
  ...g,
  masterKey: g.masterKey && copy(g.masterKey),
  avatar: g.avatar && copy(g.avatar),
  encryptedAttributes: g.encryptedAttributes && copy(g.encryptedAttributes),
  inviteLinkPassword: g.inviteLinkPassword && copy(g.inviteLinkPassword),
  members: g.members.map((m) => ({ ...m })),
  settings: { ...g.settings },
  senderKeySharedWith: [...g.senderKeySharedWith],
});
const copySenderKey = (k: StoredSenderKey): StoredSenderKey => ({ groupId: k.groupId, record: copy(k.record) });
const copyOutbox = (e: OutboxEntry): OutboxEntry => ({ ...e, content: copy(e.content), request: e.request && copy(e.request) });
const copyJson = (v: JsonValue): JsonValue => JSON.parse(JSON.stringify(v)) as JsonValue;

/** The in-memory {@link ClientStore}. */
export class InMemoryClientStore implements ClientStore {
  readonly #queue = new SerialQueue();
  #log: Undo[] | undefined;
  #closed = false;
  readonly #logOf = (): Undo[] | undefined => this.#log;

  readonly #account = new TxMap<'account', AccountRecord>(this.#logOf);
  readonly #settings = new TxMap<string, JsonValue>(this.#logOf);
  readonly #identities = new TxMap<string, IdentityRecord>(this.#logOf);
  /** Keyed `<account id>.<device id>`. */
  readonly #deviceIdentities = new TxMap<string, DeviceIdentityRecord>(this.#logOf);
  readonly #preKeys = new TxMap<number, Uint8Array>(this.#logOf);
  readonly #signedPreKeys = new TxMap<number, { record: Uint8Array; createdAt: number }>(this.#logOf);
  readonly #kyberPreKeys = new TxMap<number, { record: Uint8Array; lastResort: boolean; createdAt: number }>(this.#logOf);
  readonly #sessions = new TxMap<string, Uint8Array>(this.#logOf);
  readonly #contacts = new TxMap<string, ContactRecord>(this.#logOf);
  readonly #messages = new TxMap<string, MessageRecord>(this.#logOf);
  readonly #outbox = new TxMap<string, OutboxEntry>(this.#logOf);
  readonly #envelopes = new TxMap<string, number>(this.#logOf);
  readonly #groups = new TxMap<string, GroupRecord>(this.#logOf);
  /** Keyed `<distribution id>/<sender>.<device>`. */
  readonly #senderKeys = new TxMap<string, StoredSenderKey & { readonly sender: AccountId }>(this.#logOf);
  readonly #uploads = new TxMap<string, UploadJobRecord>(this.#logOf);

  readonly #tx: StoreTx = this.#makeTx();

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      if (this.#closed) throw new Error('store closed');
      const log: Undo[] = [];
      this.#log = log;
      try {
        return await fn(this.#tx);
      } catch (err) {
        for (let i = log.length - 1; i >= 0; i--) (log[i] as Undo)();
        throw err;
      } finally {
        this.#log = undefined;
      }
    });
  }

  async close(): Promise<void> {
    await this.#queue.run(async () => {
      this.#closed = true;
    });
  }

  #makeTx(): StoreTx {
    const sessionKey = (a: AccountId, d: number): string => `${a}.${d}`;
    return {
      account: {
        get: async () => {
          const a = this.#account.get('account');
          return a && copyAccount(a);
        },
        put: async (a) => this.#account.set('account', copyAccount(a)),
      },
      settings: {
        get: async (key) => {
          const v = this.#settings.get(key);
          return v === undefined ? undefined : copyJson(v);
        },
        put: async (key, value) => this.#settings.set(key, copyJson(value)),
      },
      identities: {
        get: async (id) => {
          const r = this.#identities.get(id);
          return r && copyIdentity(r);
        },
        put: async (r) => this.#identities.set(r.accountId, copyIdentity(r)),
      },
      deviceIdentities: {
        get: async (a, d) => {
          const r = this.#deviceIdentities.get(sessionKey(a, d));
          return r && copyDeviceIdentity(r);
        },
        put: async (r) => this.#deviceIdentities.set(sessionKey(r.accountId, r.deviceId), copyDeviceIdentity(r)),
        remove: async (a, d) => this.#deviceIdentities.delete(sessionKey(a, d)),
        list: async (a) =>
          [...this.#deviceIdentities.values()]
            .filter((r) => r.accountId === a)
            .sort((x, y) => x.deviceId - y.deviceId)
            .map(copyDeviceIdentity),
      },
      preKeys: {
        get: async (id) => {
          const r = this.#preKeys.get(id);
          return r && copy(r);
        },
        put: async (id, r) => this.#preKeys.set(id, copy(r)),
        remove: async (id) => this.#preKeys.delete(id),
        clear: async () => this.#preKeys.clear(),
      },
      signedPreKeys: {
        get: async (id) => {
          const r = this.#signedPreKeys.get(id);
          return r && copy(r.record);
        },
        put: async (id, record, createdAt) => this.#signedPreKeys.set(id, { record: copy(record), createdAt }),
        remove: async (id) => this.#signedPreKeys.delete(id),
        list: async () => [...this.#signedPreKeys.entries()].map(([id, r]) => ({ id, createdAt: r.createdAt })).sort((a, b) => a.id - b.id),
        clear: async () => this.#signedPreKeys.clear(),
      },
      kyberPreKeys: {
        get: async (id) => {
          const r = this.#kyberPreKeys.get(id);
          return r && { record: copy(r.record), lastResort: r.lastResort };
        },
        put: async (id, record, o) => this.#kyberPreKeys.set(id, { record: copy(record), lastResort: o.lastResort, createdAt: o.createdAt }),
        remove: async (id) => this.#kyberPreKeys.delete(id),
        list: async () =>
          [...this.#kyberPreKeys.entries()].map(([id, r]) => ({ id, lastResort: r.lastResort, createdAt: r.createdAt })).sort((a, b) => a.id - b.id),
        clear: async () => this.#kyberPreKeys.clear(),
      },
      sessions: {
        get: async (a, d) => {
          const r = this.#sessions.get(sessionKey(a, d));
          return r && copy(r);
        },
        put: async (a, d, r) => this.#sessions.set(sessionKey(a, d), copy(r)),
        remove: async (a, d) => this.#sessions.delete(sessionKey(a, d)),
        devices: async (a) =>
          [...this.#sessions.entries()]
            .map(([k]) => k)
            .filter((k) => k.slice(0, k.lastIndexOf('.')) === a)
            .map((k) => Number(k.slice(k.lastIndexOf('.') + 1)))
            .sort((x, y) => x - y),
        clear: async () => this.#sessions.clear(),
      },
      contacts: {
        get: async (id) => {
          const c = this.#contacts.get(id);
          return c && { ...c };
        },
        getByNumber: async (n: E164) => {
          for (const c of this.#contacts.values()) if (c.number === n) return { ...c };
          return undefined;
        },
        put: async (c) => this.#contacts.set(c.accountId, { ...c }),
        list: async () =>
          [...this.#contacts.values()]
            .map((c) => ({ ...c }))
            .sort((a, b) => (a.number ?? '').localeCompare(b.number ?? '') || a.accountId.localeCompare(b.accountId)),
      },
      messages: {
        get: async (id: MessageId) => {
          const m = this.#messages.get(id);
          return m && copyMessage(m);
        },
        put: async (m) => this.#messages.set(m.id, copyMessage(m)),
        remove: async (id) => this.#messages.delete(id),
        list: async (conversationId, options = {}) => {
          const all = [...this.#messages.values()]
            .filter((m) => m.conversationId === conversationId)
            .sort(byConversationOrder)
            .map(copyMessage);
          return options.limit === undefined ? all : all.slice(Math.max(0, all.length - options.limit));
        },
        expired: async (now) => [...this.#messages.values()].filter((m) => m.expiresAt !== undefined && m.expiresAt <= now).map(copyMessage),
        // In memory a scan is as cheap as an index would be (the SQLite and IndexedDB stores use indexes).
        unread: async (conversationId, options = {}) => {
          const all = [...this.#messages.values()].filter((m) => m.conversationId === conversationId && isUnread(m)).sort(byConversationOrder);
          return (options.limit === undefined ? all : all.slice(0, Math.max(0, options.limit))).map(copyMessage);
        },
        summaries: async () => {
          const by = new Map<ConversationId, { last: MessageRecord; unread: number }>();
          for (const m of this.#messages.values()) {
            const s = by.get(m.conversationId);
            const unread = isUnread(m) ? 1 : 0;
            if (!s) by.set(m.conversationId, { last: m, unread });
            else by.set(m.conversationId, { last: byConversationOrder(m, s.last) > 0 ? m : s.last, unread: s.unread + unread });
          }
          return [...by].map(([conversationId, s]) => ({ conversationId, last: copyMessage(s.last), unread: s.unread }));
        },
      },
      outbox: {
        get: async (id) => {
          const e = this.#outbox.get(id);
          return e && copyOutbox(e);
        },
        put: async (e) => this.#outbox.set(e.id, copyOutbox(e)),
        remove: async (id) => this.#outbox.delete(id),
        pending: async (limit) =>
          [...this.#outbox.values()]
            .filter((e) => e.state === 'pending')
            .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
            .slice(0, limit)
            .map(copyOutbox),
        findMessage: async (recipientId, timestamp) => {
          for (const e of this.#outbox.values()) {
            if (e.kind === 'message' && e.recipientId === recipientId && e.timestamp === timestamp) return copyOutbox(e);
          }
          return undefined;
        },
        prune: async (before) => {
          for (const e of [...this.#outbox.values()]) if (e.state !== 'pending' && e.createdAt < before) this.#outbox.delete(e.id);
        },
      },
      envelopes: {
        has: async (guid) => this.#envelopes.has(guid),
        add: async (guid, at) => this.#envelopes.set(guid, at),
        prune: async (before) => {
          for (const [guid, at] of [...this.#envelopes.entries()]) if (at < before) this.#envelopes.delete(guid);
        },
      },
      groups: {
        get: async (id: GroupId) => {
          const g = this.#groups.get(id);
          return g && copyGroup(g);
        },
        put: async (g) => this.#groups.set(g.id, copyGroup(g)),
        list: async () =>
          [...this.#groups.values()].map(copyGroup).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      },
      senderKeys: {
        get: async (sender, deviceId, distributionId) => {
          const k = this.#senderKeys.get(`${distributionId}/${sender}.${deviceId}`);
          return k && copySenderKey(k);
        },
        put: async (sender, deviceId, distributionId, key) =>
          this.#senderKeys.set(`${distributionId}/${sender}.${deviceId}`, { ...copySenderKey(key), sender }),
        removeGroup: async (groupId, sender) => {
          for (const [k, v] of [...this.#senderKeys.entries()]) {
            if (v.groupId === groupId && (sender === undefined || v.sender === sender)) this.#senderKeys.delete(k);
          }
        },
      },
      uploads: {
        get: async (resumeKey) => {
          const j = this.#uploads.get(resumeKey);
          return j && copyUploadJob(j);
        },
        put: async (job) => this.#uploads.set(job.resumeKey, copyUploadJob(job)),
        remove: async (resumeKey) => this.#uploads.delete(resumeKey),
        prune: async (before) => {
          for (const j of [...this.#uploads.values()]) if (j.createdAt < before) this.#uploads.delete(j.resumeKey);
        },
      },
      savepoint: async <T>(fn: () => Promise<T>): Promise<T> => {
        const log = this.#log;
        if (!log) throw new Error('savepoint outside a transaction');
        const mark = log.length;
        try {
          return await fn();
        } catch (err) {
          for (let i = log.length - 1; i >= mark; i--) (log[i] as Undo)();
          log.length = mark;
          throw err;
        }
      },
    };
  }
}
