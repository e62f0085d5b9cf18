/**
 * Writing a backup: the records of the store (records.ts), gzip, frames (format.ts), streamed into a
 * {@link BackupSink} while the SHA-256 of the file (its blob id) and its size are taken. The store is read in
 * short transactions (one per conversation), never across a file read, so receiving goes on meanwhile.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex, type CryptoProvider, type IncrementalHash } from '../../protocol/index.js';
import { abortError, ClientError, ClientErrorCode } from '../errors.js';
import type { ConversationId } from '../ids.js';
import type { MediaFiles } from '../media/types.js';
import type { ClientStore, GroupRecord, IdentityRecord, JsonValue, MessageRecord } from '../store/types.js';
import {
  BACKUP_FORMAT_VERSION,
  BACKUP_KEY_BYTES,
  DEFAULT_FRAME_BYTES,
  encodeHeader,
  encryptFrames,
  frameKeys,
  MAX_FRAME_BYTES,
  wrapBackupKey,
  type BackupHeader,
  type KdfParams,
  type KeySlot,
} from './format.js';
import { gzip } from './gzip.js';
import { emptyCounts, encodeFileChunk, encodeRecord, FILE_CHUNK_BYTES, RECORDS_VERSION, type BackupCounts } from './records.js';

/** Where the bytes of a backup file go (a file, a buffer, an upload staging area). */
export interface BackupSink {
  write(chunk: Uint8Array): Promise<void>;
}

/** The wrapping keys a backup key is stored under (keys.ts derives them). */
export interface BackupProtection {
  readonly recovery?: { readonly salt: Uint8Array; readonly wrapKey: Uint8Array } | undefined;
  readonly password?: { readonly slotId: string; readonly salt: Uint8Array; readonly kdf: KdfParams; readonly wrapKey: Uint8Array } | undefined;
}

/** Progress of a backup or restore. */
export interface BackupProgress {
  readonly phase: 'export' | 'upload' | 'download' | 'verify' | 'import';
  /** Units done: conversations (export), bytes (upload, download), records (verify, import). */
  readonly done: number;
  /** Units in all, when known. */
  readonly total: number | undefined;
}

export interface WriteBackupOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  /** Where saved attachments are read from (needed with `includeMedia`). */
  readonly media?: MediaFiles | undefined;
  /** Carry the saved attachment files inside the backup (otherwise only their pointers: the blobs stay on the server). */
  readonly includeMedia?: boolean | undefined;
  /** Settings keys to carry (user preferences; never key-management state). */
  readonly settingsKeys?: readonly string[] | undefined;
  readonly protection: BackupProtection;
  readonly now?: (() => number) | undefined;
  /** Plaintext bytes per frame (default 1 MiB). */
  readonly frameBytes?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: BackupProgress) => void) | undefined;
}

/** What was written. */
export interface WrittenBackup {
  /** Bytes of the file. */
  readonly size: number;
  /** Hex SHA-256 of the file (its blob id on the server). */
  readonly sha256: string;
  readonly createdAt: number;
  readonly counts: BackupCounts;
  readonly header: BackupHeader;
}

/** The key slots of the header, wrapping `backupKey` under each protection. */
async function slotsOf(crypto: CryptoProvider, backupKey: Uint8Array, p: BackupProtection): Promise<KeySlot[]> {
  const slots: KeySlot[] = [];
  if (p.recovery) slots.push({ kind: 'recovery', salt: p.recovery.salt, wrapped: await wrapBackupKey(crypto, p.recovery.wrapKey, backupKey, 'recovery') });
  if (p.password) {
    const { slotId, salt, kdf, wrapKey } = p.password;
    slots.push({ kind: 'password', slotId, salt, kdf, wrapped: await wrapBackupKey(crypto, wrapKey, backupKey, 'password') });
  }
  if (slots.length === 0) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup needs a recovery key or a password');
  return slots;
}

/** Identities and groups as a backup carries them: sender-key state is dropped (the restored device makes new keys). */
function groupForBackup(g: GroupRecord): GroupRecord {
  return { ...g, distributionId: undefined, senderKeySharedWith: [] };
}

/** The last part of a location, as a file name suggestion. */
function fileNameOf(location: string): string {
  return location.split(/[\\/]/).pop() ?? 'attachment';
}

/** The record stream of the store. */
async function* recordStream(o: WriteBackupOptions, createdAt: number, counts: BackupCounts): AsyncGenerator<Uint8Array, void, undefined> {
  const check = (): void => {
    if (o.signal?.aborted) throw abortError(o.signal);
  };
  const snapshot = await o.store.transaction(async (tx) => {
    const account = await tx.account.get();
    if (!account) throw new ClientError(ClientErrorCode.NotRegistered, 'register before making a backup');
    const contacts = await tx.contacts.list();
    const groups = await tx.groups.list();
    const peers = new Set<string>(contacts.map((c) => c.accountId));
    for (const g of groups) for (const m of g.members) if (m.accountId !== account.accountId) peers.add(m.accountId);
    const identities: IdentityRecord[] = [];
    for (const id of peers) {
      const r = await tx.identities.get(id as IdentityRecord['accountId']);
      if (r) identities.push(r);
    }
    const settings: Array<{ key: string; value: JsonValue }> = [];
    for (const key of o.settingsKeys ?? []) {
      const value = await tx.settings.get(key);
      if (value !== undefined) settings.push({ key, value });
    }
    return { account, contacts, groups, identities, settings };
  });
  const includeMedia = o.includeMedia === true;
  if (includeMedia && !o.media) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup with media needs the media files (ClientOptions.media)');
  yield encodeRecord({ t: 'info', version: RECORDS_VERSION, createdAt, accountId: snapshot.account.accountId, number: snapshot.account.number, includesMedia: includeMedia });
  for (const contact of snapshot.contacts) {
    yield encodeRecord({ t: 'contact', contact });
    counts.contacts++;
  }
  for (const identity of snapshot.identities) {
    yield encodeRecord({ t: 'identity', identity });
    counts.identities++;
  }
  for (const g of snapshot.groups) {
    yield encodeRecord({ t: 'group', group: groupForBackup(g) });
    counts.groups++;
  }
  for (const { key, value } of snapshot.settings) {
    yield encodeRecord({ t: 'setting', key, value });
    counts.settings++;
  }
  const conversations: ConversationId[] = [...snapshot.contacts.map((c) => c.accountId), ...snapshot.groups.map((g) => g.id)];
  let nextRef = 0;
  for (let i = 0; i < conversations.length; i++) {
    check();
    const id = conversations[i] as ConversationId;
    const messages: MessageRecord[] = await o.store.transaction((tx) => tx.messages.list(id));
    for (const message of messages) {
      const files: (string | null)[] = [];
      for (const a of message.attachments) {
        counts.attachments++;
        if (!includeMedia || a.state !== 'saved' || a.path === undefined || !o.media) {
          files.push(null);
          continue;
        }
        const ref = String(nextRef++);
        yield encodeRecord({ t: 'file', ref, size: a.size, name: a.fileName ?? fileNameOf(a.path), contentType: a.contentType });
        let written = 0;
        for await (const chunk of o.media.read(a.path)) {
          check();
          for (let at = 0; at < chunk.length; at += FILE_CHUNK_BYTES) {
            const piece = chunk.subarray(at, Math.min(chunk.length, at + FILE_CHUNK_BYTES));
            if (written + piece.length > a.size) throw new ClientError(ClientErrorCode.StoreCorrupt, 'a saved attachment is larger than its record says');
            written += piece.length;
            yield encodeFileChunk(piece);
          }
        }
        if (written !== a.size) throw new ClientError(ClientErrorCode.StoreCorrupt, 'a saved attachment is smaller than its record says');
        counts.files++;
        files.push(ref);
      }
      yield encodeRecord({ t: 'message', message, files });
      counts.messages++;
    }
    o.onProgress?.({ phase: 'export', done: i + 1, total: conversations.length });
  }
  yield encodeRecord({ t: 'end', counts: { ...counts } });
}

/**
 * Writes a backup of the store into `sink` under a fresh random backup key (wrapped under the protections):
 * header, then the compressed records in encrypted frames. Resolves with its size, SHA-256 and counts.
 */
export async function writeBackup(o: WriteBackupOptions, sink: BackupSink): Promise<WrittenBackup> {
  const frameBytes = o.frameBytes ?? DEFAULT_FRAME_BYTES;
  if (!Number.isInteger(frameBytes) || frameBytes < 1024 || frameBytes > MAX_FRAME_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, 'frames are 1 KiB to 8 MiB');
  const createdAt = (o.now ?? Date.now)();
  const backupKey = o.crypto.randomBytes(BACKUP_KEY_BYTES);
  const header: BackupHeader = {
    version: BACKUP_FORMAT_VERSION,
    createdAt,
    compression: 'gzip',
    frameBytes,
    salt: o.crypto.randomBytes(32),
    slots: await slotsOf(o.crypto, backupKey, o.protection),
  };
  const encoded = encodeHeader(header);
  const keys = await frameKeys(o.crypto, backupKey, header, encoded);
  backupKey.fill(0);
  const hash: IncrementalHash = o.crypto.createSha256?.() ?? sha256.create();
  let size = 0;
  const put = async (bytes: Uint8Array): Promise<void> => {
    hash.update(bytes);
    size += bytes.length;
    await sink.write(bytes);
  };
  await put(encoded);
  const counts = emptyCounts();
  for await (const frame of encryptFrames(o.crypto, keys, gzip(recordStream(o, createdAt, counts)), frameBytes)) {
    await put(frame);
  }
  return { size, sha256: toHex(hash.digest()), createdAt, counts, header };
}
