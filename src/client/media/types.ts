/**
 * The media contract of the SDK (issue #6, docs/media.md): what a caller hands to `Client.sendAttachment`,
 * where downloads are staged and saved, and how transfers report progress. Everything here is isomorphic:
 * Node implementations (files, sharp, ffmpeg) live in `src/node/media/`, browser ones in the web app.
 */
import type { MediaType } from './crypto.js';

/** A file to send, after any compression: read as often as needed (a resumed upload reads it again). */
export interface MediaSource {
  /** Plaintext bytes. */
  readonly size: number;
  /** The bytes from the start, in chunks of any size. Each call starts a new read. */
  open(): AsyncIterable<Uint8Array>;
  /**
   * Names this content stably across runs (e.g. a hash of path, size and modification time), so that a send
   * interrupted by a crash resumes its upload under the same media key when asked again. Absent: no resume
   * across runs (within a run, a dropped connection still resumes).
   */
  readonly resumeKey?: string | undefined;
}

/** A small preview shown before the download (a blurred JPEG, at most {@link MAX_THUMBNAIL_BYTES}). */
export interface Thumbnail {
  readonly bytes: Uint8Array;
}

/** At most this many bytes of thumbnail travel in a message. */
export const MAX_THUMBNAIL_BYTES = 8 * 1024;

/** What to send: the prepared file and what the receiver should know of it. */
export interface AttachmentInput {
  readonly source: MediaSource;
  /** MIME type of the plaintext as sent. */
  readonly contentType: string;
  /** Default: from `contentType` (image/*, video/*, audio/*, else document). */
  readonly type?: MediaType | undefined;
  /** The original file name, without directories. */
  readonly fileName?: string | undefined;
  readonly width?: number | undefined;
  readonly height?: number | undefined;
  readonly durationMs?: number | undefined;
  readonly voiceNote?: boolean | undefined;
  readonly thumbnail?: Thumbnail | undefined;
}

/** Progress of an upload or download. */
export interface TransferProgress {
  readonly direction: 'upload' | 'download';
  /** Encrypted bytes transferred so far (including those a resume skipped). */
  readonly transferred: number;
  /** Encrypted bytes in all. */
  readonly total: number;
}

/** Options of a transfer. */
export interface TransferOptions {
  readonly signal?: AbortSignal | undefined;
  /** Called as bytes move (at most every chunk). */
  readonly onProgress?: ((progress: TransferProgress) => void) | undefined;
}

/**
 * The encrypted bytes of a download, kept until they are complete and verified (then decrypted and removed).
 * Staging makes downloads resumable: an interrupted download continues from `size`.
 */
export interface StagedFile {
  /** Bytes staged so far. */
  size(): Promise<number>;
  /** Every staged byte, from the start. */
  read(): AsyncIterable<Uint8Array>;
  /**
   * Appends (durably enough that `size` counts it after a crash, or not at all). The caller may reuse `chunk`
   * once the promise settles.
   */
  append(chunk: Uint8Array): Promise<void>;
  /** Drops everything staged. */
  remove(): Promise<void>;
  /**
   * Optional: turns the staged bytes into an output file named after `name` (as {@link MediaFiles.output}),
   * to be decrypted in place. The staged file is gone afterwards (`size` is 0).
   */
  inPlace?(name: string, contentType: string): Promise<InPlaceFile>;
}

/** Where verified plaintext is written: becomes visible under its final location only on `commit`. */
export interface MediaWriter {
  /** Appends `chunk`; the caller may reuse it once the promise settles. */
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the file final; resolves with its location (a path in Node). */
  commit(): Promise<string>;
  /** Discards what was written. */
  abort(): Promise<void>;
}

/**
 * A SHA-256 computed off the caller's thread (Node: a worker thread, `src/node/media/hash-worker.ts`), so that
 * a file's hashes run on another core than its encryption. `update` copies the bytes (the caller may reuse
 * them at once) and returns a promise only when the caller must wait for the other thread to catch up
 * (memory stays bounded); `digest` resolves with the hash of everything given, in order.
 */
export interface ParallelSha256 {
  update(bytes: Uint8Array): Promise<void> | undefined;
  digest(): Promise<Uint8Array>;
  /** Drops the hash (after a failure): its state is freed and `digest` may no longer be called. */
  discard(): void;
}

/** Where a transfer's SHA-256s may run in parallel with its encryption (optional: without it they run inline). */
export interface MediaHashing {
  sha256(): ParallelSha256;
  /**
   * The SHA-256 of the bytes fed and, in the same pass over them, the HMAC-SHA256 under `key` of `macPrefix`
   * followed by their first `macBytes` bytes (the whole 32-byte MAC). For a download's verification, whose
   * MAC is checked only at the end; optional: without it the MAC runs inline.
   */
  sha256AndHmac?(key: Uint8Array, macPrefix: Uint8Array, macBytes: number): ParallelDigests;
}

/** A {@link ParallelSha256} that also gives an HMAC of the same bytes ({@link MediaHashing.sha256AndHmac}). */
export interface ParallelDigests {
  update(bytes: Uint8Array): Promise<void> | undefined;
  digest(): Promise<{ readonly sha256: Uint8Array; readonly mac: Uint8Array }>;
  discard(): void;
}

/**
 * The staged bytes turned into the output file and decrypted over themselves ({@link StagedFile.inPlace}):
 * AES-CBC's plaintext block i sits at the offset of ciphertext block i (the IV is derived, not stored), so a
 * verified download needs no second file. The file leaves the staging area first: a crash midway leaves no
 * half-decrypted "staged" bytes to resume from (the next download starts afresh).
 */
export interface InPlaceFile {
  /** Bytes in the file (the staged ciphertext). */
  readonly size: number;
  /** Reads into `into` from `offset`: fills it (less only at the end of the file), resolves with the bytes read. */
  read(offset: number, into: Uint8Array): Promise<number>;
  /**
   * Writes `bytes` at `offset` (never over bytes not yet read: the caller writes behind its reads). The caller
   * may reuse `bytes` once the promise settles.
   */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** Cuts the file to `size` bytes, makes it durable and final; resolves with its location. */
  commit(size: number): Promise<string>;
  /** Deletes the file. */
  abort(): Promise<void>;
}

/** What the SDK needs of a device's media storage (`ClientOptions.media`). */
export interface MediaFiles {
  /** The staging file of a download, by blob id (created empty when absent). */
  staging(blobId: string): Promise<StagedFile>;
  /**
   * A writer for the plaintext of an attachment. `name` is a suggestion (sanitised by the implementation);
   * two attachments never get the same location.
   */
  output(name: string, contentType: string): Promise<MediaWriter>;
  /** Reads a saved file (a location `commit` returned), e.g. to forward or re-upload it. */
  read(location: string): AsyncIterable<Uint8Array>;
  /** Removes a saved file; no error when it is gone already. */
  remove(location: string): Promise<void>;
}
