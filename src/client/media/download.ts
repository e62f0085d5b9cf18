/**
 * Downloading an attachment (docs/media.md "Download"): verify, then decrypt.
 *
 * 1. The encrypted bytes are appended to the blob's staging file ({@link MediaFiles.staging}) as they arrive,
 *    hashed and MACed on the way. A dropped connection continues from the staged length (`Range`); so does a
 *    download after a restart (the staged bytes are hashed again first).
 * 2. Complete: the SHA-256 must be the pointer's and the MAC must match, else `CLIENT_BAD_MEDIA` and the
 *    staged bytes are deleted. Nothing is decrypted before this.
 * 3. The staged file is decrypted over itself when it can be ({@link StagedFile.inPlace}: no second file),
 *    else into a {@link MediaWriter}; either way the plaintext's size and SHA-256 are checked (which catches
 *    bytes that changed on disk between the passes too) before the file is committed, and the staging file is
 *    gone. With {@link DownloadContext.hashing} the SHA-256s run on another thread than the MAC and the AES.
 */
import type { CryptoProvider } from '../../protocol/index.js';
import { sleep } from '../async.js';
import { ClientError, ClientErrorCode, abortError } from '../errors.js';
import type { AttachmentRecord } from '../store/types.js';
import { Backoff, type BackoffOptions } from '../transport/backoff.js';
import type { BlobHttp } from './blob-http.js';
import { createMediaVerifier, decryptMedia, decryptMediaToSink, encryptedMediaSize, MEDIA_MAC_BYTES, type ExpectedMedia } from './crypto.js';
import { isFetchable } from './pointers.js';
import type { InPlaceFile, MediaFiles, MediaHashing, StagedFile, TransferOptions } from './types.js';

export interface DownloadContext {
  readonly crypto: CryptoProvider;
  readonly http: BlobHttp;
  readonly files: MediaFiles;
  /** Failed requests in a row before giving up (default 6). */
  readonly maxAttempts?: number | undefined;
  readonly backoff?: BackoffOptions | undefined;
  /** Where the SHA-256s run (Node: `workerHashing`, on another core); default inline. */
  readonly hashing?: MediaHashing | undefined;
}

/** What a download saved. */
export interface DownloadedMedia {
  /** The location {@link MediaWriter.commit} gave. */
  readonly path: string;
  /** Encrypted bytes fetched by this call (not counting those staged before). */
  readonly bytesFetched: number;
}

const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/heic': 'heic',
  'video/mp4': 'mp4',
  'video/quicktime': 'mov',
  'video/webm': 'webm',
  'audio/ogg': 'ogg',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'audio/aac': 'aac',
  'audio/wav': 'wav',
  'application/pdf': 'pdf',
  'application/zip': 'zip',
  'text/plain': 'txt',
};

/** The name to suggest for a saved attachment: the sender's file name, else one made of the blob id and type. */
export function suggestedName(a: AttachmentRecord): string {
  if (a.fileName !== undefined && a.fileName !== '') return a.fileName;
  const ext = EXTENSIONS[a.contentType.split(';')[0]?.trim().toLowerCase() ?? ''] ?? 'bin';
  return `${a.type}-${a.blobId.slice(0, 12)}.${ext}`;
}

/**
 * Fetches, verifies and decrypts `a` into the media folder; resolves with where it was saved. Throws
 * `CLIENT_BAD_MEDIA` for a file that fails verification (its staged bytes are gone then), `CLIENT_BAD_BLOB` when
 * the blob is not on the server, and network errors once the retries ran out (the staged bytes stay: the next
 * try continues from them).
 */
export async function downloadAttachment(ctx: DownloadContext, a: AttachmentRecord, options: TransferOptions = {}): Promise<DownloadedMedia> {
  if (!isFetchable(a)) throw new ClientError(ClientErrorCode.BadMedia, 'the attachment pointer is invalid');
  const { signal } = options;
  const total = encryptedMediaSize(a.size);
  const expected: ExpectedMedia = { encryptedSha256: a.encryptedSha256, size: a.size, plaintextSha256: a.plaintextSha256 };
  let staged = await ctx.files.staging(a.blobId);
  if ((await staged.size()) > total) {
    // Longer than the blob: not a prefix of it. Start afresh.
    await staged.remove();
    staged = await ctx.files.staging(a.blobId);
  }
  const fail = async (err: unknown): Promise<never> => {
    if (ClientError.is(err, ClientErrorCode.BadMedia) || ClientError.is(err, ClientErrorCode.BadBlob)) await staged.remove();
    throw err;
  };
  const verifier = await createMediaVerifier(ctx.crypto, a.type, a.mediaKey, expected, ctx.hashing);
  let fetched = 0;
  try {
    // What an earlier try staged is hashed again (a restart loses the running hashes).
    for await (const chunk of readChecked(staged, signal)) await verifier.update(chunk);
    const backoff = new Backoff(ctx.backoff ?? { baseMs: 250, maxMs: 8_000 });
    let failures = 0;
    const progress = (): void => options.onProgress?.({ direction: 'download', transferred: verifier.received, total });
    progress();
    while (verifier.received < total) {
      if (signal?.aborted) throw abortError(signal);
      try {
        const download = await ctx.http.download(a.blobId, verifier.received, signal);
        if (download.size !== total) throw new ClientError(ClientErrorCode.BadMedia, 'the blob has another size than the pointer announces');
        // The network's pieces (tens of KiB) are staged a MiB at a time; a cut-off download stages what came.
        const batch = new WriteBatch((bytes) => staged.append(bytes));
        try {
          for await (const chunk of download.chunks) {
            const hashing = verifier.update(chunk);
            await batch.write(chunk);
            if (hashing) await hashing;
            fetched += chunk.length;
            failures = 0;
            backoff.reset();
            progress();
          }
        } finally {
          await batch.flush();
        }
        if (verifier.received < total) throw new ClientError(ClientErrorCode.ConnectionClosed, 'the download ended early');
      } catch (err) {
        if (!ClientError.is(err) || !err.retryable || signal?.aborted || ++failures >= (ctx.maxAttempts ?? 6)) throw err;
        await sleep(Math.max(err.retryAfterMs ?? 0, backoff.next()), signal);
      }
    }
    await verifier.verify();
  } catch (err) {
    verifier.discard();
    return fail(err);
  }
  if (staged.inPlace !== undefined) {
    // Verified: decrypt over the staged bytes (no second file).
    let file: InPlaceFile;
    try {
      file = await staged.inPlace(suggestedName(a), a.contentType);
    } catch (err) {
      return fail(err);
    }
    try {
      await decryptInPlace(ctx, a, expected, file, signal);
    } catch (err) {
      await file.abort();
      throw err;
    }
    return { path: await file.commit(a.size), bytesFetched: fetched };
  }
  // Verified: now decrypt. The staged bytes are read anew; the plaintext SHA-256 (checked before the file is
  // committed) covers any change to them since, so the hash and MAC of the ciphertext are not computed twice.
  const writer = await ctx.files.output(suggestedName(a), a.contentType);
  const batch = new WriteBatch((bytes) => writer.write(bytes));
  try {
    await decryptMediaToSink(ctx.crypto, a.type, a.mediaKey, expected, readChecked(staged, signal), (chunk) => batch.write(chunk), {
      verified: true,
      hashing: ctx.hashing,
    });
    await batch.flush();
  } catch (err) {
    await batch.abandon();
    await writer.abort();
    return fail(err);
  }
  const path = await writer.commit();
  await staged.remove();
  return { path, bytesFetched: fetched };
}

/** Bytes per read and per write of an in-place decryption. */
const IN_PLACE_BLOCK = 1024 * 1024;
/** The decryption's input pieces: node:crypto's ciphers are fastest on 64 KiB. */
const CIPHER_PIECE = 64 * 1024;

/**
 * Decrypts the verified encrypted file `file` over itself: block by block, the next block's read and the last
 * block's write running while this one is decrypted. Plaintext byte i lands at offset i, behind the bytes read
 * (the decryption holds back a block), so no ciphertext is overwritten before it was read. The plaintext's
 * size and SHA-256 are checked (as {@link decryptMedia} does for a verified file) before the caller commits.
 */
async function decryptInPlace(ctx: DownloadContext, a: AttachmentRecord, expected: ExpectedMedia, file: InPlaceFile, signal: AbortSignal | undefined): Promise<void> {
  const end = file.size - MEDIA_MAC_BYTES;
  async function* blocks(): AsyncGenerator<Uint8Array, void, undefined> {
    // Two buffers in turn: one read ahead while the other block is decrypted (the decryption is done with a
    // piece before it asks for the next). A read nobody waits for any more (after a failure) is not reported.
    const buffers = [new Uint8Array(Math.min(IN_PLACE_BLOCK, end)), new Uint8Array(Math.min(IN_PLACE_BLOCK, end))] as const;
    let turn = 0;
    const readAt = (at: number): Promise<Uint8Array> | undefined => {
      if (at >= end) return undefined;
      const into = buffers[turn++ % 2] as Uint8Array;
      const reading = file.read(at, into.subarray(0, Math.min(into.length, end - at))).then((n) => into.subarray(0, n));
      reading.catch(() => undefined);
      return reading;
    };
    let next = readAt(0);
    for (let at = 0; at < end; ) {
      if (signal?.aborted) throw abortError(signal);
      const block = await (next as Promise<Uint8Array>);
      if (block.length === 0) throw new ClientError(ClientErrorCode.BadMedia, 'the staged file shrank');
      at += block.length;
      next = readAt(at);
      for (let o = 0; o < block.length; o += CIPHER_PIECE) yield block.subarray(o, o + CIPHER_PIECE);
    }
    // The MAC, which the decryption expects at the end (it was verified already).
    const mac = new Uint8Array(MEDIA_MAC_BYTES);
    yield mac.subarray(0, await file.read(end, mac));
  }
  const decryption = decryptMedia(ctx.crypto, a.type, a.mediaKey, expected, blocks(), { verified: true, hashing: ctx.hashing });
  let position = 0;
  const batch = new WriteBatch((bytes) => {
    const at = position;
    position += bytes.length;
    return file.write(at, bytes);
  });
  try {
    for await (const chunk of decryption.chunks) await batch.write(chunk);
    await batch.flush();
  } catch (err) {
    await batch.abandon();
    throw err;
  }
  await decryption.result;
}

async function* readChecked(staged: StagedFile, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const chunk of staged.read()) {
    if (signal?.aborted) throw abortError(signal);
    yield chunk;
  }
}

/**
 * Gathers small chunks and hands them on a MiB at a time (a file write per network piece costs more than its
 * bytes), with one write in flight behind the caller: the next MiB is hashed or decrypted while the last one is
 * written. The chunks are copied into two buffers used in turn (a fresh MiB per write would cost its page
 * faults): a sink must be done with its bytes when its promise settles. A failed write surfaces at the next
 * `write` or at `flush`, which waits for every write.
 */
class WriteBatch {
  static readonly BYTES = 1024 * 1024;
  readonly #buffers: Uint8Array[] = [];
  #turn = 0;
  #current: Uint8Array | undefined;
  #filled = 0;
  #inFlight: Promise<void> | undefined;

  constructor(readonly sink: (bytes: Uint8Array) => Promise<void>) {}

  async write(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.length; ) {
      if (this.#current === undefined) {
        this.#current = this.#buffers[this.#turn++ % 2] ??= new Uint8Array(WriteBatch.BYTES);
        this.#filled = 0;
      }
      const n = Math.min(chunk.length - at, WriteBatch.BYTES - this.#filled);
      this.#current.set(chunk.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === WriteBatch.BYTES) await this.#handOn();
    }
  }

  /** Waits for the write in flight (whose buffer is filled next), then starts the next one without waiting for it. */
  async #handOn(): Promise<void> {
    await this.#settle();
    const current = this.#current;
    if (current === undefined || this.#filled === 0) return;
    const bytes = current.subarray(0, this.#filled);
    this.#current = undefined;
    this.#filled = 0;
    const writing = this.sink(bytes);
    // Handled here so that a failure waits for the next write or flush without being reported as unhandled.
    writing.catch(() => undefined);
    this.#inFlight = writing;
  }

  async #settle(): Promise<void> {
    const writing = this.#inFlight;
    this.#inFlight = undefined;
    if (writing !== undefined) await writing;
  }

  /** Drops what is gathered and waits for the write in flight, ignoring its outcome (before the sink is discarded). */
  async abandon(): Promise<void> {
    this.#current = undefined;
    this.#filled = 0;
    await this.#settle().catch(() => undefined);
  }

  /** Writes what is gathered and waits until every write is done. */
  async flush(): Promise<void> {
    await this.#handOn();
    await this.#settle();
  }
}
