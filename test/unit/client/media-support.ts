// Helpers for the SDK's media tests against the REAL server (in process, on a loopback port): registered
// devices with in-memory media folders and small upload chunks, a fetch that records (and can cut) blob
// requests, and sources over bytes in memory.
import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { Client, type ClientOptions } from '../../../src/client/client.ts';
import { startLinking } from '../../../src/client/linking.ts';
import { InMemoryMediaFiles } from '../../../src/client/media/memory-files.ts';
import type { MediaSource } from '../../../src/client/media/types.ts';
import { register } from '../../../src/client/registration.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { FetchLike } from '../../../src/client/transport/http.ts';
import type { ServerOptions } from '../../../src/server/config.ts';
import { startTestServer, TEST_NUMBERS, type TestServer } from '../../support/server-harness.ts';
import { crypto } from './support.ts';

/** Upload chunk size in these tests. */
export const CHUNK = 64 * 1024;

/** One recorded blob request. */
export interface BlobCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly bodyBytes: number;
  status: number;
  responseHeaders: Record<string, string>;
}

/**
 * A fetch over global fetch that records every `/v1/blobs` request, and lets a test cut one: `cutPatch(n)`
 * sends only the first `n` bytes of the next PATCH's body and then breaks the request; `cutDownload(n)`
 * delivers only the first `n` bytes of the next blob GET's body and then breaks it.
 */
export class TapFetch {
  readonly calls: BlobCall[] = [];
  #cutPatch: number | undefined;
  #cutDownload: number | undefined;
  /** Bytes of cut requests that were handed to the connection. */
  readonly fetch: FetchLike;

  constructor() {
    this.fetch = async (input: string, init: Parameters<FetchLike>[1]) => {
      const path = new URL(input).pathname;
      if (!path.startsWith('/v1/blobs')) return globalThis.fetch(input, init as RequestInit);
      const call: BlobCall = { method: init.method, path, headers: { ...init.headers }, bodyBytes: init.body?.length ?? 0, status: 0, responseHeaders: {} };
      this.calls.push(call);
      let requestInit: RequestInit & { duplex?: 'half' } = init as RequestInit;
      if (init.method === 'PATCH' && this.#cutPatch !== undefined && init.body !== undefined) {
        const keep = init.body.subarray(0, this.#cutPatch);
        this.#cutPatch = undefined;
        call.headers['x-test-cut'] = String(keep.length);
        let sent = false;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (!sent) {
              sent = true;
              controller.enqueue(keep);
              return;
            }
            // Let the kept bytes reach the socket, then break the request.
            await new Promise((r) => setTimeout(r, 50));
            controller.error(new Error('cut by the test'));
          },
        });
        requestInit = { ...requestInit, body, duplex: 'half' };
      }
      const res = await globalThis.fetch(input, requestInit);
      call.status = res.status;
      res.headers.forEach((v, k) => (call.responseHeaders[k] = v));
      if (init.method === 'GET' && this.#cutDownload !== undefined && res.body) {
        const limit = this.#cutDownload;
        this.#cutDownload = undefined;
        const reader = res.body.getReader();
        let delivered = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (delivered >= limit) {
              await reader.cancel();
              controller.error(new Error('cut by the test'));
              return;
            }
            const step = await reader.read();
            if (step.done) {
              controller.close();
              return;
            }
            const part = step.value.subarray(0, limit - delivered);
            delivered += part.length;
            controller.enqueue(part);
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      }
      return res;
    };
  }

  cutPatch(bytes: number): void {
    this.#cutPatch = bytes;
  }

  cutDownload(bytes: number): void {
    this.#cutDownload = bytes;
  }

  /** The recorded calls of a method (and path prefix). */
  of(method: string, prefix = '/v1/blobs'): BlobCall[] {
    return this.calls.filter((c) => c.method === method && c.path.startsWith(prefix));
  }

  clear(): void {
    this.calls.length = 0;
  }
}

/** One device: its store, media folder, recording fetch, and (while open) its client. */
export interface MediaDevice {
  readonly number: string;
  readonly store: InMemoryClientStore;
  readonly media: InMemoryMediaFiles;
  readonly tap: TapFetch;
  client: Client;
  /** Closes the client and opens a new one over the same store and media folder. */
  reopen(extra?: Partial<ClientOptions>): Promise<Client>;
}

export function mediaOptions(d: { store: InMemoryClientStore; media: InMemoryMediaFiles; tap: TapFetch }, extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    store: d.store,
    crypto,
    WebSocket: WebSocket,
    fetch: d.tap.fetch,
    transport: { backoff: { baseMs: 5, maxMs: 50 }, requestTimeoutMs: 5_000, keepAliveMs: 0 },
    send: { backoff: { baseMs: 5, maxMs: 50 } },
    keys: { batchSize: 5, minOneTimeKeys: 2 },
    outbox: { receiptDelayMs: 0, retryLaterMs: 50 },
    expiryCheckMs: 0,
    media: d.media,
    mediaTransfer: { uploadChunkBytes: CHUNK, backoff: { baseMs: 5, maxMs: 20 }, timeoutMs: 10_000, idleTimeoutMs: 10_000 },
    ...extra,
  };
}

async function open(number: string, store: InMemoryClientStore, extra: Partial<ClientOptions>): Promise<MediaDevice> {
  const media = new InMemoryMediaFiles();
  const tap = new TapFetch();
  const d: MediaDevice = {
    number,
    store,
    media,
    tap,
    client: await Client.open(mediaOptions({ store, media, tap }, extra)),
    async reopen(more: Partial<ClientOptions> = {}) {
      await this.client.close();
      this.client = await Client.open(mediaOptions({ store, media, tap }, { ...extra, ...more }));
      this.client.connect();
      await this.client.waitUntilConnected();
      return this.client;
    },
  };
  d.client.connect();
  await d.client.waitUntilConnected();
  return d;
}

export async function startMediaServer(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  return startTestServer({
    rateLimits: {
      keyFetchPerAccount: { capacity: 10_000, windowMs: 1000 },
      lookupPerAccount: { capacity: 10_000, windowMs: 1000 },
      messagesPerSender: { capacity: 10_000, windowMs: 1000 },
      blobsPerAccount: { capacity: 10_000, windowMs: 1000 },
    },
    ...options,
  });
}

/** Registers the N-th test number (1-based), connected, with a media folder. */
export async function mediaDevice(t: TestServer, n: number, extra: Partial<ClientOptions> = {}): Promise<MediaDevice> {
  const number = [...TEST_NUMBERS.keys()][n - 1] as string;
  const store = new InMemoryClientStore();
  await register({ serverUrl: t.url, crypto, store, fetch: globalThis.fetch as unknown as FetchLike, number, code: TEST_NUMBERS.get(number) as string, keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  return open(number, store, extra);
}

/** Links a new companion to `to`, connected, with its own media folder. */
export async function mediaCompanion(t: TestServer, to: MediaDevice, name: string, extra: Partial<ClientOptions> = {}): Promise<MediaDevice> {
  const store = new InMemoryClientStore();
  const pending = await startLinking({
    serverUrl: t.url,
    crypto,
    store,
    fetch: globalThis.fetch as unknown as FetchLike,
    deviceName: name,
    poll: { baseMs: 10, maxMs: 50 },
    keyPolicy: { batchSize: 5, minOneTimeKeys: 2 },
  });
  await Promise.all([to.client.linkDevice(pending.uri), pending.done]);
  return open(to.number, store, extra);
}

/** Deterministic pseudo-random bytes. */
export function bytesOf(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A source over bytes, read in pieces of `piece` bytes; counts how often it was opened. */
export function sourceOf(bytes: Uint8Array, resumeKey?: string, piece = 50_000): MediaSource & { opened: number } {
  const s = {
    size: bytes.length,
    resumeKey,
    opened: 0,
    open(): AsyncIterable<Uint8Array> {
      s.opened++;
      return (async function* () {
        for (let at = 0; at < bytes.length; at += piece) yield bytes.slice(at, at + piece);
      })();
    },
  };
  return s;
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Waits until every client has processed what arrived and sent what it queued (rounds, for follow-ups). */
export async function settle(clients: readonly Client[], rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const c of clients) await c.whenIdle();
    await new Promise((r) => setTimeout(r, 25));
  }
}
