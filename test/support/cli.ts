// Runs the `parley` binary (bin/parley.js) as child processes for the end-to-end tests: the server through
// `parley serve`, clients through the other commands. Everything on loopback, in temporary folders, bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launcherNodeFlags, PARLEY_BIN } from '../../src/node/launcher-flags.ts';

export const BIN = PARLEY_BIN;
/** The flags the binary's first line gives Node (a shell running `parley` passes them; `node BIN` would not). */
const NODE_FLAGS = launcherNodeFlags();

/** Test numbers with fixed codes, as `parley serve --test-numbers` takes them. */
export const NUMBERS = {
  alice: { number: '+15550100001', code: '111111' },
  bob: { number: '+15550100002', code: '222222' },
  carol: { number: '+15550100003', code: '333333' },
  dave: { number: '+15550100004', code: '444444' },
  erin: { number: '+15550100005', code: '555555' },
  frank: { number: '+15550100006', code: '666666' },
  grace: { number: '+15550100007', code: '777777' },
} as const;

export const TEST_NUMBERS_FLAG = Object.values(NUMBERS)
  .map((n) => `${n.number}=${n.code}`)
  .join(',');

/** A temporary folder, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The result of one CLI run. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON lines (lines that are not JSON are skipped). */
  readonly lines: Array<Record<string, unknown>>;
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not JSON
    }
  }
  return out;
}

/** A running CLI process. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once stderr or stdout contains `text` (rejects after `timeoutMs`). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the result when the process exits (killed after `timeoutMs`). */
  done(timeoutMs?: number): Promise<CliResult>;
  /** Writes to its stdin. */
  write(text: string): void;
}

/** Starts `parley <args>`. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, [...NODE_FLAGS, BIN, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PARLEY_PROFILE: '', PARLEY_PORT: '', PARLEY_DATA_DIR: '', PARLEY_TEST_NUMBERS: '', ...env },
  });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    for (const l of listeners) l();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
    for (const l of listeners) l();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    write: (text) => child.stdin?.write(text),
    waitFor: (text, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const matches = (): boolean => (typeof text === 'string' ? out.includes(text) || err.includes(text) : text.test(out) || text.test(err));
        if (matches()) {
          resolve();
          return;
        }
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`parley ${args.join(' ')}: no ${String(text)} within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
        }, timeoutMs);
        const check = (): void => {
          if (!matches()) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
        void exited.then(() => {
          if (!listeners.has(check)) return;
          clearTimeout(timer);
          listeners.delete(check);
          if (matches()) resolve();
          else reject(new Error(`parley ${args.join(' ')} exited without ${String(text)}\nstdout: ${out}\nstderr: ${err}`));
        });
      }),
    done: async (timeoutMs = 60_000) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return { code, stdout: out, stderr: err, lines: jsonLines(out) };
    },
  };
}

/** Runs `parley <args>` to completion. */
export function runCli(args: readonly string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const p = startCli(args, options.env);
  p.child.stdin?.end(options.input ?? '');
  return p.done(options.timeoutMs);
}

/** Runs `parley <args>` and fails with its output unless it exits 0. */
export async function cliOk(args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await runCli(args, options);
  if (r.code !== 0) throw new Error(`parley ${args.join(' ')} exited ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** A server started with `parley serve`. */
export interface CliServer {
  readonly process: CliProcess;
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops it (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/** Starts `parley serve` on loopback (port 0 unless given) with the test numbers. */
export async function startServer(dataDir: string, extra: readonly string[] = [], port = 0): Promise<CliServer> {
  const p = startCli(['serve', '--port', String(port), '--host', '127.0.0.1', '--data', dataDir, '--test-numbers', TEST_NUMBERS_FLAG, ...extra]);
  // A slow start (a loaded machine) gets a minute; one that never comes up is killed, not left running.
  await p.waitFor(/"event":"ready"/, 60_000).catch(async (err: unknown) => {
    p.child.kill('SIGKILL');
    await p.done(5_000);
    throw err;
  });
  const ready = /\{"event":"ready","port":(\d+),"url":"([^"]+)"\}/.exec(p.stdout());
  if (!ready) throw new Error(`no ready line: ${p.stdout()}`);
  return {
    process: p,
    url: ready[2] as string,
    port: Number(ready[1]),
    dataDir,
    stop: async () => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill('SIGTERM');
      await p.done(10_000);
    },
  };
}

/** Every file under `dir`, concatenated (to search a database and its WAL for leaked text). */
export function filesUnder(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const name of readdirSync(dir, { recursive: true }).map(String)) {
    try {
      parts.push(readFileSync(path.join(dir, name)));
    } catch {
      // a folder, or gone meanwhile
    }
  }
  return Buffer.concat(parts);
}
