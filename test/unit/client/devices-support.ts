// Helpers for the linked-device tests against the REAL server (in process): registered primaries, companions
// linked to them through the real provisioning routes, and clients over `ws` and global fetch.
import WebSocket from 'ws';
import { Client, type ClientOptions } from '../../../src/client/client.ts';
import { startLinking } from '../../../src/client/linking.ts';
import { register } from '../../../src/client/registration.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { FetchLike } from '../../../src/client/transport/http.ts';
import { startTestServer, TEST_NUMBERS, type TestServer } from '../../support/server-harness.ts';
import { crypto } from './support.ts';

export const fetchLike = globalThis.fetch as unknown as FetchLike;

/** One device: its store and (while open) its client. */
export interface Device {
  readonly name: string;
  readonly store: InMemoryClientStore;
  client: Client;
  /** Opens a new client over the same store (after `client.close()`), connected. */
  reopen(): Promise<Client>;
}

export function deviceOptions(store: InMemoryClientStore): ClientOptions {
  return {
    store,
    crypto,
    WebSocket: WebSocket,
    fetch: fetchLike,
    transport: { backoff: { baseMs: 5, maxMs: 50 }, requestTimeoutMs: 5_000, keepAliveMs: 0 },
    send: { backoff: { baseMs: 5, maxMs: 50 } },
    keys: { batchSize: 5, minOneTimeKeys: 2 },
    outbox: { receiptDelayMs: 0, retryLaterMs: 50 },
    expiryCheckMs: 0,
  };
}

async function device(name: string, store: InMemoryClientStore): Promise<Device> {
  const d: Device = {
    name,
    store,
    client: await Client.open(deviceOptions(store)),
    async reopen() {
      this.client = await Client.open(deviceOptions(store));
      this.client.connect();
      await this.client.waitUntilConnected();
      return this.client;
    },
  };
  d.client.connect();
  await d.client.waitUntilConnected();
  return d;
}

export async function startServer(): Promise<TestServer> {
  return startTestServer({
    rateLimits: {
      keyFetchPerAccount: { capacity: 10_000, windowMs: 1000 },
      lookupPerAccount: { capacity: 10_000, windowMs: 1000 },
      messagesPerSender: { capacity: 10_000, windowMs: 1000 },
    },
  });
}

/** Registers the N-th test number (1-based) as a primary, connected. */
export async function primary(t: TestServer, n: number, name = `primary ${n}`): Promise<Device> {
  const number = [...TEST_NUMBERS.keys()][n - 1] as string;
  const store = new InMemoryClientStore();
  await register({ serverUrl: t.url, crypto, store, fetch: fetchLike, number, code: TEST_NUMBERS.get(number) as string, keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  return device(name, store);
}

/** Links a new companion to `to` (the primary approves the code the companion shows), connected. */
export async function companion(t: TestServer, to: Device, name: string): Promise<{ device: Device; deviceId: number }> {
  const store = new InMemoryClientStore();
  const pending = await startLinking({ serverUrl: t.url, crypto, store, fetch: fetchLike, deviceName: name, poll: { baseMs: 10, maxMs: 50 }, keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  const [{ deviceId }] = await Promise.all([to.client.linkDevice(pending.uri), pending.done]);
  return { device: await device(name, store), deviceId };
}

/** Waits until every client has processed what arrived and sent what it queued (rounds, for follow-ups). */
export async function settle(clients: readonly Client[], rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const c of clients) await c.whenIdle();
    await new Promise((r) => setTimeout(r, 25));
  }
}
