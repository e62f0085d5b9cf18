/**
 * The IndexedDB layout of the browser store (one database per profile) and its upgrades.
 *
 * Every object store keeps rows `{ k, ...index fields, v }`: `k` is the primary key (in-line key path),
 * the index fields are the few plain values the queries need (conversation and time of a message, state
 * and time of an outbox entry, ...), and `v` is the whole record sealed by ./sealer.ts. The sealed record
 * is authoritative: index fields only narrow a query, whose results are checked again after opening.
 *
 * `meta` holds the format version of the records (the SDK's STORE_FORMAT_VERSION) and the record key.
 * The IndexedDB version is {@link SCHEMA_VERSION}; {@link upgradeSchema} takes any older database to it,
 * one step per version, inside the `versionchange` transaction (so a failed upgrade leaves the old one).
 */
import type { IDBPDatabase, IDBPTransaction } from 'idb';

/** The IndexedDB version of the store database (one upgrade step per version below). */
export const SCHEMA_VERSION = 2;

/** The object stores holding records of the SDK's stores. */
export const TABLES = [
  'account',
  'settings',
  'identities',
  'deviceIdentities',
  'preKeys',
  'signedPreKeys',
  'kyberPreKeys',
  'sessions',
  'contacts',
  'messages',
  'outbox',
  'envelopes',
  'groups',
  'senderKeys',
  'uploads',
] as const;
export type TableName = (typeof TABLES)[number];

export const META = 'meta';

/** Keys of the `meta` store. */
export const MetaKey = {
  /** `{ k, version }`: STORE_FORMAT_VERSION of the records. */
  format: 'format',
  /** `{ k, key }`: the record key, a non-extractable AES-GCM CryptoKey. */
  recordKey: 'record-key',
  /**
   * `{ k }`, present while the unread index of version 2 still lacks the rows written before it: the store fills
   * it in when it opens (it needs the record key to see which are unread) and removes this in the same commit.
   */
  unreadBackfill: 'unread-backfill',
} as const;

/** Index names, and the plain row fields they cover. */
export const Index = {
  /** messages: `[c, t, k]` = conversation, sender timestamp, id (the order of a conversation). */
  conversation: 'conversation',
  /** messages: `x` = expiresAt (absent while no timer runs, so such rows are not in the index). */
  expires: 'expires',
  /** outbox: `[s, a, k]` = state, createdAt, id. */
  state: 'state',
  /** outbox: `[r, t]` = recipient, timestamp. */
  recipient: 'recipient',
  /** outbox, uploads: `a` = createdAt; envelopes: `a` = when processed. */
  created: 'created',
  /** senderKeys: `g` = group id. */
  group: 'group',
  /**
   * messages (version 2): `[u, c, t, k]` = 1, conversation, sender timestamp, id; `u` is present only on unread
   * messages (`isUnread` of the SDK), so the index holds just those: unread counts and markRead read no history.
   */
  unread: 'unread',
} as const;

type UpgradeTx = IDBPTransaction<unknown, string[], 'versionchange'>;

/** Version 1: every store and index. */
function v1(db: IDBPDatabase): void {
  db.createObjectStore(META, { keyPath: 'k' });
  for (const name of TABLES) db.createObjectStore(name, { keyPath: 'k' });
}

/** Adds the indexes of version 1 (separate so that the store creation above stays a plain list). */
function v1Indexes(tx: UpgradeTx): void {
  const messages = tx.objectStore('messages');
  messages.createIndex(Index.conversation, ['c', 't', 'k']);
  messages.createIndex(Index.expires, 'x');
  const outbox = tx.objectStore('outbox');
  outbox.createIndex(Index.state, ['s', 'a', 'k']);
  outbox.createIndex(Index.recipient, ['r', 't']);
  outbox.createIndex(Index.created, 'a');
  tx.objectStore('envelopes').createIndex(Index.created, 'a');
  tx.objectStore('uploads').createIndex(Index.created, 'a');
  tx.objectStore('senderKeys').createIndex(Index.group, 'g');
}

/** Takes a database at `oldVersion` (0 = new) to {@link SCHEMA_VERSION}. */
export function upgradeSchema(db: IDBPDatabase, oldVersion: number, tx: UpgradeTx): void {
  if (oldVersion < 1) {
    v1(db);
    v1Indexes(tx);
  }
  if (oldVersion < 2) {
    tx.objectStore('messages').createIndex(Index.unread, ['u', 'c', 't', 'k']);
    // Rows written before have no `u` yet: the store adds it on opening (see MetaKey.unreadBackfill).
    if (oldVersion >= 1) void tx.objectStore(META).put({ k: MetaKey.unreadBackfill });
  }
  // Version 3 and later: `if (oldVersion < 3) { ... }`, each step also rewriting rows it changes.
}
