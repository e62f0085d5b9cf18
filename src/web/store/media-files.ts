/**
 * The browser's {@link MediaFiles}: the media cache of a profile, in its own IndexedDB database
 * (`parley-media/<profile>`), files kept as Blobs (which Chromium stores as files beside the database, so a
 * large video does not sit in the page's memory).
 *
 * - Staging (encrypted bytes of a download in progress): one row per appended chunk, keyed
 *   `[blob id, sequence]`; an append is one IndexedDB transaction, so after a crash a chunk counts fully or
 *   not at all, and a download resumes from {@link StagedFile.size}.
 * - Saved files (verified plaintext): a writer collects the chunks into a Blob and `commit` stores it in one
 *   transaction under a new location `idb:<uuid>/<sanitized name>`; until then nothing is visible.
 * - {@link BrowserMediaFiles.objectUrl} hands out a `blob:` URL for a saved file (for `<img>`, `<video>`,
 *   downloads); it stays valid until the file is removed or the cache is closed.
 *
 * Saved plaintext is not sealed like the store's records (see ./sealer.ts): the media key that would decrypt
 * the server's copy is, but the cached plaintext is as readable as any other browser cache.
 */
import { deleteDB, openDB, type IDBPDatabase } from 'idb';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { MediaFiles, MediaWriter, StagedFile } from '../../client/media/types.js';
import { sanitizeFileName } from '../../client/media/memory-files.js';
import { mediaDatabaseName } from './idb-store.js';

/** The IndexedDB version of the media database. */
export const MEDIA_SCHEMA_VERSION = 1;
const STAGED = 'staged';
const FILES = 'files';
const LOCATION_PREFIX = 'idb:';
/** Blobs are read a MiB at a time, handed out in 64 KiB slices (as the Node media files do). */
const READ_BYTES = 1024 * 1024;
const READ_CHUNK = 64 * 1024;
/** A writer folds its pending chunks into its Blob every this many bytes (so Chromium can move them to disk). */
const FOLD_BYTES = 4 * 1024 * 1024;

interface StagedRow {
  /** `[blob id, sequence]`. */
  readonly k: [string, number];
  readonly size: number;
  readonly data: Blob;
}

/** A saved file. */
interface FileRow {
  readonly k: string;
  readonly name: string;
  readonly contentType: string;
  readonly size: number;
  readonly savedAt: number;
  readonly data: Blob;
}

/** What {@link BrowserMediaFiles.stat} tells about a saved file. */
export interface SavedFileInfo {
  readonly location: string;
  readonly name: string;
  readonly contentType: string;
  readonly size: number;
  readonly savedAt: number;
}

const stagedRange = (blobId: string): IDBKeyRange => IDBKeyRange.bound([blobId], [blobId, []]);

function closed(): ClientError {
  return new ClientError(ClientErrorCode.Closed, 'the media cache is closed');
}

function writerClosed(): ClientError {
  return new ClientError(ClientErrorCode.InvalidArgument, 'the media writer was committed or aborted already');
}

async function* blobChunks(blob: Blob): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < blob.size; at += READ_BYTES) {
    const bytes = new Uint8Array(await blob.slice(at, at + READ_BYTES).arrayBuffer());
    for (let i = 0; i < bytes.length; i += READ_CHUNK) yield bytes.subarray(i, i + READ_CHUNK);
  }
}

/** The IndexedDB {@link MediaFiles} of a browser profile. */
export class BrowserMediaFiles implements MediaFiles {
  readonly #name: string;
  readonly #db: IDBPDatabase;
  readonly #urls = new Map<string, string>();
  #closed = false;

  private constructor(name: string, db: IDBPDatabase) {
    this.#name = name;
    this.#db = db;
  }

  /** Opens (creating) the media cache of profile `name`. */
  static async open(name: string): Promise<BrowserMediaFiles> {
    const opened: { files?: BrowserMediaFiles } = {};
    let db: IDBPDatabase;
    try {
      db = await openDB(mediaDatabaseName(name), MEDIA_SCHEMA_VERSION, {
        upgrade(d, oldVersion) {
          if (oldVersion < 1) {
            d.createObjectStore(STAGED, { keyPath: 'k' });
            d.createObjectStore(FILES, { keyPath: 'k' });
          }
        },
        // A log-out (or a newer release) deletes or upgrades the database: give way.
        blocking: () => {
            if (opened.files) opened.files.#terminate();
          },
        terminated: () => {
            if (opened.files) opened.files.#terminate();
          },
      });
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === 'VersionError') {
        throw new ClientError(ClientErrorCode.StoreCorrupt, 'the media cache was written by a newer release', { cause });
      }
      throw cause;
    }
    opened.files = new BrowserMediaFiles(name, db);
    return opened.files;
  }

  #check(): void {
    if (this.#closed) throw closed();
  }

  async staging(blobId: string): Promise<StagedFile> {
    this.#check();
    const db = this.#db;
    const rows = async (): Promise<StagedRow[]> => (await db.getAll(STAGED, stagedRange(blobId))) as StagedRow[];
    return {
      size: async () => {
        this.#check();
        return (await rows()).reduce((n, r) => n + r.size, 0);
      },
      read: () => this.#readStaged(rows),
      append: async (chunk) => {
        this.#check();
        if (chunk.length === 0) return;
        const data = new Blob([new Uint8Array(chunk)]);
        // The next sequence number is read in the same read-write transaction as the put, so two handles (or
        // two connections) appending to one blob cannot take the same number.
        const tx = db.transaction(STAGED, 'readwrite');
        const last = await tx.store.openCursor(stagedRange(blobId), 'prev');
        const seq = last ? (last.value as StagedRow).k[1] + 1 : 0;
        await Promise.all([tx.store.put({ k: [blobId, seq], size: chunk.length, data } satisfies StagedRow), tx.done]);
      },
      remove: async () => {
        this.#check();
        const tx = db.transaction(STAGED, 'readwrite');
        await Promise.all([tx.store.delete(stagedRange(blobId)), tx.done]);
      },
    };
  }

  async output(name: string, contentType: string): Promise<MediaWriter> {
    this.#check();
    const fileName = sanitizeFileName(name);
    const location = `${LOCATION_PREFIX}${crypto.randomUUID()}/${fileName}`;
    let blob = new Blob([], { type: contentType });
    let pending: Array<Uint8Array<ArrayBuffer>> = [];
    let pendingBytes = 0;
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const fold = (): void => {
      blob = new Blob([blob, ...pending], { type: contentType });
      pending = [];
      pendingBytes = 0;
    };
    return {
      write: async (chunk) => {
        if (state !== 'open') throw writerClosed();
        this.#check();
        pending.push(new Uint8Array(chunk));
        pendingBytes += chunk.length;
        if (pendingBytes >= FOLD_BYTES) fold();
      },
      commit: async () => {
        if (state !== 'open') throw writerClosed();
        this.#check();
        fold();
        const row: FileRow = { k: location, name: fileName, contentType, size: blob.size, savedAt: Date.now(), data: blob };
        const tx = this.#db.transaction(FILES, 'readwrite', { durability: 'strict' });
        await Promise.all([tx.store.put(row), tx.done]);
        state = 'committed';
        return location;
      },
      abort: async () => {
        state = 'aborted';
        pending = [];
        blob = new Blob([]);
      },
    };
  }

  read(location: string): AsyncIterable<Uint8Array> {
    return this.#readFile(location);
  }

  async *#readFile(location: string): AsyncGenerator<Uint8Array> {
    const row = await this.#file(location);
    yield* blobChunks(row.data);
  }

  async *#readStaged(rows: () => Promise<StagedRow[]>): AsyncGenerator<Uint8Array> {
    this.#check();
    for (const r of await rows()) yield* blobChunks(r.data);
  }

  async remove(location: string): Promise<void> {
    this.#check();
    const tx = this.#db.transaction(FILES, 'readwrite', { durability: 'strict' });
    await Promise.all([tx.store.delete(location), tx.done]);
    this.releaseObjectUrl(location);
  }

  // ---- for the app

  /**
   * A `blob:` URL of a saved file (the same one for repeated calls), valid until the file is removed, the
   * URL released ({@link releaseObjectUrl}) or the cache closed: do not revoke it yourself. Rejects with
   * `CLIENT_INVALID_ARGUMENT` when there is no file at `location`.
   */
  async objectUrl(location: string): Promise<string> {
    const known = this.#urls.get(location);
    if (known !== undefined) return known;
    const row = await this.#file(location);
    // Another call may have made one while this one read.
    const again = this.#urls.get(location);
    if (again !== undefined) return again;
    const url = URL.createObjectURL(row.data.type === row.contentType ? row.data : row.data.slice(0, row.data.size, row.contentType));
    this.#urls.set(location, url);
    return url;
  }

  /** Revokes the object URL of `location`, if one was handed out (a later {@link objectUrl} makes a new one). */
  releaseObjectUrl(location: string): void {
    const url = this.#urls.get(location);
    if (url === undefined) return;
    URL.revokeObjectURL(url);
    this.#urls.delete(location);
  }

  /** The saved file itself, as a Blob (typed with its content type). */
  async blob(location: string): Promise<Blob> {
    const row = await this.#file(location);
    return row.data.slice(0, row.data.size, row.contentType);
  }

  /** What is known of a saved file, or undefined when there is none. */
  async stat(location: string): Promise<SavedFileInfo | undefined> {
    this.#check();
    const row = (await this.#db.get(FILES, location)) as FileRow | undefined;
    return row && { location: row.k, name: row.name, contentType: row.contentType, size: row.size, savedAt: row.savedAt };
  }

  /** Every saved file (location order). */
  async list(): Promise<SavedFileInfo[]> {
    this.#check();
    const out: SavedFileInfo[] = [];
    let cursor = await this.#db.transaction(FILES).store.openCursor();
    while (cursor) {
      const r = cursor.value as FileRow;
      out.push({ location: r.k, name: r.name, contentType: r.contentType, size: r.size, savedAt: r.savedAt });
      cursor = await cursor.continue();
    }
    return out;
  }

  /** The blob ids that have staged bytes. */
  async stagedBlobIds(): Promise<string[]> {
    this.#check();
    const keys = (await this.#db.getAllKeys(STAGED)) as Array<[string, number]>;
    return [...new Set(keys.map((k) => k[0]))];
  }

  /** Closes the database and revokes the object URLs handed out. Closing twice is fine. */
  async close(): Promise<void> {
    this.#terminate();
  }

  /** Closes and deletes the media cache (log-out). */
  async destroy(): Promise<void> {
    this.#terminate();
    await deleteDB(mediaDatabaseName(this.#name));
  }

  async #file(location: string): Promise<FileRow> {
    this.#check();
    const row = (await this.#db.get(FILES, location)) as FileRow | undefined;
    if (!row) throw new ClientError(ClientErrorCode.InvalidArgument, 'no saved file at that location');
    return row;
  }

  #terminate(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const url of this.#urls.values()) URL.revokeObjectURL(url);
    this.#urls.clear();
    this.#db.close();
  }
}
