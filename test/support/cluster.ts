// A Parley cluster for tests: server nodes as child processes (src/server/run.ts) on one PostgreSQL
// database and one NATS (subjects under a prefix of their own), a round-robin TCP balancer in front of
// them (as HAProxy would be: WebSocket-aware by being plain TCP, no stickiness), a nats-server child the
// test can kill and restart, and SDK clients (src/client) registered through any of these URLs.
// Everything on loopback; every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Client, type ClientOptions } from '../../src/client/client.ts';
import { register } from '../../src/client/registration.ts';
import { InMemoryClientStore } from '../../src/client/store/memory.ts';
import type { FetchLike } from '../../src/client/transport/http.ts';
import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../src/server/run.ts', import.meta.url));

const crypto = new NodeCryptoProvider();
const fetchLike = globalThis.fetch as unknown as FetchLike;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Limits out of the way of a test that registers and sends a lot from one address. */
const RATE_LIMITS = [
  'registerPerAddress=10000/60000',
  'verificationPerAddress=10000/60000',
  'verificationPerNumber=10000/60000',
  'keyFetchPerAccount=100000/1000',
  'lookupPerAccount=100000/1000',
  'messagesPerSender=100000/1000',
  'groupChangesPerAccount=10000/60000',
].join(',');

/** A unique NATS subject prefix for one test (`parley_test_<hex>`), so that tests on one NATS never meet. */
export function uniquePrefix(): string {
  return `parley_test_${randomBytes(6).toString('hex')}`;
}

/** A free TCP port on loopback (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A node's process. */
export interface NodeProcess {
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
}

/**
 * Starts `src/server/run.ts` with `args` on a free loopback port; resolves with its URL once it prints its
 * ready line. Rejects (and kills it) when it exits first or is not ready within `timeoutMs` (generous:
 * three nodes loading TypeScript at once on a busy 2-core machine take a while).
 */
function spawnNode(args: readonly string[], timeoutMs = 90_000): Promise<{ process: NodeProcess; url: string; exited: Promise<number | NodeJS.Signals | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, '--port', '0', '--host', '127.0.0.1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // The node's own flags only: no PARLEY_* of the environment running the tests.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PARLEY_'))),
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not start in ${timeoutMs / 1000} s: ${out}`));
    }, timeoutMs);
    const onData = (): void => {
      const ready = /\{"event":"ready","port":\d+,"url":"([^"]+)"\}/.exec(out);
      if (ready === null) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      resolve({ process: { child, output: () => out }, url: ready[1] as string, exited });
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited (${String(code)}) before it was ready: ${out}`));
    });
  });
}

/** One server node. */
export interface ClusterNode {
  readonly name: string;
  readonly process: NodeProcess;
  readonly url: string;
  readonly port: number;
  /** Resolves with the exit code or signal. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
}

/** What every node of a cluster shares. */
export interface ClusterSpec {
  /** `postgres://...` of the test's database. */
  readonly databaseUrl: string;
  /** `nats://host:port?prefix=...`. */
  readonly busUrl: string;
  /** More flags for every node. */
  readonly extraArgs?: readonly string[];
}

/** Nodes of one cluster (each with a data folder of its own, for its blob files). */
export class Cluster {
  readonly nodes: ClusterNode[] = [];
  readonly #spec: ClusterSpec;
  readonly #dirs: string[] = [];
  #count = 0;

  constructor(spec: ClusterSpec) {
    this.#spec = spec;
  }

  /** Starts `n` nodes at once; resolves when every one is ready. */
  async start(n: number): Promise<ClusterNode[]> {
    return Promise.all(Array.from({ length: n }, () => this.add()));
  }

  /** Starts one more node. */
  async add(): Promise<ClusterNode> {
    const name = `node-${++this.#count}`;
    const dir = mkdtempSync(path.join(tmpdir(), `parley-cluster-${name}-`));
    this.#dirs.push(dir);
    const { process: proc, url, exited } = await spawnNode([
      '--data', dir,
      '--database', this.#spec.databaseUrl,
      '--bus', this.#spec.busUrl,
      '--node-id', name,
      '--log-level', 'warn',
      '--rate-limit', RATE_LIMITS,
      '--test-numbers', [...CLUSTER_NUMBERS].map(([n, c]) => `${n}=${c}`).join(','),
      ...(this.#spec.extraArgs ?? []),
    ]);
    const node: ClusterNode = { name, process: proc, url, port: Number(new URL(url).port), exited };
    this.nodes.push(node);
    return node;
  }

  /** The nodes whose process is still running. */
  live(): ClusterNode[] {
    return this.nodes.filter((n) => n.process.child.exitCode === null && n.process.child.signalCode === null);
  }

  /** Stops every live node (SIGTERM, then SIGKILL after 15 s) and removes the data folders. */
  async close(): Promise<void> {
    await Promise.all(
      this.live().map(async (node) => {
        node.process.child.kill('SIGTERM');
        const timer = setTimeout(() => node.process.child.kill('SIGKILL'), 15_000);
        await node.exited;
        clearTimeout(timer);
      }),
    );
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** `GET /metrics` of a node, as `name{labels} -> value`. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/**
 * A round-robin TCP balancer on loopback, as HAProxy in `mode tcp` (or `mode http` with WebSocket
 * upgrades) would be: each client connection goes to the next backend that accepts it; a backend that
 * refuses (a killed node) is skipped. When either side closes, so does the other, and the client
 * reconnects through the balancer to a live node. No stickiness.
 */
export class TcpBalancer {
  readonly #server: Server;
  readonly #backends: number[];
  readonly #pairs = new Set<{ client: Socket; upstream: Socket; port: number }>();
  #next = 0;
  port = 0;

  constructor(backendPorts: readonly number[]) {
    this.#backends = [...backendPorts];
    this.#server = createServer({ pauseOnConnect: true }, (client) => this.#accept(client));
  }

  /** Listens on a free loopback port. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    this.port = typeof address === 'object' && address !== null ? address.port : 0;
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Open client connections per backend port. */
  connectionsByBackend(): Map<number, number> {
    const out = new Map<number, number>();
    for (const p of this.#pairs) out.set(p.port, (out.get(p.port) ?? 0) + 1);
    return out;
  }

  #accept(client: Socket): void {
    client.on('error', () => undefined);
    const tryBackend = (attempt: number): void => {
      if (attempt >= this.#backends.length) {
        client.destroy();
        return;
      }
      const port = this.#backends[this.#next++ % this.#backends.length] as number;
      const upstream = connect({ host: '127.0.0.1', port });
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        const pair = { client, upstream, port };
        this.#pairs.add(pair);
        const end = (): void => {
          this.#pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        };
        client.once('close', end);
        upstream.once('close', end);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on('error', () => {
        if (!connected) tryBackend(attempt + 1);
      });
    };
    tryBackend(0);
  }

  async close(): Promise<void> {
    for (const p of this.#pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A nats-server child with JetStream, on a port of its own; it can be killed and started again. */
export class NatsServer {
  readonly port: number;
  readonly storeDir = mkdtempSync(path.join(tmpdir(), 'parley-nats-'));
  #child: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  /** Starts `nats-server -js` on a free port; resolves once it accepts connections. */
  static async start(): Promise<NatsServer> {
    const server = new NatsServer(await freePort());
    await server.restart();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts it (again), with the same port and JetStream folder. */
  async restart(): Promise<void> {
    const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const started = Date.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nats-server exited: ${err}`);
      if (await canConnect(this.port)) return;
      if (Date.now() - started > 15_000) throw new Error(`nats-server did not accept connections in 15 s: ${err}`);
      await sleep(50);
    }
  }

  /** Kills it (SIGKILL by default) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  async close(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** SDK options for a test client: fast reconnects, no keep-alive pings. */
function clientOptions(store: InMemoryClientStore): ClientOptions {
  return {
    store,
    crypto,
    WebSocket: WebSocket,
    fetch: fetchLike,
    transport: { backoff: { baseMs: 20, maxMs: 250 }, requestTimeoutMs: 10_000, keepAliveMs: 0 },
    send: { backoff: { baseMs: 20, maxMs: 250 } },
    keys: { batchSize: 5, minOneTimeKeys: 2 },
    outbox: { receiptDelayMs: 0, retryLaterMs: 100 },
    expiryCheckMs: 0,
  };
}

/** A registered, connected SDK client. */
export interface ClusterClient {
  readonly number: string;
  readonly client: Client;
}

/** 40 test numbers with fixed codes (`--test-numbers` of every node): +1555030NNNN, code 30NNNN... */
export const CLUSTER_NUMBERS: ReadonlyMap<string, string> = new Map(
  Array.from({ length: 40 }, (_, i) => [`+1555030${String(i).padStart(4, '0')}`, `3${String(i).padStart(5, '0')}`]),
);

/** Hands out each cluster test number once per process (a number registered again replaces its account). */
let nextNumber = 0;
export function takeNumber(): string {
  const number = [...CLUSTER_NUMBERS.keys()][nextNumber++];
  if (number === undefined) throw new Error('out of cluster test numbers');
  return number;
}

/** Registers a fresh cluster test number through `serverUrl` (a node or the balancer) and connects. */
export async function registerClient(serverUrl: string): Promise<ClusterClient> {
  const number = takeNumber();
  const store = new InMemoryClientStore();
  await register({ serverUrl, crypto, store, fetch: fetchLike, number, code: CLUSTER_NUMBERS.get(number) as string, keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  const client = await Client.open(clientOptions(store));
  client.connect();
  await client.waitUntilConnected();
  return { number, client };
}

/** Waits for `check` (polling every 25 ms); throws with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
