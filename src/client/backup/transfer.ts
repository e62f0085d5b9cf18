/**
 * The server side of backups for the SDK: the `/v1/backups` routes (JSON, docs/api.md "Backups"), and moving
 * the backup file through the blob store (a resumable upload of a file whose size and SHA-256 are known, and
 * a download that resumes with a Range after a dropped connection).
 */
import { fromHex, toHex } from '../../protocol/index.js';
import { sleep } from '../async.js';
import { abortError, ClientError, ClientErrorCode } from '../errors.js';
import { blobError, type BlobHttp } from '../media/blob-http.js';
import type { FetchLike } from '../transport/http.js';
import { basicAuthorization, type DeviceCredentials } from '../transport/types.js';
import { checkKdfParams, type KdfParams } from './format.js';

/** The account's current backup as the server describes it. */
export interface ServerBackup {
  readonly blobId: string;
  readonly size: number;
  readonly createdAt: number;
  readonly uploadedAt: number;
  readonly formatVersion: number;
  readonly password: { readonly slotId: string; readonly salt: Uint8Array; readonly kdf: KdfParams; readonly attemptsLeft: number; readonly locked: boolean } | undefined;
}

/** What a device registers after uploading the file. */
export interface NewServerBackup {
  readonly blobId: string;
  readonly size: number;
  readonly createdAt: number;
  readonly formatVersion: number;
  readonly password?: { readonly slotId: string; readonly salt: Uint8Array; readonly kdf: KdfParams; readonly verifier: Uint8Array; readonly share: Uint8Array } | undefined;
}

export interface BackupApiOptions {
  readonly url: string;
  readonly credentials: DeviceCredentials;
  readonly fetch?: FetchLike | undefined;
  readonly timeoutMs?: number | undefined;
}

type FetchResponse = Awaited<ReturnType<FetchLike>>;

function parseServerBackup(o: Record<string, unknown>): ServerBackup {
  const bad = (): ClientError => new ClientError(ClientErrorCode.BadResponse, 'malformed backup metadata');
  if (typeof o.blobId !== 'string' || !/^[0-9a-f]{64}$/.test(o.blobId) || typeof o.size !== 'number' || typeof o.createdAt !== 'number') throw bad();
  const p = o.password as Record<string, unknown> | null | undefined;
  let password: ServerBackup['password'];
  if (p !== null && p !== undefined) {
    if (typeof p.slotId !== 'string' || typeof p.salt !== 'string' || !/^[0-9a-f]{32}$/.test(p.salt)) throw bad();
    password = { slotId: p.slotId, salt: fromHex(p.salt), kdf: checkKdfParams(p.kdf), attemptsLeft: Number(p.attemptsLeft), locked: p.locked === true };
  }
  return { blobId: o.blobId, size: o.size, createdAt: o.createdAt, uploadedAt: Number(o.uploadedAt), formatVersion: Number(o.formatVersion), password };
}

/** The `/v1/backups` routes. */
export class BackupApi {
  readonly #o: BackupApiOptions;
  readonly #fetch: FetchLike;
  readonly #auth: string;

  constructor(options: BackupApiOptions) {
    this.#o = options;
    const f = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new ClientError(ClientErrorCode.InvalidArgument, 'no fetch implementation: pass one');
    this.#fetch = f;
    this.#auth = basicAuthorization(options.credentials);
  }

  async #call(method: string, path: string, body: unknown, signal: AbortSignal | undefined, what: string): Promise<{ res: FetchResponse; json: Record<string, unknown> | undefined }> {
    if (signal?.aborted) throw abortError(signal);
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#o.timeoutMs ?? 30_000);
    try {
      const res = await this.#fetch(new URL(path, this.#o.url).toString(), {
        method,
        headers: { authorization: this.#auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body)),
        signal: controller.signal,
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      let json: Record<string, unknown> | undefined;
      if ((res.headers.get('content-type') ?? '').includes('json') && bytes.length > 0) {
        try {
          json = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
        } catch (cause) {
          throw new ClientError(ClientErrorCode.BadResponse, `${what}: the response does not parse`, { cause });
        }
      }
      return { res, json };
    } catch (cause) {
      if (ClientError.is(cause)) throw cause;
      if (signal?.aborted) throw abortError(signal);
      if (timedOut) throw new ClientError(ClientErrorCode.Timeout, `${what}: no response`, { cause });
      throw new ClientError(ClientErrorCode.ConnectionClosed, `${what}: the connection failed`, { cause });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The account's current backup, or undefined when it has none. */
  async current(signal?: AbortSignal): Promise<ServerBackup | undefined> {
    const { res, json } = await this.#call('GET', '/v1/backups/current', undefined, signal, 'backup status');
    if (res.status === 404 && res.headers.get('x-parley-error') === 'SERVER_NOT_FOUND') return undefined;
    if (res.status !== 200 || !json) throw blobError(res, 'backup status');
    return parseServerBackup(json);
  }

  /** Makes the uploaded blob the account's current backup (the previous one's blob then expires). */
  async put(b: NewServerBackup, signal?: AbortSignal): Promise<ServerBackup> {
    const p = b.password;
    const body = {
      blobId: b.blobId,
      size: b.size,
      createdAt: b.createdAt,
      formatVersion: b.formatVersion,
      password: p === undefined ? null : { slotId: p.slotId, salt: toHex(p.salt), kdf: p.kdf, verifier: toHex(p.verifier), share: toHex(p.share) },
    };
    const { res, json } = await this.#call('PUT', '/v1/backups', body, signal, 'backup registration');
    if (res.status !== 200 || !json) throw blobError(res, 'backup registration');
    return parseServerBackup(json);
  }

  /**
   * The share of password slot `slotId` for the auth key: `CLIENT_WRONG_BACKUP_KEY` (with the attempts left),
   * `CLIENT_BACKUP_LOCKED`, `CLIENT_NO_BACKUP` (no such slot on the server any more).
   */
  async unlock(slotId: string, authKey: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    const { res, json } = await this.#call('POST', '/v1/backups/current/unlock', { slotId, proof: toHex(authKey) }, signal, 'backup unlock');
    if (res.status === 200 && typeof json?.share === 'string' && /^[0-9a-f]{64}$/.test(json.share)) return fromHex(json.share);
    if (res.status === 404) throw new ClientError(ClientErrorCode.NoBackup, 'the server has no backup with this password slot (replaced or deleted): use the recovery key', { status: 404 });
    if (res.status === 403 && res.headers.get('x-parley-backup-locked') === 'true') {
      throw new ClientError(ClientErrorCode.BackupLocked, 'too many wrong passwords: the server deleted this backup\'s password share; only its recovery key opens it now', { status: 403 });
    }
    if (res.status === 403) {
      const left = Number(res.headers.get('x-parley-backup-attempts-left') ?? 'NaN');
      throw new ClientError(ClientErrorCode.WrongBackupKey, `wrong backup password${Number.isFinite(left) ? ` (${left} attempt${left === 1 ? '' : 's'} left)` : ''}`, { status: 403 });
    }
    throw blobError(res, 'backup unlock');
  }

  /** Deletes the account's backup (its blob expires). */
  async delete(signal?: AbortSignal): Promise<boolean> {
    const { res } = await this.#call('DELETE', '/v1/backups/current', undefined, signal, 'backup deletion');
    if (res.status === 404) return false;
    if (res.status !== 204) throw blobError(res, 'backup deletion');
    return true;
  }
}

/** A file to upload, known completely: its size, SHA-256 and bytes (read again on a resume). */
export interface UploadableFile {
  readonly size: number;
  readonly sha256: string;
  read(): AsyncIterable<Uint8Array>;
}

export interface FileTransferOptions {
  readonly chunkBytes?: number | undefined;
  readonly maxAttempts?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** Bytes of `source` from `offset`, in pieces of at most `max`. */
async function* from(source: AsyncIterable<Uint8Array>, offset: number, max: number): AsyncGenerator<Uint8Array, void, undefined> {
  let at = 0;
  for await (const chunk of source) {
    const end = at + chunk.length;
    if (end > offset) {
      const part = chunk.subarray(Math.max(0, offset - at));
      for (let i = 0; i < part.length; i += max) yield part.subarray(i, i + max);
    }
    at = end;
  }
}

/**
 * Uploads `file` as a blob (resumable: after a retryable failure the server's offset is asked and the upload
 * continues from there; bounded retries). Resolves once the server published the blob.
 */
export async function uploadFile(http: BlobHttp, file: UploadableFile, o: FileTransferOptions = {}): Promise<void> {
  const chunkBytes = o.chunkBytes ?? 8 << 20;
  const maxAttempts = o.maxAttempts ?? 6;
  const created = await http.createUpload(file.size, file.sha256, o.signal);
  if (created.kind === 'stored') {
    o.onProgress?.(file.size, file.size);
    return;
  }
  const uploadId = created.uploadId;
  let offset = created.offset;
  for (let failures = 0; ; ) {
    try {
      let buffer: Uint8Array[] = [];
      let held = 0;
      const flush = async (last: boolean): Promise<boolean> => {
        const body = new Uint8Array(held);
        let at = 0;
        for (const b of buffer) {
          body.set(b, at);
          at += b.length;
        }
        buffer = [];
        held = 0;
        const outcome = await http.patch(uploadId, offset, body, { blobId: last ? file.sha256 : undefined, signal: o.signal });
        if (outcome.kind === 'complete') {
          offset = file.size;
          o.onProgress?.(offset, file.size);
          return true;
        }
        offset = outcome.offset;
        o.onProgress?.(offset, file.size);
        // A 409 moved us: read again from the server's offset.
        return outcome.kind === 'conflict';
      };
      let position = offset;
      let restart = false;
      for await (const piece of from(file.read(), offset, chunkBytes)) {
        buffer.push(piece);
        held += piece.length;
        position += piece.length;
        if (held >= chunkBytes && position < file.size) {
          restart = await flush(false);
          failures = 0;
          if (restart) break;
        }
      }
      if (restart) continue;
      if (position !== file.size) throw new ClientError(ClientErrorCode.InvalidArgument, 'the backup file changed while it was uploaded');
      if (await flush(true)) return;
      if (offset >= file.size) return;
    } catch (err) {
      if (!ClientError.is(err) || !err.retryable || o.signal?.aborted || ++failures >= maxAttempts) throw err;
      await sleep(Math.min(8_000, 250 * 2 ** failures), o.signal);
      const now = await http.uploadOffset(uploadId, o.signal);
      if (now === undefined) throw new ClientError(ClientErrorCode.BadBlob, 'the backup upload expired on the server', { retryable: true });
      offset = now;
    }
  }
}

/** The bytes of blob `blobId` (`size` bytes), resuming with a Range after a dropped connection (bounded). */
export async function* downloadFile(http: BlobHttp, blobId: string, size: number, o: FileTransferOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const maxAttempts = o.maxAttempts ?? 6;
  let offset = 0;
  for (let failures = 0; offset < size; ) {
    try {
      const d = await http.download(blobId, offset, o.signal);
      if (d.size !== size) throw new ClientError(ClientErrorCode.BadBackup, 'the backup blob has another size than its metadata', { retryable: false });
      for await (const chunk of d.chunks) {
        offset += chunk.length;
        failures = 0;
        o.onProgress?.(offset, size);
        yield chunk;
      }
      if (offset < size) throw new ClientError(ClientErrorCode.ConnectionClosed, 'the download ended early', { retryable: true });
    } catch (err) {
      if (!ClientError.is(err) || !err.retryable || o.signal?.aborted || ++failures >= maxAttempts) throw err;
      await sleep(Math.min(8_000, 250 * 2 ** failures), o.signal);
    }
  }
}
