/** Small async helpers: deliberate fire-and-forget, abortable sleep and deadlines, a serial queue. */
import { abortError } from './errors.js';

/**
 * Marks a promise as deliberately not awaited (lint keeps `no-floating-promises` on). Its rejection goes to
 * `onError` (default: ignored, because the caller has already arranged to learn about failures elsewhere).
 */
export function drop(promise: Promise<unknown>, onError?: (err: unknown) => void): void {
  promise.catch((err: unknown) => onError?.(err));
}

/**
 * Settles as `promise` does, unless `ms` pass first (then rejects with `onTimeout()`) or `signal` aborts
 * first (then rejects with the abort error). The timer and the abort listener are removed either way.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, signal: AbortSignal | undefined, onTimeout: () => Error): Promise<T> {
  return raceTimer(promise, ms, signal, (_resolve, reject) => reject(onTimeout()));
}

/** Resolves after `ms`; rejects with the abort error when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return raceTimer(new Promise<void>(() => undefined), ms, signal, (resolve) => resolve());
}

/** `promise` raced against a timer (whose expiry `onTimer` settles) and an abort signal. */
function raceTimer<T>(
  promise: Promise<T>,
  ms: number,
  signal: AbortSignal | undefined,
  onTimer: (resolve: (value: T) => void, reject: (err: Error) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      cleanup();
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      cleanup();
      onTimer(resolve, reject);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        cleanup();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Waits for `promise` at most `ms`: resolves with its value, or with undefined once `ms` passed (the timer
 * is cleared either way, so it never keeps a process alive). A rejection of `promise` propagates.
 */
export async function waitAtMost<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs tasks one at a time, in the order they were queued (a mutex with a FIFO). */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it has settled; resolves or rejects as `task` does. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** A promise with its resolve and reject functions (Promise.withResolvers is newer than Node 20). */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Iterates `source` with up to `maxBytes` of it produced ahead: while the consumer awaits something else (an
 * upload request), the next chunks are made (encrypted) meanwhile. When the consumer stops early (a break or
 * a throw), the source is stopped once the chunk it is producing is done, and returned.
 */
export async function* readAhead(source: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
  const it = source[Symbol.asyncIterator]();
  const queue: Uint8Array[] = [];
  let queued = 0;
  let ended = false;
  let stopped = false;
  let failure: { readonly err: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakePump: (() => void) | undefined;
  const notify = (): void => {
    wakeConsumer?.();
    wakeConsumer = undefined;
  };
  const pump = (async () => {
    try {
      while (!stopped) {
        if (queued >= maxBytes) {
          await new Promise<void>((resolve) => (wakePump = resolve));
          continue;
        }
        const next = await it.next();
        if (next.done === true) break;
        queue.push(next.value);
        queued += next.value.length;
        notify();
      }
    } catch (err) {
      failure = { err };
    } finally {
      ended = true;
      notify();
    }
  })();
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.length;
        wakePump?.();
        wakePump = undefined;
        yield chunk;
        continue;
      }
      if (failure) throw failure.err;
      if (ended) return;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    stopped = true;
    wakePump?.();
    wakePump = undefined;
    await pump;
    if (failure === undefined) await it.return?.();
  }
}
