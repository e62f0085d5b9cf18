/**
 * Helpers every `BlobStore` backend shares: the typed errors of the blob routes and a per-key lock.
 * The HTTP status and headers of these errors are part of the resumable upload protocol (docs/api.md), so
 * both backends must build them here, the same way.
 */
import { ServerError, ServerErrorCode } from '../errors.js';

/** Serializes work per key within this process (an upload publishing a blob and a sweep deleting it must not interleave). */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

/** 413 `SERVER_PAYLOAD_TOO_LARGE`: a blob or upload above `limit` bytes. */
export function tooLarge(limit: number): ServerError {
  return new ServerError(ServerErrorCode.PayloadTooLarge, `blob above ${limit} bytes`);
}

/** 409 `SERVER_CONFLICT` with the upload's current offset in `upload-offset`. */
export function uploadConflict(message: string, offset: number): ServerError {
  return new ServerError(ServerErrorCode.Conflict, message, { headers: { 'upload-offset': String(offset) } });
}

/** 507 `SERVER_QUOTA_EXCEEDED`, retryable in an hour (when older blobs may have expired). */
export function overQuota(): ServerError {
  return new ServerError(ServerErrorCode.QuotaExceeded, "the account's blob quota is used up", { retryAfterMs: 60 * 60 * 1000 });
}
