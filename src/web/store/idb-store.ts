/**
 * The browser's {@link ClientStore}: one IndexedDB database per profile (layout in ./schema.ts), every
 * record sealed at rest under a non-extractable AES-GCM key (./sealer.ts, which also says what that does and
 * does not protect).
 *
 * Transactions. IndexedDB transactions commit by themselves as soon as no request is pending, so one cannot
 * stay open across the SDK's awaits (WebCrypto, the protocol core). A {@link ClientStore} transaction here is
 * therefore a journal: reads see the journal first (the transaction's own writes), then the committed rows in
 * IndexedDB (each read a short read-only IndexedDB transaction); writes go to the journal only. When the
 * function resolves, the journal's rows are sealed and written in ONE read-write IndexedDB transaction with
 * `durability: 'strict'`, and the SDK's transaction resolves only after that one's `complete` event: a
 * committed transaction is on disk before the ack or send that follows it. When the function rejects, or the
 * IndexedDB transaction aborts (a crash, quota, a closed tab), the journal is dropped and IndexedDB holds the
 * previous state, all or nothing. Savepoints are marks in the journal's undo log.
 *
 * Reads are consistent because this store is the only writer of its database: transactions run one at a
 * time (a FIFO queue), and a Web Lock held while the store is open keeps a second tab (or a second
 * `openBrowserStore` of the same profile) out, with {@link StoreInUseError}. Two tabs on one device's keys
 * would ratchet the same sessions apart anyway.
 *
 * Messages are indexed by conversation and time, so the newest page of a 10,000-message chat is read by
 * walking that index backwards (no full scan), and {@link BrowserClientStore.messagesBefore} pages further back.
 */
import { deleteDB, openDB, unwrap, type IDBPDatabase } from 'idb';
import { SerialQueue } from '../../client/async.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { AccountId, ConversationId, E164, GroupId, MessageId } from '../../client/ids.js';
import {
  STORE_FORMAT_VERSION,
  type AccountRecord,
  type ClientStore,
  type ContactRecord,
  type ConversationSummaryRecord,
  type DeviceIdentityRecord,
  type GroupRecord,
  type IdentityRecord,
  type JsonValue,
  type MessageRecord,
  type OutboxEntry,
  type StoreTx,
  type UploadJobRecord,
} from '../../client/store/types.js';
import { isUnread } from '../../client/store/unread.js';
import { Index, META, MetaKey, SCHEMA_VERSION, upgradeSchema, type TableName } from './schema.js';
import { decodeValue, encodeValue } from './codec.js';
import { createStoreKey, decodeSealed, Sealer } from './sealer.js';

/** The IndexedDB database name of a profile's store. */
export const storeDatabaseName = (name: string): string => `parley-store/${name}`;
/** The IndexedDB database name of a profile's media cache (./media-files.ts). */
export const mediaDatabaseName = (name: string): string => `parley-media/${name}`;
/** How long {@link BrowserClientStore.open} waits for a profile another page holds, by default. */
const DEFAULT_LOCK_WAIT_MS = 2_000;
/** The Web Lock a profile's open store holds. */
const lockName = (name: string): string => `parley-store/${name}`;

/** A second tab (or a second open in this page) has the profile open: close it there first. */
export class StoreInUseError extends Error {
  override readonly name = 'StoreInUseError';
  constructor(readonly profile: string) {
    super('the profile is open in another tab or window');
  }
}

/** Options of {@link BrowserClientStore.open}. */
export interface BrowserStoreOptions {
  /**
   * How long to wait for the profile's lock when another page holds it, ms (default 2,000: a reloading
   * page's predecessor may still be letting go). 0: fail at once. Then {@link StoreInUseError}.
   */
  readonly lockWaitMs?: number | undefined;
  /**
   * Called with the commit's IndexedDB transaction after its writes are issued and before it completes.
   * For tests that abort it (or close the connection) to show that a crash mid-commit loses nothing committed.
   */
  readonly onCommit?: ((tx: IDBTransaction) => void) | undefined;
}

// ---- rows and the journal

type Key = string | number | Array<string | number>;
/** A row as IndexedDB keeps it: primary key, plain index fields, sealed record. */
interface Row {
  readonly k: Key;
  readonly v: Uint8Array;
  readonly [field: string]: unknown;
}

const keyString = (k: Key): string => JSON.stringify(k);
/** The additional data a row is sealed with: its store and key, so rows cannot be swapped. */
const whereOf = (table: TableName, k: Key): string => `${table}/${keyString(k)}`;
const cmp = (a: string | number, b: string | number): number => (a < b ? -1 : a > b ? 1 : 0);

/** How each table keys its records and which plain fields its indexes need. */
interface TableDef<V> {
  key(value: V): Key;
  plain?(value: V): Record<string, string | number>;
}

interface SettingRow {
  readonly key: string;
  readonly value: JsonValue;
}
interface PreKeyRow {
  readonly id: number;
  readonly record: Uint8Array;
}
interface SignedPreKeyRow extends PreKeyRow {
  readonly createdAt: number;
}
interface KyberPreKeyRow extends SignedPreKeyRow {
  readonly lastResort: boolean;
}
interface SessionRow {
  readonly accountId: AccountId;
  readonly deviceId: number;
  readonly record: Uint8Array;
}
interface EnvelopeRow {
  readonly guid: string;
  readonly at: number;
}
interface SenderKeyRow {
  readonly sender: AccountId;
  readonly deviceId: number;
  readonly distributionId: string;
  readonly groupId: GroupId;
  readonly record: Uint8Array;
}

interface Tables {
  account: AccountRecord;
  settings: SettingRow;
  identities: IdentityRecord;
  deviceIdentities: DeviceIdentityRecord;
  preKeys: PreKeyRow;
  signedPreKeys: SignedPreKeyRow;
  kyberPreKeys: KyberPreKeyRow;
  sessions: SessionRow;
  contacts: ContactRecord;
  messages: MessageRecord;
  outbox: OutboxEntry;
  envelopes: EnvelopeRow;
  groups: GroupRecord;
  senderKeys: SenderKeyRow;
  uploads: UploadJobRecord;
}

const DEFS: { readonly [T in TableName]: TableDef<Tables[T]> } = {
  account: { key: () => 'account' },
  settings: { key: (s) => s.key },
  identities: { key: (r) => r.accountId },
  deviceIdentities: { key: (r) => [r.accountId, r.deviceId] },
  preKeys: { key: (r) => r.id },
  signedPreKeys: { key: (r) => r.id },
  kyberPreKeys: { key: (r) => r.id },
  sessions: { key: (r) => [r.accountId, r.deviceId] },
  contacts: { key: (c) => c.accountId },
  messages: {
    key: (m) => m.id,
    plain: (m) => ({ c: m.conversationId, t: m.timestamp, ...(m.expiresAt === undefined ? {} : { x: m.expiresAt }), ...(isUnread(m) ? { u: 1 } : {}) }),
  },
  outbox: { key: (e) => e.id, plain: (e) => ({ s: e.state, a: e.createdAt, r: e.recipientId, t: e.timestamp }) },
  envelopes: { key: (e) => e.guid, plain: (e) => ({ a: e.at }) },
  groups: { key: (g) => g.id },
  senderKeys: { key: (k) => [k.distributionId, k.sender, k.deviceId], plain: (k) => ({ g: k.groupId }) },
  uploads: { key: (j) => j.resumeKey, plain: (j) => ({ a: j.createdAt }) },
};

interface Entry {
  readonly key: Key;
  /**
   * The record as ./codec.ts encodes it (a private copy: what the caller does to its object afterwards changes
   * nothing here, and a record that cannot be stored fails at `put`); undefined: deleted in this transaction.
   */
  readonly bytes: Uint8Array<ArrayBuffer> | undefined;
  /** The plain index fields of the row. */
  readonly plain: Record<string, string | number> | undefined;
}

interface TableJournal {
  /** Cleared in this transaction: committed rows are gone (entries are what was written after). */
  cleared: boolean;
  entries: Map<string, Entry>;
}

/** A transaction's writes, with an undo log for savepoints. */
class Journal {
  readonly tables = new Map<TableName, TableJournal>();
  readonly #undo: Array<() => void> = [];
  active = true;

  table(name: TableName): TableJournal {
    let t = this.tables.get(name);
    if (!t) {
      t = { cleared: false, entries: new Map() };
      this.tables.set(name, t);
    }
    return t;
  }

  write(name: TableName, key: Key, bytes: Uint8Array<ArrayBuffer> | undefined, plain?: Record<string, string | number>): void {
    const t = this.table(name);
    const ks = keyString(key);
    const old = t.entries.get(ks);
    this.#undo.push(() => {
      if (old) t.entries.set(ks, old);
      else t.entries.delete(ks);
    });
    t.entries.set(ks, { key, bytes, plain });
  }

  clear(name: TableName): void {
    const t = this.table(name);
    const { cleared, entries } = t;
    this.#undo.push(() => {
      t.cleared = cleared;
      t.entries = entries;
    });
    t.cleared = true;
    t.entries = new Map();
  }

  get mark(): number {
    return this.#undo.length;
  }

  rollbackTo(mark: number): void {
    while (this.#undo.length > mark) (this.#undo.pop() as () => void)();
  }
}

/**
 * Committed records by `<table>/<key>` (encoded, ./codec.ts), or null for known-absent ones: point reads
 * (the account, a session, an envelope guid) skip IndexedDB and the decryption when repeated. Exact because
 * this store is the database's only writer: it is filled from IndexedDB reads and from successful commits, and
 * a table cleared by a commit is dropped. Least recently used entries go beyond `max`.
 */
class RecordCache {
  readonly #map = new Map<string, Uint8Array<ArrayBuffer> | null>();

  constructor(readonly max: number) {}

  get(id: string): Uint8Array<ArrayBuffer> | null | undefined {
    const v = this.#map.get(id);
    if (v !== undefined) {
      this.#map.delete(id);
      this.#map.set(id, v);
    }
    return v;
  }

  set(id: string, v: Uint8Array<ArrayBuffer> | null): void {
    this.#map.delete(id);
    this.#map.set(id, v);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as string);
  }

  dropTable(table: TableName): void {
    for (const id of [...this.#map.keys()]) if (id.startsWith(`${table}/`)) this.#map.delete(id);
  }
}

/** How many records {@link RecordCache} keeps. */
const CACHE_RECORDS = 4_000;

// ---- raw IndexedDB helpers (cursors must be driven without awaiting anything else)

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new DOMException('request failed', 'UnknownError'));
  });
}

/**
 * Up to `limit` rows of `table` (through `index` when given) in `range`, walking in `direction`, skipping
 * those whose key `skip` names (rows this transaction wrote or deleted).
 */
function collect(
  db: IDBDatabase,
  table: TableName,
  index: string | undefined,
  range: IDBKeyRange | null,
  direction: IDBCursorDirection,
  limit: number,
  skip: (k: Key) => boolean,
): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const out: Row[] = [];
    if (limit <= 0) {
      resolve(out);
      return;
    }
    const tx = db.transaction(table, 'readonly');
    const store = tx.objectStore(table);
    const req = (index === undefined ? store : store.index(index)).openCursor(range, direction);
    req.onsuccess = () => {
      const cursor = req.result;
      if (!cursor) {
        resolve(out);
        return;
      }
      const row = cursor.value as Row;
      if (!skip(row.k)) out.push(row);
      if (out.length >= limit) resolve(out);
      else cursor.continue();
    };
    req.onerror = () => reject(req.error ?? new DOMException('cursor failed', 'UnknownError'));
  });
}

/**
 * The newest message row of every conversation: walks the conversation index backwards and jumps from each
 * conversation's newest row to the previous conversation (one cursor step per conversation, not per message).
 */
function newestPerConversation(db: IDBDatabase): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const out: Row[] = [];
    const req = db.transaction('messages', 'readonly').objectStore('messages').index(Index.conversation).openCursor(null, 'prev');
    req.onsuccess = () => {
      const cursor = req.result;
      if (!cursor) {
        resolve(out);
        return;
      }
      const row = cursor.value as Row;
      out.push(row);
      // `[c]` sorts before every `[c, t, k]`: the next row going backwards is the previous conversation's newest.
      cursor.continue([row.c as string]);
    };
    req.onerror = () => reject(req.error ?? new DOMException('cursor failed', 'UnknownError'));
  });
}

/**
 * How many unread rows each of `conversations` has: one `count` of its range of the unread index each, in one
 * read-only transaction (IndexedDB counts inside the database: no record is read, no cursor step runs in JS).
 */
function unreadCounts(db: IDBDatabase, conversations: readonly string[]): Promise<Map<string, number>> {
  const index = db.transaction('messages', 'readonly').objectStore('messages').index(Index.unread);
  return Promise.all(conversations.map(async (c) => [c, await request(index.count(IDBKeyRange.bound([1, c], [1, c, []])))] as const)).then((pairs) => new Map(pairs));
}

function getAll(db: IDBDatabase, table: TableName, index: string | undefined, range: IDBKeyRange | null): Promise<Row[]> {
  const store = db.transaction(table, 'readonly').objectStore(table);
  return request((index === undefined ? store : store.index(index)).getAll(range)) as Promise<Row[]>;
}

/** Keys `[first, *]` of a two- or three-part array key: from `[first]` to `[first, []]` (arrays sort after numbers and strings). */
const prefix = (first: string | number): IDBKeyRange => IDBKeyRange.bound([first], [first, []]);

const closedError = (): ClientError => new ClientError(ClientErrorCode.Closed, 'the browser store is closed');
const outsideError = (): Error => new Error('the store was used outside a transaction (or after it ended)');

// ---- the store

/** The IndexedDB {@link ClientStore} of a browser profile. */
export class BrowserClientStore implements ClientStore {
  readonly #name: string;
  readonly #db: IDBPDatabase;
  readonly #raw: IDBDatabase;
  readonly #sealer: Sealer;
  readonly #release: () => void;
  readonly #options: BrowserStoreOptions;
  readonly #queue = new SerialQueue();
  readonly #cache = new RecordCache(CACHE_RECORDS);
  #closed = false;

  private constructor(name: string, db: IDBPDatabase, sealer: Sealer, release: () => void, options: BrowserStoreOptions) {
    this.#name = name;
    this.#db = db;
    this.#raw = unwrap(db);
    this.#sealer = sealer;
    this.#release = release;
    this.#options = options;
  }

  /**
   * Opens (creating or upgrading) the store of profile `name`. Rejects with {@link StoreInUseError} when the
   * profile is open elsewhere, and with `CLIENT_STORE_CORRUPT` when the database was written by a newer
   * release or its record key is missing or wrong.
   */
  static async open(name: string, options: BrowserStoreOptions = {}): Promise<BrowserClientStore> {
    const release = await acquireLock(name, options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS);
    let db: IDBPDatabase | undefined;
    try {
      // Set once constructed; the callbacks below may fire before (then there is nothing to close yet).
      const opened: { store?: BrowserClientStore } = {};
      try {
        db = await openDB(storeDatabaseName(name), SCHEMA_VERSION, {
          upgrade: (d, oldVersion, _newVersion, tx) => upgradeSchema(d, oldVersion, tx),
          // Another connection wants to upgrade or delete the database (a newer release, a log-out): give way.
          blocking: () => {
            if (opened.store) opened.store.#terminate();
          },
          terminated: () => {
            if (opened.store) opened.store.#terminate();
          },
        });
      } catch (cause) {
        if (cause instanceof DOMException && cause.name === 'VersionError') {
          throw new ClientError(ClientErrorCode.StoreCorrupt, 'the browser store was written by a newer release', { cause });
        }
        throw cause;
      }
      const sealer = new Sealer(await loadMeta(db));
      await backfillUnread(db, sealer);
      opened.store = new BrowserClientStore(name, db, sealer, release, options);
      return opened.store;
    } catch (err) {
      db?.close();
      release();
      throw err;
    }
  }

  /** The profile name this store was opened with. */
  get name(): string {
    return this.#name;
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      if (this.#closed) throw closedError();
      const journal = new Journal();
      let result: T;
      try {
        result = await fn(this.#makeTx(journal));
      } finally {
        journal.active = false;
      }
      await this.#commit(journal);
      return result;
    });
  }

  /**
   * A page of a conversation, oldest first: the `limit` messages just older than `before` (by timestamp, then
   * id), or the newest `limit` when `before` is undefined. For scrolling back through a long chat without
   * reading more than a page; runs as its own (read-only) transaction.
   */
  messagesBefore(conversationId: ConversationId, before: { readonly timestamp: number; readonly id: MessageId } | undefined, limit: number): Promise<MessageRecord[]> {
    return this.#queue.run(async () => {
      if (this.#closed) throw closedError();
      const range = before === undefined ? prefix(conversationId) : IDBKeyRange.bound([conversationId], [conversationId, before.timestamp, before.id], false, true);
      const rows = await collect(this.#raw, 'messages', Index.conversation, range, 'prev', Math.max(0, Math.floor(limit)), () => false);
      const messages = await Promise.all(rows.map((r) => this.#open('messages', r)));
      return messages.filter((m) => m.conversationId === conversationId).sort(byConversationOrder);
    });
  }

  /** Closes the database and releases the profile (waits for the running transaction). Closing twice is fine. */
  async close(): Promise<void> {
    await this.#queue.run(async () => {
      if (this.#closed) return;
      this.#terminate();
    });
  }

  /**
   * Log-out: closes the store and deletes the profile's databases (this store's and its media cache's).
   * An open media cache of the profile in this page closes itself when asked to.
   */
  async destroy(): Promise<void> {
    await this.close();
    await deleteDB(storeDatabaseName(this.#name));
    await deleteDB(mediaDatabaseName(this.#name));
  }

  #terminate(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
    this.#release();
  }

  async #open<T extends TableName>(table: T, row: Row): Promise<Tables[T]> {
    return (await this.#sealer.open(whereOf(table, row.k), row.v)) as Tables[T];
  }

  async #seal(table: TableName, entry: Entry & { bytes: Uint8Array<ArrayBuffer> }): Promise<Row> {
    return { k: entry.key, ...entry.plain, v: await this.#sealer.sealEncoded(whereOf(table, entry.key), entry.bytes) };
  }

  /** Writes the journal in one read-write IndexedDB transaction; resolves after its `complete` event. */
  async #commit(journal: Journal): Promise<void> {
    interface Op {
      table: TableName;
      clear: boolean;
      puts: Row[];
      deletes: Key[];
    }
    const ops: Op[] = [];
    for (const [table, t] of journal.tables) {
      if (!t.cleared && t.entries.size === 0) continue;
      const values = [...t.entries.values()];
      const puts = await Promise.all(values.filter((e): e is Entry & { bytes: Uint8Array<ArrayBuffer> } => e.bytes !== undefined).map((e) => this.#seal(table, e)));
      const deletes = t.cleared ? [] : values.filter((e) => e.bytes === undefined).map((e) => e.key);
      ops.push({ table, clear: t.cleared, puts, deletes });
    }
    if (ops.length === 0) return;
    if (this.#closed) throw closedError();
    const tx = this.#raw.transaction(
      ops.map((o) => o.table),
      'readwrite',
      { durability: 'strict' },
    );
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error ?? new DOMException('the commit was aborted', 'AbortError'));
    });
    done.catch(() => undefined);
    try {
      for (const op of ops) {
        const store = tx.objectStore(op.table);
        if (op.clear) store.clear();
        for (const k of op.deletes) store.delete(k);
        for (const row of op.puts) store.put(row);
      }
      this.#options.onCommit?.(tx);
    } catch (err) {
      try {
        tx.abort();
      } catch {
        // already finished or aborted
      }
      throw err;
    }
    await done;
    // Committed: the cache follows.
    for (const [table, t] of journal.tables) {
      if (t.cleared) this.#cache.dropTable(table);
      for (const e of t.entries.values()) this.#cache.set(whereOf(table, e.key), e.bytes ?? null);
    }
  }

  #makeTx(journal: Journal): StoreTx {
    const db = this.#raw;
    const check = (): void => {
      if (!journal.active) throw outsideError();
      if (this.#closed) throw closedError();
    };

    const get = async <T extends TableName>(table: T, key: Key): Promise<Tables[T] | undefined> => {
      check();
      const t = journal.tables.get(table);
      const e = t?.entries.get(keyString(key));
      if (e) return e.bytes === undefined ? undefined : (decodeValue(e.bytes) as Tables[T]);
      if (t?.cleared) return undefined;
      const bytes = await committed(table, key);
      return bytes === null ? undefined : (decodeSealed(whereOf(table, key), bytes) as Tables[T]);
    };
    /** The committed record's encoded bytes (null when absent), through the cache. */
    const committed = async (table: TableName, key: Key): Promise<Uint8Array<ArrayBuffer> | null> => {
      const id = whereOf(table, key);
      const cached = this.#cache.get(id);
      if (cached !== undefined) return cached;
      const row = (await request(db.transaction(table, 'readonly').objectStore(table).get(key))) as Row | undefined;
      const bytes = row ? await this.#sealer.openEncoded(id, row.v) : null;
      this.#cache.set(id, bytes);
      return bytes;
    };
    const has = async (table: TableName, key: Key): Promise<boolean> => {
      check();
      const t = journal.tables.get(table);
      const e = t?.entries.get(keyString(key));
      if (e) return e.bytes !== undefined;
      if (t?.cleared) return false;
      return (await committed(table, key)) !== null;
    };
    const put = <T extends TableName>(table: T, value: Tables[T]): void => {
      check();
      const def = DEFS[table];
      journal.write(table, def.key(value), encodeValue(value), def.plain?.(value));
    };
    const remove = (table: TableName, key: Key): void => {
      check();
      journal.write(table, key, undefined);
    };
    const clear = (table: TableName): void => {
      check();
      journal.clear(table);
    };
    /** Journaled keys of `table` (rows the transaction replaced or deleted: committed copies are stale). */
    const skipper =
      (table: TableName) =>
      (k: Key): boolean =>
        journal.tables.get(table)?.entries.has(keyString(k)) ?? false;
    /**
     * Records of `table` matching `pred`: committed rows that `fetch` returns (a superset of the committed
     * matches, or exactly `limit` of them), minus those the transaction replaced or deleted, plus the
     * transaction's own matching writes.
     */
    const query = async <T extends TableName>(table: T, fetch: () => Promise<Row[]>, pred: (v: Tables[T]) => boolean): Promise<Array<Tables[T]>> => {
      check();
      const t = journal.tables.get(table);
      const rows = t?.cleared ? [] : await fetch();
      const skip = skipper(table);
      const out: Array<Tables[T]> = (await Promise.all(rows.filter((r) => !skip(r.k)).map((r) => this.#open(table, r)))).filter(pred);
      for (const e of journal.tables.get(table)?.entries.values() ?? []) {
        if (e.bytes === undefined) continue;
        const v = decodeValue(e.bytes) as Tables[T];
        if (pred(v)) out.push(v);
      }
      return out;
    };
    const all = <T extends TableName>(table: T, pred: (v: Tables[T]) => boolean = () => true): Promise<Array<Tables[T]>> =>
      query(table, () => getAll(db, table, undefined, null), pred);

    return {
      account: {
        get: () => get('account', 'account'),
        put: async (a) => put('account', a),
      },
      settings: {
        get: async (key) => (await get('settings', key))?.value,
        put: async (key, value) => put('settings', { key, value }),
      },
      identities: {
        get: (id) => get('identities', id),
        put: async (r) => put('identities', r),
      },
      deviceIdentities: {
        get: (a, d) => get('deviceIdentities', [a, d]),
        put: async (r) => put('deviceIdentities', r),
        remove: async (a, d) => remove('deviceIdentities', [a, d]),
        list: async (a) =>
          (await query('deviceIdentities', () => getAll(db, 'deviceIdentities', undefined, prefix(a)), (r) => r.accountId === a)).sort((x, y) => x.deviceId - y.deviceId),
      },
      preKeys: {
        get: async (id) => (await get('preKeys', id))?.record,
        put: async (id, record) => put('preKeys', { id, record }),
        remove: async (id) => remove('preKeys', id),
        clear: async () => clear('preKeys'),
      },
      signedPreKeys: {
        get: async (id) => (await get('signedPreKeys', id))?.record,
        put: async (id, record, createdAt) => put('signedPreKeys', { id, record, createdAt }),
        remove: async (id) => remove('signedPreKeys', id),
        list: async () => (await all('signedPreKeys')).map((r) => ({ id: r.id, createdAt: r.createdAt })).sort((a, b) => a.id - b.id),
        clear: async () => clear('signedPreKeys'),
      },
      kyberPreKeys: {
        get: async (id) => {
          const r = await get('kyberPreKeys', id);
          return r && { record: r.record, lastResort: r.lastResort };
        },
        put: async (id, record, o) => put('kyberPreKeys', { id, record, lastResort: o.lastResort, createdAt: o.createdAt }),
        remove: async (id) => remove('kyberPreKeys', id),
        list: async () =>
          (await all('kyberPreKeys')).map((r) => ({ id: r.id, lastResort: r.lastResort, createdAt: r.createdAt })).sort((a, b) => a.id - b.id),
        clear: async () => clear('kyberPreKeys'),
      },
      sessions: {
        get: async (a, d) => (await get('sessions', [a, d]))?.record,
        put: async (accountId, deviceId, record) => put('sessions', { accountId, deviceId, record }),
        remove: async (a, d) => remove('sessions', [a, d]),
        devices: async (a) =>
          (await query('sessions', () => getAll(db, 'sessions', undefined, prefix(a)), (r) => r.accountId === a)).map((r) => r.deviceId).sort((x, y) => x - y),
        clear: async () => clear('sessions'),
      },
      contacts: {
        get: (id) => get('contacts', id),
        getByNumber: async (n: E164) => (await all('contacts', (c) => c.number === n)).sort((a, b) => cmp(a.accountId, b.accountId))[0],
        put: async (c) => put('contacts', c),
        list: async () => (await all('contacts')).sort((a, b) => (a.number ?? '').localeCompare(b.number ?? '') || a.accountId.localeCompare(b.accountId)),
      },
      messages: {
        get: (id) => get('messages', id),
        put: async (m) => put('messages', m),
        remove: async (id) => remove('messages', id),
        list: async (conversationId, options = {}) => {
          const inConversation = (m: MessageRecord): boolean => m.conversationId === conversationId;
          if (options.limit === undefined) {
            return (await query('messages', () => getAll(db, 'messages', Index.conversation, prefix(conversationId)), inConversation)).sort(byConversationOrder);
          }
          // The newest `limit` committed rows the transaction did not touch, plus its own writes: the newest
          // `limit` of those are the newest `limit` of the conversation.
          const limit = Math.max(0, Math.floor(options.limit));
          const merged = await query(
            'messages',
            () => collect(db, 'messages', Index.conversation, prefix(conversationId), 'prev', limit, skipper('messages')),
            inConversation,
          );
          const sorted = merged.sort(byConversationOrder);
          return sorted.slice(Math.max(0, sorted.length - limit));
        },
        expired: async (now) =>
          query('messages', () => getAll(db, 'messages', Index.expires, IDBKeyRange.upperBound(now)), (m) => m.expiresAt !== undefined && m.expiresAt <= now),
        unread: async (conversationId, options = {}) => {
          const range = IDBKeyRange.bound([1, conversationId], [1, conversationId, []]);
          const limit = options.limit === undefined ? Infinity : Math.max(0, Math.floor(options.limit));
          const fetch = (): Promise<Row[]> =>
            limit === Infinity ? getAll(db, 'messages', Index.unread, range) : collect(db, 'messages', Index.unread, range, 'next', limit, skipper('messages'));
          const found = (await query('messages', fetch, (m) => m.conversationId === conversationId && isUnread(m))).sort(byConversationOrder);
          return limit === Infinity ? found : found.slice(0, limit);
        },
        summaries: async () => {
          check();
          const t = journal.tables.get('messages');
          if (t && (t.cleared || t.entries.size > 0)) {
            // This transaction wrote messages: the indexes do not show them yet, so read them all (rare: the SDK
            // asks in transactions of their own).
            return summarize(await all('messages'));
          }
          const rows = await newestPerConversation(db);
          const [newest, counts] = await Promise.all([Promise.all(rows.map((r) => this.#open('messages', r))), unreadCounts(db, rows.map((r) => r.c as string))]);
          return newest.map((last) => ({ conversationId: last.conversationId, last, unread: counts.get(last.conversationId) ?? 0 }));
        },
      },
      outbox: {
        get: (id) => get('outbox', id),
        put: async (e) => put('outbox', e),
        remove: async (id) => remove('outbox', id),
        pending: async (limit) => {
          const n = limit === undefined ? Infinity : Math.max(0, Math.floor(limit));
          const fetch = (): Promise<Row[]> =>
            n === Infinity ? getAll(db, 'outbox', Index.state, prefix('pending')) : collect(db, 'outbox', Index.state, prefix('pending'), 'next', n, skipper('outbox'));
          const entries = (await query('outbox', fetch, (e) => e.state === 'pending')).sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id));
          return n === Infinity ? entries : entries.slice(0, n);
        },
        findMessage: async (recipientId, timestamp) =>
          (
            await query('outbox', () => getAll(db, 'outbox', Index.recipient, IDBKeyRange.only([recipientId, timestamp])), (e) => e.kind === 'message' && e.recipientId === recipientId && e.timestamp === timestamp)
          ).sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id))[0],
        prune: async (before) => {
          const done = await query('outbox', () => getAll(db, 'outbox', Index.created, IDBKeyRange.upperBound(before, true)), (e) => e.state !== 'pending' && e.createdAt < before);
          for (const e of done) remove('outbox', e.id);
        },
      },
      envelopes: {
        has: (guid) => has('envelopes', guid),
        add: async (guid, at) => put('envelopes', { guid, at }),
        prune: async (before) => {
          const old = await query('envelopes', () => getAll(db, 'envelopes', Index.created, IDBKeyRange.upperBound(before, true)), (e) => e.at < before);
          for (const e of old) remove('envelopes', e.guid);
        },
      },
      groups: {
        get: (id) => get('groups', id),
        put: async (g) => put('groups', g),
        list: async () => (await all('groups')).sort((a, b) => cmp(a.name, b.name) || cmp(a.id, b.id)),
      },
      senderKeys: {
        get: async (sender, deviceId, distributionId) => {
          const k = await get('senderKeys', [distributionId, sender, deviceId]);
          return k && { groupId: k.groupId, record: k.record };
        },
        put: async (sender, deviceId, distributionId, key) => put('senderKeys', { sender, deviceId, distributionId, groupId: key.groupId, record: key.record }),
        removeGroup: async (groupId, sender) => {
          const keys = await query(
            'senderKeys',
            () => getAll(db, 'senderKeys', Index.group, IDBKeyRange.only(groupId)),
            (k) => k.groupId === groupId && (sender === undefined || k.sender === sender),
          );
          for (const k of keys) remove('senderKeys', DEFS.senderKeys.key(k));
        },
      },
      uploads: {
        get: (resumeKey) => get('uploads', resumeKey),
        put: async (job) => put('uploads', job),
        remove: async (resumeKey) => remove('uploads', resumeKey),
        prune: async (before) => {
          const old = await query('uploads', () => getAll(db, 'uploads', Index.created, IDBKeyRange.upperBound(before, true)), (j) => j.createdAt < before);
          for (const j of old) remove('uploads', j.resumeKey);
        },
      },
      savepoint: async <T>(fn: () => Promise<T>): Promise<T> => {
        check();
        const mark = journal.mark;
        try {
          return await fn();
        } catch (err) {
          journal.rollbackTo(mark);
          throw err;
        }
      },
    };
  }
}

/** A conversation's order: sender timestamp, then id (as the conversation index sorts them). */
function byConversationOrder(a: MessageRecord, b: MessageRecord): number {
  return a.timestamp - b.timestamp || cmp(a.id, b.id);
}

/** Summaries of every conversation of `messages` (the slow path: when the indexes cannot be used). */
function summarize(messages: readonly MessageRecord[]): ConversationSummaryRecord[] {
  const by = new Map<ConversationId, { last: MessageRecord; unread: number }>();
  for (const m of messages) {
    const s = by.get(m.conversationId);
    const unread = isUnread(m) ? 1 : 0;
    if (!s) by.set(m.conversationId, { last: m, unread });
    else by.set(m.conversationId, { last: byConversationOrder(m, s.last) > 0 ? m : s.last, unread: s.unread + unread });
  }
  return [...by].map(([conversationId, s]) => ({ conversationId, last: s.last, unread: s.unread }));
}

/**
 * Adds the unread index field to message rows written before schema version 2 (once, when the upgrade left
 * MetaKey.unreadBackfill): every row is opened to see whether it is unread, and the marked rows and the removal
 * of the marker commit together, so an interrupted backfill runs again on the next open.
 */
async function backfillUnread(db: IDBPDatabase, sealer: Sealer): Promise<void> {
  if ((await db.get(META, MetaKey.unreadBackfill)) === undefined) return;
  const raw = unwrap(db);
  const rows = await getAll(raw, 'messages', undefined, null);
  const marked: Row[] = [];
  for (const row of rows) {
    let m: MessageRecord;
    try {
      m = (await sealer.open(whereOf('messages', row.k), row.v)) as MessageRecord;
    } catch {
      continue; // an altered row: reading it reports that (CLIENT_STORE_CORRUPT); it is no reason to refuse the profile
    }
    if (isUnread(m) && row.u === undefined) marked.push({ ...row, u: 1 });
  }
  const tx = raw.transaction(['messages', META], 'readwrite', { durability: 'strict' });
  const done = new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new DOMException('the unread backfill was aborted', 'AbortError'));
  });
  for (const row of marked) tx.objectStore('messages').put(row);
  tx.objectStore(META).delete(MetaKey.unreadBackfill);
  await done;
}

/**
 * Checks the record format version and returns the record key, creating both in a new database. A database
 * whose records are of a newer format, or whose key is missing while records exist, is refused.
 */
async function loadMeta(db: IDBPDatabase): Promise<CryptoKey> {
  const format = (await db.get(META, MetaKey.format)) as { version?: unknown } | undefined;
  const stored = (await db.get(META, MetaKey.recordKey)) as { key?: unknown } | undefined;
  if (format !== undefined) {
    if (typeof format.version !== 'number') throw new ClientError(ClientErrorCode.StoreCorrupt, 'the browser store has no valid format version');
    if (format.version > STORE_FORMAT_VERSION) {
      throw new ClientError(ClientErrorCode.StoreCorrupt, `the browser store holds records of format ${format.version}, newer than this release's ${STORE_FORMAT_VERSION}`);
    }
    if (!(stored?.key instanceof CryptoKey)) throw new ClientError(ClientErrorCode.StoreCorrupt, 'the browser store has lost its record key');
    // Record shape migrations (format < STORE_FORMAT_VERSION) go here once there is a second format.
    return stored.key;
  }
  // A new database: create the key and the format marker together.
  const key = await createStoreKey();
  const tx = db.transaction(META, 'readwrite', { durability: 'strict' });
  await Promise.all([tx.store.put({ k: MetaKey.recordKey, key }), tx.store.put({ k: MetaKey.format, version: STORE_FORMAT_VERSION }), tx.done]);
  return key;
}

/** Takes the profile's Web Lock, waiting at most `waitMs`; returns its release. */
async function acquireLock(name: string, waitMs: number): Promise<() => void> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  // Without Web Locks (very old browsers) there is no cross-tab guard; the store still works in one tab.
  if (!locks) return () => undefined;
  const options: LockOptions = waitMs > 0 ? { signal: AbortSignal.timeout(waitMs) } : { ifAvailable: true };
  return new Promise((resolve, reject) => {
    locks
      .request(lockName(name), options, (lock) => {
        if (!lock) {
          reject(new StoreInUseError(name));
          return undefined;
        }
        // Held until the release function runs (or the page goes away).
        return new Promise<void>((release) => resolve(release));
      })
      .catch((err: unknown) => {
        // The wait timed out (the signal's TimeoutError) or was refused.
        if (err instanceof DOMException && (err.name === 'TimeoutError' || err.name === 'AbortError')) reject(new StoreInUseError(name));
        else reject(err instanceof Error ? err : new Error(String(err)));
      });
  });
}
