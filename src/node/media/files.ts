/**
 * Files behind the SDK's media contract in Node (src/client/media/types.ts): a {@link MediaSource} over a
 * file on disk, and {@link FileMediaFiles}, a profile's media folder holding download staging files
 * (`.staging/<blobId>.enc`), writers' temporary files (`.tmp/`) and saved attachments (the folder itself).
 * The folder is private (0700), its files 0600.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, realpath, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { InPlaceFile, MediaFiles, MediaSource, MediaWriter, StagedFile } from '../../client/media/types.js';

/** Chunk size handed out: node:crypto's ciphers and hashes are fastest on 64 KiB chunks. */
export const READ_CHUNK_BYTES = 64 * 1024;
/** Bytes per read from the file: reading a MiB at a time and slicing it is 3x faster than 64 KiB reads. */
const READ_BYTES = 1024 * 1024;
/** While a saved file is written, its bytes are flushed to disk in the background every this many bytes. */
export const OUTPUT_FLUSH_BYTES = 32 * 1024 * 1024;
/** Longest file name an output gets, in UTF-8 bytes (ext4 and most others allow 255). */
const MAX_NAME_BYTES = 200;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

const asBytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** The bytes of `file` (up to byte `end`, inclusive), read a MiB at a time, in {@link READ_CHUNK_BYTES} slices. */
async function* readSlices(file: string, end?: number): AsyncGenerator<Uint8Array, void, undefined> {
  const stream = createReadStream(file, { end, highWaterMark: READ_BYTES });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const bytes = asBytes(chunk);
      for (let at = 0; at < bytes.length; at += READ_CHUNK_BYTES) yield bytes.subarray(at, at + READ_CHUNK_BYTES);
    }
  } finally {
    stream.destroy();
  }
}

/**
 * Streams `size` bytes of `file` in 64 KiB chunks; rejects with `CLIENT_BAD_MEDIA_INPUT` when the file has
 * fewer bytes by then (it changed while being read). Bytes past `size` are not read.
 */
async function* readExactly(file: string, size: number): AsyncGenerator<Uint8Array, void, undefined> {
  if (size === 0) return;
  let read = 0;
  try {
    for await (const chunk of readSlices(file, size - 1)) {
      read += chunk.length;
      yield chunk;
    }
  } catch (err) {
    throw new ClientError(ClientErrorCode.BadMediaInput, 'the file could not be read', { cause: err });
  }
  if (read !== size) throw new ClientError(ClientErrorCode.BadMediaInput, 'the file changed while it was being read');
}

/** The default resume key of a file: hex SHA-256 of `realpath \0 size \0 mtimeMs`. */
export function fileResumeKey(realPath: string, size: number, mtimeMs: number): string {
  return createHash('sha256').update(`${realPath}\0${size}\0${mtimeMs}`).digest('hex');
}

/** A file on disk that can be read several times. */
export interface FileMediaSource extends MediaSource {
  /** The resolved path that is read. */
  readonly path: string;
  readonly resumeKey: string;
}

/**
 * A {@link MediaSource} over the regular file at `file`: its size now, read from the start in 64 KiB chunks
 * on each `open()`. The resume key defaults to {@link fileResumeKey}, so it changes when the file does.
 * Rejects with `CLIENT_BAD_MEDIA_INPUT` when `file` is missing or not a regular file.
 */
export async function fileSource(file: string, options: { resumeKey?: string | undefined } = {}): Promise<FileMediaSource> {
  let real: string;
  let size: number;
  let mtimeMs: number;
  try {
    real = await realpath(file);
    const info = await stat(real);
    if (!info.isFile()) throw new ClientError(ClientErrorCode.BadMediaInput, 'not a regular file');
    ({ size, mtimeMs } = info);
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError(ClientErrorCode.BadMediaInput, `the file cannot be read (${errno(err) ?? 'error'})`, { cause: err });
  }
  return {
    path: real,
    size,
    resumeKey: options.resumeKey ?? fileResumeKey(real, size, mtimeMs),
    open: () => readExactly(real, size),
  };
}

// ---- names

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i;

/** File-name extensions of common content types, for names that have none. */
const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/jpeg': '.jpg',
  'image/png': '.png',
  'image/webp': '.webp',
  'image/gif': '.gif',
  'image/heic': '.heic',
  'image/avif': '.avif',
  'video/mp4': '.mp4',
  'video/quicktime': '.mov',
  'video/webm': '.webm',
  'audio/ogg': '.ogg',
  'audio/mpeg': '.mp3',
  'audio/mp4': '.m4a',
  'audio/aac': '.aac',
  'audio/wav': '.wav',
  'audio/x-wav': '.wav',
  'application/pdf': '.pdf',
  'text/plain': '.txt',
  'application/zip': '.zip',
};

/** Cuts `s` to at most `max` UTF-8 bytes without splitting a character. */
function cutUtf8(s: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > max) break;
    out += ch;
  }
  return out;
}

/**
 * A safe file name from a suggested one: no directories (`/` and `\`), no control or reserved characters,
 * no leading dots or spaces, not a reserved device name, at most 200 bytes with its extension kept. An empty
 * result becomes `file` (plus the extension of `contentType` when the name had none).
 */
export function sanitizeFileName(suggested: string, contentType = ''): string {
  const base = suggested.split(/[/\\]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  let name = base.normalize('NFC').replace(/[\u0000-\u001f\u007f-\u009f<>:"|?*\u202a-\u202e\u2066-\u2069]/g, '_');
  name = name.replace(/^[\s.]+/, '').replace(/[\s.]+$/, '');
  if (WINDOWS_RESERVED.test(name)) name = `_${name}`;
  let ext = path.extname(name);
  if (ext.length > 16 || ext === name) ext = '';
  let stem = ext === '' ? name : name.slice(0, -ext.length);
  if (stem === '') stem = 'file';
  if (ext === '') ext = EXTENSIONS[contentType.split(';')[0]?.trim().toLowerCase() ?? ''] ?? '';
  return cutUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(ext)) + ext;
}

/** The candidate names for `name`: itself, `stem (2).ext` ... `stem (99).ext`, then random suffixes. */
function* candidates(name: string): Generator<string> {
  const ext = path.extname(name);
  const stem = ext === '' ? name : name.slice(0, -ext.length);
  const room = (suffix: string): string => cutUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(suffix + ext)) + suffix + ext;
  yield name;
  for (let n = 2; n < 100; n++) yield room(` (${n})`);
  for (;;) yield room(`-${randomBytes(6).toString('hex')}`);
}

// ---- staging

/** Blob ids name staging files, so only a safe alphabet is accepted. */
const BLOB_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * One download's staging file. Appends go through one open handle in append mode (serialised); the handle
 * closes on `read` and `remove` and reopens on the next append. An interrupted append leaves a prefix of the
 * chunk, which `size` counts: still a correct prefix of the blob, from which the download resumes.
 *
 * Staging is a cache, never synced to disk: after a crash of the process the page cache still holds every
 * byte written; after a power loss a tail may be lost (then `size` is smaller and the download fetches it
 * again) or, rarely, damaged (then verification fails, the staged bytes are deleted and the user downloads
 * again). Nothing is acknowledged to anyone on the strength of staged bytes.
 */
class FileStagedFile implements StagedFile {
  readonly #file: string;
  readonly #dir: string;
  #handle: FileHandle | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  /** `dir` is the media folder (outputs go there, through `dir/.tmp`). */
  constructor(file: string, handle: FileHandle, dir: string) {
    this.#file = file;
    this.#handle = handle;
    this.#dir = dir;
  }

  /**
   * Moves the staged bytes to `.tmp/<random>` (a crash from here on leaves them to `sweepTemporary`, not to a
   * resume) and opens them for reading and writing in place.
   */
  inPlace(name: string, contentType: string): Promise<InPlaceFile> {
    return this.#serial(async () => {
      await this.#close();
      const tmp = path.join(this.#dir, '.tmp', randomBytes(16).toString('hex'));
      await rename(this.#file, tmp);
      let handle: FileHandle | undefined;
      try {
        handle = await open(tmp, 'r+');
        const { size } = await handle.stat();
        return new FileInPlace(this.#dir, tmp, sanitizeFileName(name, contentType), handle, size);
      } catch (err) {
        await handle?.close();
        await rm(tmp, { force: true });
        throw err;
      }
    });
  }

  /** Runs `op` after every earlier operation of this file. */
  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(op, op);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #close(): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    await handle.close();
  }

  size(): Promise<number> {
    return this.#serial(async () => {
      if (this.#handle !== undefined) return (await this.#handle.stat()).size;
      try {
        return (await stat(this.#file)).size;
      } catch (err) {
        if (errno(err) === 'ENOENT') return 0;
        throw err;
      }
    });
  }

  append(chunk: Uint8Array): Promise<void> {
    return this.#serial(async () => {
      this.#handle ??= await open(this.#file, 'a', FILE_MODE);
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await this.#handle.write(chunk, offset, chunk.length - offset);
        offset += bytesWritten;
      }
    });
  }

  async *read(): AsyncGenerator<Uint8Array, void, undefined> {
    const size = await this.#serial(async () => {
      await this.#close();
      try {
        return (await stat(this.#file)).size;
      } catch (err) {
        if (errno(err) === 'ENOENT') return 0;
        throw err;
      }
    });
    yield* readExactly(this.#file, size);
  }

  remove(): Promise<void> {
    return this.#serial(async () => {
      try {
        await this.#close();
      } finally {
        await rm(this.#file, { force: true });
      }
    });
  }
}

// ---- outputs

/** Writes to `.tmp/<random>`; `commit` syncs it and links it under a free name, `abort` deletes it. */
class FileMediaWriter implements MediaWriter {
  readonly #dir: string;
  readonly #tmp: string;
  readonly #name: string;
  #handle: FileHandle | undefined;
  #state: 'open' | 'committed' | 'aborted' = 'open';
  /** Bytes written since the last background flush began. */
  #unflushed = 0;
  #flushing: Promise<void> | undefined;

  constructor(dir: string, tmp: string, name: string, handle: FileHandle) {
    this.#dir = dir;
    this.#tmp = tmp;
    this.#name = name;
    this.#handle = handle;
  }

  #open(): FileHandle {
    if (this.#state !== 'open' || this.#handle === undefined) {
      throw new ClientError(ClientErrorCode.InvalidArgument, `the media writer was ${this.#state} already`);
    }
    return this.#handle;
  }

  async write(chunk: Uint8Array): Promise<void> {
    const handle = this.#open();
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
    // Flush in the background as the file grows (one flush at a time), so that the disk works while the
    // next bytes are decrypted instead of all at once in `commit`.
    this.#unflushed += chunk.length;
    if (this.#unflushed >= OUTPUT_FLUSH_BYTES && this.#flushing === undefined) {
      this.#unflushed = 0;
      this.#flushing = handle.datasync().finally(() => (this.#flushing = undefined));
      this.#flushing.catch(() => undefined);
    }
  }

  async commit(): Promise<string> {
    const handle = this.#open();
    this.#state = 'committed';
    this.#handle = undefined;
    try {
      await this.#flushing;
      await handle.sync();
    } finally {
      await handle.close();
    }
    return place(this.#tmp, this.#dir, this.#name);
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    const handle = this.#handle;
    this.#handle = undefined;
    try {
      await this.#flushing?.catch(() => undefined);
      await handle?.close();
    } finally {
      await rm(this.#tmp, { force: true });
    }
  }
}

/** Moves the synced file `tmp` into `dir` under the first free name of `name`'s candidates; deletes it on failure. */
async function place(tmp: string, dir: string, name: string): Promise<string> {
  try {
    for (const candidate of candidates(name)) {
      const target = path.join(dir, candidate);
      if (await claim(tmp, target)) {
        await syncDir(dir);
        return target;
      }
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  throw new Error('unreachable');
}

/**
 * A staged download being decrypted over itself ({@link InPlaceFile}): positioned reads and writes on one
 * handle, cut to the plaintext's size, synced and placed on `commit`. Unlike {@link FileMediaWriter} it is not
 * flushed in the background while it is rewritten: a sync writes every dirty page of the file, and before the
 * decryption has reached the end those include the staged ciphertext still to be rewritten, which would reach
 * the disk twice. One sync at the end writes each byte once.
 */
class FileInPlace implements InPlaceFile {
  readonly #dir: string;
  readonly #tmp: string;
  readonly #name: string;
  readonly #handle: FileHandle;
  #state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(
    dir: string,
    tmp: string,
    name: string,
    handle: FileHandle,
    readonly size: number,
  ) {
    this.#dir = dir;
    this.#tmp = tmp;
    this.#name = name;
    this.#handle = handle;
  }

  #open(): FileHandle {
    if (this.#state !== 'open') throw new ClientError(ClientErrorCode.InvalidArgument, `the media file was ${this.#state} already`);
    return this.#handle;
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    const handle = this.#open();
    let filled = 0;
    while (filled < into.length) {
      const { bytesRead } = await handle.read(into, filled, into.length - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    const handle = this.#open();
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async commit(size: number): Promise<string> {
    const handle = this.#open();
    this.#state = 'committed';
    try {
      await handle.truncate(size);
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(this.#tmp, { force: true });
      throw err;
    }
    await handle.close();
    return place(this.#tmp, this.#dir, this.#name);
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    try {
      await this.#handle.close();
    } finally {
      await rm(this.#tmp, { force: true });
    }
  }
}

/**
 * Moves `tmp` to `target` unless `target` exists (false then). A hard link fails atomically on an existing
 * name; where the file system has no hard links, the name is claimed with an exclusive create and replaced.
 */
async function claim(tmp: string, target: string): Promise<boolean> {
  try {
    await link(tmp, target);
    await unlink(tmp);
    return true;
  } catch (err) {
    const code = errno(err);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
  }
  try {
    await (await open(target, 'wx', FILE_MODE)).close();
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw err;
  }
  await rename(tmp, target);
  return true;
}

/** Syncs a folder so a rename in it survives a crash; not every platform allows it, which is fine. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort (Windows cannot open folders).
  }
}

/**
 * A profile's media folder implementing the SDK's {@link MediaFiles}: saved attachments directly in `dir`
 * under sanitised, unique names (locations are absolute paths), staging files in `dir/.staging`, unfinished
 * writes in `dir/.tmp`. The folders are created (0700) on first use.
 */
export class FileMediaFiles implements MediaFiles {
  readonly #dir: string;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.#dir = path.resolve(dir);
  }

  /** The media folder (absolute). */
  get dir(): string {
    return this.#dir;
  }

  #ensure(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(path.join(this.#dir, '.staging'), { recursive: true, mode: DIR_MODE });
      await mkdir(path.join(this.#dir, '.tmp'), { recursive: true, mode: DIR_MODE });
    })().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async staging(blobId: string): Promise<StagedFile> {
    if (!BLOB_ID.test(blobId)) throw new ClientError(ClientErrorCode.InvalidArgument, 'a blob id is 1 to 128 characters of A-Z a-z 0-9 _ -');
    await this.#ensure();
    const file = path.join(this.#dir, '.staging', `${blobId}.enc`);
    return new FileStagedFile(file, await open(file, 'a', FILE_MODE), this.#dir);
  }

  async output(name: string, contentType: string): Promise<MediaWriter> {
    await this.#ensure();
    const tmp = path.join(this.#dir, '.tmp', randomBytes(16).toString('hex'));
    const handle = await open(tmp, 'wx', FILE_MODE);
    return new FileMediaWriter(this.#dir, tmp, sanitizeFileName(name, contentType), handle);
  }

  /** A saved file's location, checked to be a file directly in the media folder. */
  #inside(location: string): string {
    const resolved = path.resolve(location);
    if (path.dirname(resolved) !== this.#dir || path.basename(resolved).startsWith('.')) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'not a location in this media folder');
    }
    return resolved;
  }

  async *read(location: string): AsyncGenerator<Uint8Array, void, undefined> {
    yield* readSlices(this.#inside(location));
  }

  async remove(location: string): Promise<void> {
    await rm(this.#inside(location), { force: true });
  }

  /**
   * Deletes what interrupted writes left in `.tmp` (call it at start-up, before any writer is open). Staging
   * files stay: they are how downloads resume.
   */
  async sweepTemporary(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(path.join(this.#dir, '.tmp'));
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw err;
    }
    await Promise.all(names.map((name) => rm(path.join(this.#dir, '.tmp', name), { force: true })));
  }
}
