// Helpers for the SDK unit tests: registered clients on a FakeServer, and waiting for events.
import { NodeCryptoProvider } from '../../../src/node/crypto-provider.ts';
import { Client, type ClientOptions } from '../../../src/client/client.ts';
import type { ClientEvents } from '../../../src/client/events.ts';
import { register } from '../../../src/client/registration.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { ClientStore } from '../../../src/client/store/types.ts';
import { FAKE_CODE, FakeServer } from '../../fakes/fake-server.ts';

export const crypto = new NodeCryptoProvider();

export const ALICE = '+15550100001';
export const BOB = '+15550100002';
export const CAROL = '+15550100003';

/** Registers `number` on the fake into `store` (a new in-memory store by default). */
export async function registerOn(fake: FakeServer, number: string, store: ClientStore = new InMemoryClientStore(), batchSize = 5): Promise<ClientStore> {
  await register({ serverUrl: fake.url, crypto, store, fetch: fake.fetch, number, code: FAKE_CODE, keyPolicy: { batchSize, minOneTimeKeys: 2 } });
  return store;
}

/** Fast timings for tests. */
export function testOptions(fake: FakeServer, store: ClientStore, extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    store,
    crypto,
    WebSocket: fake.WebSocket,
    fetch: fake.fetch,
    transport: { backoff: { baseMs: 5, maxMs: 20 }, requestTimeoutMs: 2_000, keepAliveMs: 0 },
    send: { backoff: { baseMs: 5, maxMs: 20 } },
    keys: { batchSize: 5, minOneTimeKeys: 2 },
    outbox: { receiptDelayMs: 0, retryLaterMs: 50 },
    ...extra,
  };
}

/** A registered, connected client. */
export async function connectedClient(fake: FakeServer, number: string, extra: Partial<ClientOptions> = {}, store?: ClientStore): Promise<Client> {
  const s = store ?? (await registerOn(fake, number));
  const client = await Client.open(testOptions(fake, s, extra));
  client.connect();
  await client.waitUntilConnected();
  return client;
}

/** Resolves with the next `event` whose payload satisfies `predicate`; rejects after `timeoutMs`. */
export function nextEvent<K extends keyof ClientEvents>(
  client: Client,
  event: K,
  predicate: (payload: ClientEvents[K]) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${String(event)} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(event, (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Collects every payload of `event` until the returned function is called. */
export function collect<K extends keyof ClientEvents>(client: Client, event: K): { items: Array<ClientEvents[K]>; stop: () => void } {
  const items: Array<ClientEvents[K]> = [];
  const stop = client.on(event, (p) => items.push(p));
  return { items, stop };
}

/** Polls `check` until it returns true (bounded). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
