// The server child of the benchmarks: bench/relay-server.ts (startServer) in its own process, driven over
// IPC, so that the simulated devices' CPU does not distort the server's.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launcherNodeFlags } from '../src/node/launcher-flags.ts';
import type { ServerOptions } from '../src/server/main.ts';
import type { BenchCredentials } from './relay-server.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The server child's figures. */
export interface Stats {
  rss: number;
  heapUsed: number;
  connections: number;
  commits: number;
  jobs: number;
  syncMsTotal: number;
  syncMsMax: number;
  walBytes: number;
  queued: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** A server child with an IPC control channel. */
export class ServerChild {
  readonly child: ChildProcess;
  readonly dataDir = mkdtempSync(path.join(tmpdir(), 'parley-bench-'));
  url = '';

  /** `options` are the server's beyond port, host and data folder (loopback, a fresh temporary folder). */
  constructor(extra: ServerOptions) {
    const options: ServerOptions = { ...extra, port: 0, host: '127.0.0.1', dataDir: this.dataDir, heartbeatIntervalMs: 0 };
    // PARLEY_BENCH_PROFILE=DIR writes a CPU profile of the server to DIR.
    const profile = process.env.PARLEY_BENCH_PROFILE;
    // The server runs with the Node flags of `parley serve` (bin/parley.js).
    const execArgv = [...launcherNodeFlags(), '--import', 'tsx', '--expose-gc', ...(profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]), ...(process.env.PARLEY_BENCH_TRACE_GC === '1' ? ['--trace-gc'] : [])];
    this.child = fork(path.join(HERE, 'relay-server.ts'), [JSON.stringify(options)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }

  #next<T>(event: string): Promise<T> {
    return new Promise((resolve) => {
      const on = (m: { event: string }): void => {
        if (m.event !== event) return;
        this.child.off('message', on);
        resolve(m as T);
      };
      this.child.on('message', on);
    });
  }

  async start(): Promise<void> {
    this.url = (await this.#next<{ url: string }>('ready')).url;
  }

  get wsUrl(): string {
    return `${this.url.replace(/^http/, 'ws')}/v1/websocket`;
  }

  async provision(count: number): Promise<BenchCredentials[]> {
    const reply = this.#next<{ credentials: BenchCredentials[] }>('provisioned');
    this.child.send({ cmd: 'provision', count });
    return (await reply).credentials;
  }

  async stats(): Promise<Stats> {
    const reply = this.#next<Stats>('stats');
    this.child.send({ cmd: 'stats' });
    return reply;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ cmd: 'stop' });
    await exited;
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

