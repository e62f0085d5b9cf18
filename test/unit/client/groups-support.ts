// Helpers for the SDK's group tests against the REAL server (in process, on a loopback port): registered
// clients over `ws` and global fetch, and a tap on each client's socket that keeps every envelope the server
// pushed to it (so a test can hand a captured ciphertext to another member's stored sender keys).
import { fromBinary } from '@bufbuild/protobuf';
import WebSocket from 'ws';
import { EnvelopeSchema, type Envelope } from '../../../src/protocol/gen/service_pb.ts';
import { FrameSchema } from '../../../src/protocol/gen/transport_pb.ts';
import { Client, type ClientOptions } from '../../../src/client/client.ts';
import { register } from '../../../src/client/registration.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { FetchLike } from '../../../src/client/transport/http.ts';
import type { WebSocketConstructor, WebSocketLike } from '../../../src/client/transport/websocket.ts';
import { startTestServer, TEST_NUMBERS, type TestServer } from '../../support/server-harness.ts';
import { crypto } from './support.ts';

const fetchLike = globalThis.fetch as unknown as FetchLike;

/** The test numbers +1555010000N, N = 1..9. */
export const NUMBERS = [...TEST_NUMBERS.keys()];

/** A `ws` WebSocket whose pushed envelopes are recorded in `sink` (the client's handler still gets each one). */
function tappingWebSocket(sink: Envelope[]): WebSocketConstructor {
  const accessor = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage') as PropertyDescriptor & {
    get: (this: WebSocket) => unknown;
    set: (this: WebSocket, handler: unknown) => void;
  };
  function Tapped(url: string): WebSocketLike {
    const socket = new WebSocket(url);
    Object.defineProperty(socket, 'onmessage', {
      get: () => accessor.get.call(socket),
      set: (handler: ((event: { data: unknown }) => void) | null) => {
        accessor.set.call(
          socket,
          handler === null
            ? null
            : (event: { data: unknown }): void => {
                try {
                  const data = event.data instanceof ArrayBuffer ? new Uint8Array(event.data) : new Uint8Array(event.data as Buffer);
                  const frame = fromBinary(FrameSchema, data);
                  if (frame.kind.case === 'request' && frame.kind.value.path === '/v1/queue/message') sink.push(fromBinary(EnvelopeSchema, frame.kind.value.body));
                } catch {
                  // not ours to judge: the client handles malformed frames
                }
                handler(event);
              },
        );
      },
    });
    return socket;
  }
  return Tapped as unknown as WebSocketConstructor;
}

/** One registered device: its store, its envelopes seen so far, and (while open) its client. */
export interface Member {
  readonly number: string;
  readonly store: InMemoryClientStore;
  readonly envelopes: Envelope[];
  client: Client;
  /** Opens a new client over the same store (after `client.close()`), connected. */
  reopen(): Promise<Client>;
}

function options(t: TestServer, m: { store: InMemoryClientStore; envelopes: Envelope[] }): ClientOptions {
  return {
    store: m.store,
    crypto,
    WebSocket: tappingWebSocket(m.envelopes),
    fetch: fetchLike,
    transport: { backoff: { baseMs: 5, maxMs: 50 }, requestTimeoutMs: 5_000, keepAliveMs: 0 },
    send: { backoff: { baseMs: 5, maxMs: 50 } },
    keys: { batchSize: 5, minOneTimeKeys: 2 },
    outbox: { receiptDelayMs: 0, retryLaterMs: 50 },
    expiryCheckMs: 0,
  };
}

/** A server and `n` registered, connected clients. */
export async function groupWorld(n: number): Promise<{ t: TestServer; members: Member[]; close: () => Promise<void> }> {
  const t = await startTestServer({
    rateLimits: {
      keyFetchPerAccount: { capacity: 10_000, windowMs: 1000 },
      lookupPerAccount: { capacity: 10_000, windowMs: 1000 },
      messagesPerSender: { capacity: 10_000, windowMs: 1000 },
    },
  });
  const members: Member[] = [];
  for (const number of NUMBERS.slice(0, n)) {
    const store = new InMemoryClientStore();
    await register({ serverUrl: t.url, crypto, store, fetch: fetchLike, number, code: TEST_NUMBERS.get(number) as string, keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
    const envelopes: Envelope[] = [];
    const m: Member = {
      number,
      store,
      envelopes,
      client: await Client.open(options(t, { store, envelopes })),
      async reopen() {
        this.client = await Client.open(options(t, { store, envelopes }));
        this.client.connect();
        await this.client.waitUntilConnected();
        return this.client;
      },
    };
    m.client.connect();
    await m.client.waitUntilConnected();
    members.push(m);
  }
  return {
    t,
    members,
    async close() {
      for (const m of members) await m.client.close();
      await t.close();
    },
  };
}

/** Waits until every client has processed what arrived and sent what it queued (rounds, for follow-ups). */
export async function settle(clients: readonly Client[], rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const c of clients) await c.whenIdle();
    await new Promise((r) => setTimeout(r, 20));
  }
}
