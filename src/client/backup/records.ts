/**
 * The plaintext of a backup (before compression): a stream of records, each `type u8 | length u32 BE |
 * payload`. Type 1 is a JSON record ({@link BackupRecord}; bytes as `{"$hex": "..."}`), type 2 a piece of the
 * file a preceding `file` record announced. The stream starts with `info` and ends with `end`, which counts
 * what came before (a reader checks the counts).
 *
 * What a backup holds (docs/backups.md "What is restored"): contacts, the identity keys of contacts as this
 * device saw them (with their verification status), groups (membership, master key, attributes; never sender
 * keys), messages with their receipts, reactions and attachment pointers, chosen settings, and optionally
 * the saved attachment files. Never: this device's identity or prekeys, sessions, sender keys, the outbox.
 */
import { fromHex, toHex, utf8 } from '../../protocol/index.js';
import { isAccountId, isE164, isGroupId } from '../ids.js';
import type { ContactRecord, GroupRecord, IdentityRecord, JsonValue, MessageRecord } from '../store/types.js';
import { badBackup } from './format.js';

/** Version of the record stream (inside a file of {@link BACKUP_FORMAT_VERSION}). */
export const RECORDS_VERSION = 1;
const JSON_RECORD = 1;
const FILE_CHUNK = 2;
/** The largest JSON record (a group with a large avatar, a long conversation's message). */
export const MAX_JSON_RECORD_BYTES = 16 << 20;
/** File bytes per chunk record. */
export const FILE_CHUNK_BYTES = 256 * 1024;

/** Counts of a backup's records (its `end` record, and what status and progress report). */
export interface BackupCounts {
  contacts: number;
  identities: number;
  groups: number;
  messages: number;
  attachments: number;
  /** Attachment files carried inside the backup. */
  files: number;
  settings: number;
}

export const emptyCounts = (): BackupCounts => ({ contacts: 0, identities: 0, groups: 0, messages: 0, attachments: 0, files: 0, settings: 0 });

export type BackupRecord =
  | { readonly t: 'info'; readonly version: number; readonly createdAt: number; readonly accountId: string; readonly number: string; readonly includesMedia: boolean }
  | { readonly t: 'contact'; readonly contact: ContactRecord }
  | { readonly t: 'identity'; readonly identity: IdentityRecord }
  | { readonly t: 'group'; readonly group: GroupRecord }
  /** `files[i]`: the `ref` of the file record carrying attachment i's bytes (it came before), or null. */
  | { readonly t: 'message'; readonly message: MessageRecord; readonly files: readonly (string | null)[] }
  | { readonly t: 'setting'; readonly key: string; readonly value: JsonValue }
  /** Announces `size` bytes of file chunks that follow (an attachment's saved plaintext). */
  | { readonly t: 'file'; readonly ref: string; readonly size: number; readonly name: string; readonly contentType: string }
  | { readonly t: 'end'; readonly counts: BackupCounts };

const HEX = '$hex';
const UNDEFINED = '$undefined';

// Bytes become `{"$hex": "..."}` and properties whose value is undefined `{"$undefined": true}` (so a record
// reads back with the same keys it was written with).
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { [HEX]: toHex(value) };
  if (value === undefined) return { [UNDEFINED]: true };
  return value;
}

function revive(value: unknown, depth = 0): unknown {
  if (depth > 32) throw badBackup('a backup record is nested too deeply');
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => revive(v, depth + 1));
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === HEX) {
    const hex = o[HEX];
    if (typeof hex !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(hex)) throw badBackup('malformed bytes in a backup record');
    return fromHex(hex);
  }
  if (keys.length === 1 && keys[0] === UNDEFINED && o[UNDEFINED] === true) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = revive(o[k], depth + 1);
  return out;
}

function frame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** The bytes of a JSON record. */
export function encodeRecord(record: BackupRecord): Uint8Array {
  const json = utf8(JSON.stringify(record, replacer));
  if (json.length > MAX_JSON_RECORD_BYTES) throw badBackup('a record is too large for a backup');
  return frame(JSON_RECORD, json);
}

/** The bytes of a file chunk record. */
export function encodeFileChunk(bytes: Uint8Array): Uint8Array {
  return frame(FILE_CHUNK, bytes);
}

// ---- validation -------------------------------------------------------------------------------------------
// A backup is authenticated (only the key's holder could make it), but a reader still refuses shapes the store
// would choke on, with CLIENT_BAD_BACKUP rather than a crash half-way through the import.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const optInt = (v: unknown): boolean => v === undefined || isInt(v);
const optStr = (v: unknown): boolean => v === undefined || typeof v === 'string';
const isBytes = (v: unknown, n?: number): v is Uint8Array => v instanceof Uint8Array && (n === undefined || v.length === n);
const optBytes = (v: unknown): boolean => v === undefined || v instanceof Uint8Array;

function need(ok: boolean, what: string): void {
  if (!ok) throw badBackup(`malformed ${what} record in the backup`);
}

function checkContact(c: unknown): ContactRecord {
  need(isObj(c) && typeof c.accountId === 'string' && isAccountId(c.accountId) && (c.number === undefined || (typeof c.number === 'string' && isE164(c.number))), 'contact');
  const o = c as Obj;
  need(typeof o.numberVerified === 'boolean' && isInt(o.expireTimer) && isInt(o.createdAt) && isInt(o.updatedAt), 'contact');
  return o as unknown as ContactRecord;
}

const STATUSES = new Set(['unverified', 'verified', 'verification-required']);

function checkIdentity(i: unknown): IdentityRecord {
  need(isObj(i) && typeof i.accountId === 'string' && isAccountId(i.accountId) && isBytes(i.identityKey, 33), 'identity');
  const o = i as Obj;
  need(typeof o.status === 'string' && STATUSES.has(o.status) && isInt(o.firstSeenAt) && optInt(o.changedAt), 'identity');
  return o as unknown as IdentityRecord;
}

function checkGroup(g: unknown): GroupRecord {
  need(isObj(g) && typeof g.id === 'string' && isGroupId(g.id) && (g.masterKey === undefined || isBytes(g.masterKey, 32)), 'group');
  const o = g as Obj;
  need(isInt(o.revision) && typeof o.name === 'string' && typeof o.description === 'string' && optBytes(o.avatar) && optStr(o.avatarContentType) && optBytes(o.encryptedAttributes), 'group');
  need(Array.isArray(o.members) && o.members.every((m) => isObj(m) && typeof m.accountId === 'string' && typeof m.admin === 'boolean' && isInt(m.joinedAt) && isInt(m.joinedRevision)), 'group');
  const s = o.settings;
  need(isObj(s) && typeof s.adminsManageMembers === 'boolean' && typeof s.adminsEditInfo === 'boolean' && typeof s.adminsSend === 'boolean', 'group');
  need(typeof o.creatorId === 'string' && typeof o.inviteLinkEnabled === 'boolean' && optBytes(o.inviteLinkPassword) && isInt(o.expireTimer) && typeof o.active === 'boolean', 'group');
  need(isInt(o.createdAt) && isInt(o.updatedAt), 'group');
  return o as unknown as GroupRecord;
}

const KINDS = new Set(['text', 'timer', 'undecryptable', 'group-update']);
const MESSAGE_STATUSES = new Set(['pending', 'sent', 'delivered', 'read', 'viewed', 'failed', 'received']);
const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'document']);
const ATTACHMENT_STATES = new Set(['pending', 'saved', 'failed']);

function checkMessage(m: unknown): MessageRecord {
  need(isObj(m) && typeof m.id === 'string' && m.id.length <= 256 && typeof m.conversationId === 'string' && (isAccountId(m.conversationId) || isGroupId(m.conversationId)), 'message');
  const o = m as Obj;
  need(typeof o.senderId === 'string' && (o.direction === 'incoming' || o.direction === 'outgoing') && isInt(o.timestamp) && optInt(o.serverTimestamp) && isInt(o.receivedAt), 'message');
  need(typeof o.kind === 'string' && KINDS.has(o.kind) && typeof o.body === 'string' && typeof o.status === 'string' && MESSAGE_STATUSES.has(o.status), 'message');
  need(typeof o.deleted === 'boolean' && typeof o.viewOnce === 'boolean' && isInt(o.expireTimer) && optInt(o.expiresAt) && optInt(o.editedAt) && optStr(o.error), 'message');
  need(o.quote === undefined || (isObj(o.quote) && isInt(o.quote.timestamp) && typeof o.quote.authorId === 'string' && typeof o.quote.text === 'string'), 'message');
  need(Array.isArray(o.reactions) && o.reactions.every((r) => isObj(r) && typeof r.authorId === 'string' && typeof r.emoji === 'string' && isInt(r.timestamp)), 'message');
  need(Array.isArray(o.receipts) && o.receipts.every((r) => isObj(r) && typeof r.accountId === 'string' && typeof r.status === 'string' && isInt(r.at)), 'message');
  need(o.groupUpdate === undefined || (isObj(o.groupUpdate) && isInt(o.groupUpdate.revision) && typeof o.groupUpdate.actorId === 'string'), 'message');
  need(
    Array.isArray(o.attachments) &&
      o.attachments.length <= 10 &&
      o.attachments.every(
        (a) =>
          isObj(a) &&
          typeof a.type === 'string' &&
          MEDIA_TYPES.has(a.type) &&
          typeof a.blobId === 'string' &&
          isBytes(a.mediaKey) &&
          isBytes(a.plaintextSha256) &&
          isBytes(a.encryptedSha256) &&
          isInt(a.size) &&
          a.size >= 0 &&
          typeof a.contentType === 'string' &&
          optStr(a.fileName) &&
          optInt(a.width) &&
          optInt(a.height) &&
          optInt(a.durationMs) &&
          typeof a.voiceNote === 'boolean' &&
          optBytes(a.thumbnail) &&
          isInt(a.uploadedAt) &&
          typeof a.state === 'string' &&
          ATTACHMENT_STATES.has(a.state) &&
          optStr(a.path) &&
          optStr(a.error),
      ),
    'message',
  );
  return o as unknown as MessageRecord;
}

const COUNT_KEYS: readonly (keyof BackupCounts)[] = ['contacts', 'identities', 'groups', 'messages', 'attachments', 'files', 'settings'];

/** Parses and checks one JSON record. */
export function decodeRecord(json: Uint8Array): BackupRecord {
  let r: unknown;
  try {
    r = revive(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json)));
  } catch (cause) {
    if (cause instanceof Error && cause.name === 'ClientError') throw cause;
    throw badBackup('a backup record does not parse', cause);
  }
  need(isObj(r) && typeof r.t === 'string', 'backup');
  const o = r as Obj;
  switch (o.t) {
    case 'info':
      need(o.version === RECORDS_VERSION && isInt(o.createdAt) && typeof o.accountId === 'string' && typeof o.number === 'string' && typeof o.includesMedia === 'boolean', 'info');
      return o as unknown as BackupRecord;
    case 'contact':
      return { t: 'contact', contact: checkContact(o.contact) };
    case 'identity':
      return { t: 'identity', identity: checkIdentity(o.identity) };
    case 'group':
      return { t: 'group', group: checkGroup(o.group) };
    case 'message': {
      const message = checkMessage(o.message);
      need(Array.isArray(o.files) && o.files.length === message.attachments.length && o.files.every((f) => f === null || typeof f === 'string'), 'message');
      return { t: 'message', message, files: o.files as (string | null)[] };
    }
    case 'setting':
      need(typeof o.key === 'string' && o.key.length <= 256 && o.value !== undefined, 'setting');
      return { t: 'setting', key: o.key as string, value: o.value as JsonValue };
    case 'file':
      need(typeof o.ref === 'string' && o.ref.length <= 64 && isInt(o.size) && (o.size) >= 0 && typeof o.name === 'string' && typeof o.contentType === 'string', 'file');
      return { t: 'file', ref: o.ref as string, size: o.size as number, name: (o.name as string).slice(0, 255), contentType: (o.contentType as string).slice(0, 255) };
    case 'end': {
      const c = o.counts;
      need(isObj(c) && COUNT_KEYS.every((k) => isInt(c[k])), 'end');
      return { t: 'end', counts: c as BackupCounts };
    }
    default:
      throw badBackup(`unknown record type in the backup`);
  }
}

/** One item of the record stream: a JSON record, or a piece of the current file. */
export type StreamItem = { readonly kind: 'record'; readonly record: BackupRecord } | { readonly kind: 'chunk'; readonly bytes: Uint8Array };

/** Splits the decompressed stream into records (through a {@link ByteReader}-like `read`). */
export async function* decodeRecords(read: (n: number) => Promise<Uint8Array>): AsyncGenerator<StreamItem, void, undefined> {
  for (;;) {
    const head = await read(5);
    if (head.length === 0) return;
    if (head.length < 5) throw badBackup('the backup\'s records are truncated');
    const type = head[0] as number;
    const length = new DataView(head.buffer, head.byteOffset + 1, 4).getUint32(0);
    if (type === JSON_RECORD) {
      if (length > MAX_JSON_RECORD_BYTES) throw badBackup('a backup record is too large');
      const payload = await read(length);
      if (payload.length < length) throw badBackup('the backup\'s records are truncated');
      yield { kind: 'record', record: decodeRecord(payload) };
    } else if (type === FILE_CHUNK) {
      if (length > FILE_CHUNK_BYTES) throw badBackup('a file chunk of the backup is too large');
      const payload = await read(length);
      if (payload.length < length) throw badBackup('the backup\'s records are truncated');
      yield { kind: 'chunk', bytes: payload };
    } else {
      throw badBackup('unknown record kind in the backup');
    }
  }
}
