/**
 * Reading a backup: header, unlock (the caller's recovery key or password gives the backup key), frames
 * checked and decrypted, gunzip, records parsed and checked — all of it before anything is imported. Files
 * carried inside the backup are written to the media files as they stream by and removed again when anything
 * fails later; the records are imported in ONE store transaction at the end. A wrong key, a truncated or
 * tampered file therefore leaves the profile as it was.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { constantTimeEqual, type CryptoProvider } from '../../protocol/index.js';
import { abortError, ClientError, ClientErrorCode } from '../errors.js';
import type { MediaFiles, MediaWriter } from '../media/types.js';
import type { AttachmentRecord, ClientStore, ContactRecord, GroupRecord, IdentityRecord, JsonValue, MessageRecord, StoreTx } from '../store/types.js';
import { badBackup, ByteReader, decryptFrames, frameKeys, readHeader, type BackupHeader } from './format.js';
import { gunzip } from './gzip.js';
import type { BackupProgress } from './export.js';
import { decodeRecords, emptyCounts, type BackupCounts, type BackupRecord } from './records.js';

/** Gives the backup key of a header (or throws `CLIENT_WRONG_BACKUP_KEY`, `CLIENT_BACKUP_LOCKED`, ...). */
export type BackupUnlocker = (header: BackupHeader) => Promise<Uint8Array>;

export interface ReadBackupOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  /** Where files carried in the backup are written (without it, a backup with files is refused). */
  readonly media?: MediaFiles | undefined;
  readonly unlock: BackupUnlocker;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: BackupProgress) => void) | undefined;
}

/** What a restore brought back. */
export interface RestoredBackup {
  readonly createdAt: number;
  /** What the backup holds. */
  readonly counts: BackupCounts;
  /** What was added to the store (items the profile had already are kept as they were). */
  readonly imported: { readonly contacts: number; readonly identities: number; readonly groups: number; readonly messages: number; readonly files: number };
  readonly includesMedia: boolean;
}

interface Parsed {
  info: Extract<BackupRecord, { t: 'info' }>;
  contacts: ContactRecord[];
  identities: IdentityRecord[];
  groups: GroupRecord[];
  settings: Array<{ key: string; value: JsonValue }>;
  messages: MessageRecord[];
  counts: BackupCounts;
}

interface SavedFile {
  readonly location: string;
  readonly sha256: Uint8Array;
}

/** The attachments of a restored message: files carried in the backup are saved; others can be fetched again. */
function restoredAttachments(m: MessageRecord, files: readonly (string | null)[], saved: Map<string, SavedFile>): AttachmentRecord[] {
  return m.attachments.map((a, i): AttachmentRecord => {
    const ref = files[i];
    if (ref !== null && ref !== undefined) {
      const file = saved.get(ref);
      if (!file) throw badBackup('a message names a file the backup does not carry');
      if (!constantTimeEqual(file.sha256, a.plaintextSha256)) throw badBackup('a file of the backup does not match its attachment');
      return { ...a, state: 'saved', path: file.location, error: undefined };
    }
    // The old device's copy is not here: the pointer stays, and the file is fetched again from the server while it has it.
    if (a.state === 'saved') return { ...a, state: 'pending', path: undefined, error: undefined };
    return { ...a, path: undefined };
  });
}

/** Reads, checks and parses the whole backup, writing carried files; removes those files when anything fails. */
async function parse(o: ReadBackupOptions, source: AsyncIterable<Uint8Array>, saved: Map<string, SavedFile>): Promise<Parsed> {
  const reader = new ByteReader(source);
  try {
    const { header, encoded } = await readHeader(reader);
    const backupKey = await o.unlock(header);
    const keys = await frameKeys(o.crypto, backupKey, header, encoded);
    backupKey.fill(0);
    const plain = new ByteReader(gunzip(decryptFrames(o.crypto, keys, reader, header.frameBytes)));
    const out: Partial<Parsed> & Omit<Parsed, 'info'> = { contacts: [], identities: [], groups: [], settings: [], messages: [], counts: emptyCounts() };
    const c = out.counts;
    let info: Parsed['info'] | undefined;
    let ended: BackupCounts | undefined;
    let file: { ref: string; size: number; written: number; writer: MediaWriter; hash: ReturnType<typeof sha256.create> } | undefined;
    let records = 0;
    try {
      for await (const item of decodeRecords((n) => plain.read(n))) {
        if (o.signal?.aborted) throw abortError(o.signal);
        if (ended) throw badBackup('records after the end of the backup');
        if (item.kind === 'chunk') {
          if (!file || file.written + item.bytes.length > file.size) throw badBackup('file bytes the backup did not announce');
          await file.writer.write(item.bytes);
          file.hash.update(item.bytes);
          file.written += item.bytes.length;
          if (file.written === file.size) {
            const location = await file.writer.commit();
            saved.set(file.ref, { location, sha256: file.hash.digest() });
            c.files++;
            file = undefined;
          }
          continue;
        }
        if (file) throw badBackup('a file of the backup is cut short');
        const r = item.record;
        if (!info && r.t !== 'info') throw badBackup('the backup does not start with its info record');
        if (++records % 1000 === 0) o.onProgress?.({ phase: 'verify', done: records, total: undefined });
        switch (r.t) {
          case 'info':
            if (info) throw badBackup('two info records');
            info = r;
            break;
          case 'contact':
            out.contacts.push(r.contact);
            c.contacts++;
            break;
          case 'identity':
            out.identities.push(r.identity);
            c.identities++;
            break;
          case 'group':
            out.groups.push(r.group);
            c.groups++;
            break;
          case 'setting':
            out.settings.push({ key: r.key, value: r.value });
            c.settings++;
            break;
          case 'file': {
            if (saved.has(r.ref)) throw badBackup('two files with one reference');
            if (!o.media) throw new ClientError(ClientErrorCode.InvalidArgument, 'this backup carries files: restoring it needs the media files (ClientOptions.media)');
            const writer = await o.media.output(r.name, r.contentType);
            file = { ref: r.ref, size: r.size, written: 0, writer, hash: sha256.create() };
            if (r.size === 0) {
              saved.set(r.ref, { location: await writer.commit(), sha256: file.hash.digest() });
              c.files++;
              file = undefined;
            }
            break;
          }
          case 'message':
            out.messages.push({ ...r.message, attachments: restoredAttachments(r.message, r.files, saved) });
            c.messages++;
            c.attachments += r.message.attachments.length;
            break;
          case 'end':
            ended = r.counts;
            break;
        }
      }
    } catch (err) {
      await file?.writer.abort().catch(() => undefined);
      throw err;
    }
    if (!info) throw badBackup('the backup holds no records');
    if (!ended) throw badBackup('the backup\'s records end early');
    for (const k of Object.keys(c) as (keyof BackupCounts)[]) {
      if (ended[k] !== c[k]) throw badBackup('the backup\'s records do not match its counts');
    }
    return { ...out, info };
  } finally {
    await reader.close().catch(() => undefined);
  }
}

/** Adds what the profile lacks; what it has (newer: seen since it registered) stays. */
async function importInto(tx: StoreTx, p: Parsed, usedFiles: Set<string>): Promise<RestoredBackup['imported']> {
  const n = { contacts: 0, identities: 0, groups: 0, messages: 0, files: 0 };
  for (const contact of p.contacts) {
    if (await tx.contacts.get(contact.accountId)) continue;
    await tx.contacts.put(contact);
    n.contacts++;
  }
  for (const identity of p.identities) {
    const local = await tx.identities.get(identity.accountId);
    if (!local) {
      await tx.identities.put(identity);
      n.identities++;
    } else if (constantTimeEqual(local.identityKey, identity.identityKey) && identity.status === 'verified' && local.status !== 'verified') {
      // The same key the user had verified: the verification stands.
      await tx.identities.put({ ...local, status: 'verified' });
    }
  }
  for (const group of p.groups) {
    const local = await tx.groups.get(group.id);
    if (!local) {
      await tx.groups.put(group);
      n.groups++;
      continue;
    }
    // Seen since registration (a placeholder, or a newer revision): keep its state, fill in what it lacks.
    const newer = group.revision > local.revision;
    await tx.groups.put({
      ...(newer ? group : local),
      masterKey: local.masterKey ?? group.masterKey,
      name: local.masterKey ? local.name : group.name,
      description: local.masterKey ? local.description : group.description,
      avatar: local.masterKey ? local.avatar : group.avatar,
      avatarContentType: local.masterKey ? local.avatarContentType : group.avatarContentType,
      distributionId: local.distributionId,
      senderKeySharedWith: local.senderKeySharedWith,
      createdAt: Math.min(local.createdAt, group.createdAt),
    });
  }
  for (const { key, value } of p.settings) await tx.settings.put(key, value);
  for (const m of p.messages) {
    if (await tx.messages.get(m.id)) continue;
    await tx.messages.put(m);
    n.messages++;
    for (const a of m.attachments) {
      if (a.state !== 'saved' || a.path === undefined) continue;
      usedFiles.add(a.path);
      n.files++;
    }
  }
  return n;
}

/**
 * Restores a backup from `source` (the file's bytes) into the store: verifies and parses all of it first,
 * then imports in one transaction. The profile must be registered to the backup's account (re-registering
 * the same number keeps the account). Throws `CLIENT_BAD_BACKUP`, `CLIENT_WRONG_BACKUP_KEY`,
 * `CLIENT_BACKUP_LOCKED` (from the unlocker) or `CLIENT_INVALID_ARGUMENT` (another account's backup) with
 * nothing imported.
 */
export async function readBackup(o: ReadBackupOptions, source: AsyncIterable<Uint8Array>): Promise<RestoredBackup> {
  const saved = new Map<string, SavedFile>();
  const removeFiles = async (): Promise<void> => {
    for (const f of saved.values()) await o.media?.remove(f.location).catch(() => undefined);
  };
  try {
    const parsed = await parse(o, source, saved);
    const used = new Set<string>();
    o.onProgress?.({ phase: 'import', done: 0, total: parsed.messages.length });
    const imported = await o.store.transaction(async (tx) => {
      const account = await tx.account.get();
      if (!account) throw new ClientError(ClientErrorCode.NotRegistered, 'register (the same number) before restoring a backup');
      if (account.accountId !== parsed.info.accountId) throw new ClientError(ClientErrorCode.InvalidArgument, 'this backup belongs to another account');
      return importInto(tx, parsed, used);
    });
    o.onProgress?.({ phase: 'import', done: parsed.messages.length, total: parsed.messages.length });
    // Files of messages the profile had already are not needed.
    for (const f of saved.values()) if (!used.has(f.location)) await o.media?.remove(f.location).catch(() => undefined);
    return { createdAt: parsed.info.createdAt, counts: parsed.counts, imported, includesMedia: parsed.info.includesMedia };
  } catch (err) {
    await removeFiles();
    throw err;
  }
}
