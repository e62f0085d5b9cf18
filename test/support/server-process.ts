// Runs the server as a child process (src/server/run.ts), for tests that kill it. Resolves once the
// child prints its ready line; collects its stdout (the log) for the leak scan.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_NUMBERS } from './server-harness.ts';

const RUN = fileURLToPath(new URL('../../src/server/run.ts', import.meta.url));

/** A server child process. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly wsUrl: string;
  /** Everything the child wrote to stdout so far. */
  output(): string;
  /** Resolves with the exit code or signal. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
}

/** Starts `src/server/run.ts` on port 0 with `dataDir`; rejects if it exits or is not ready in 20 s. */
export function spawnServer(dataDir: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const testNumbers = [...TEST_NUMBERS].map(([n, c]) => `${n}=${c}`).join(',');
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, '--port', '0', '--host', '127.0.0.1', '--data', dataDir, '--test-numbers', testNumbers, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PARLEY_PORT: '', PARLEY_DATA_DIR: '' },
  });
  let out = '';
  let err = '';
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in 20 s: ${err}`));
    }, 20_000);
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ready = /\{"event":"ready","port":(\d+),"url":"([^"]+)"\}/.exec(out);
      if (ready !== null && timer.hasRef()) {
        clearTimeout(timer);
        timer.unref();
        const url = ready[2] as string;
        resolve({ child, url, wsUrl: `${url.replace(/^http/, 'ws')}/v1/websocket`, output: () => out, exited });
      }
    });
    void exited.then((code) => {
      if (!timer.hasRef()) return;
      clearTimeout(timer);
      reject(new Error(`server exited (${String(code)}) before it was ready: ${err}`));
    });
  });
}
