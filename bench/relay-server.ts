// The server side of `npm run bench:relay`: startServer() in a child process, driven over IPC by
// bench/relay.ts. Accounts are provisioned straight into the store (the registration path is not what
// is measured; its keys are never checked by the relay), and RSS is read after a forced GC.
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { generatePassword, sha256 } from '../src/server/auth/credentials.ts';
import type { AccountId, PhoneNumber } from '../src/server/ids.ts';
import { startServer, type ServerOptions } from '../src/server/main.ts';

/** What the driver asks. */
export type ServerCommand = { cmd: 'provision'; count: number } | { cmd: 'stats' } | { cmd: 'stop' };

/** A provisioned device's credentials. */
export interface BenchCredentials {
  login: string;
  password: string;
  accountId: string;
  registrationId: number;
}

let nextNumber = 0;

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as ServerOptions;
  const server = await startServer({ ...options, logLevel: 'warn' });
  const send = (message: unknown): void => void process.send?.(message);
  const sqlite = server.app.sqlite;
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  send({ event: 'ready', url: server.url, port: server.port });
  process.on('message', (message: ServerCommand) => {
    void (async () => {
      switch (message.cmd) {
        case 'provision': {
          const out: BenchCredentials[] = [];
          const jobs: Array<Promise<unknown>> = [];
          for (let i = 0; i < message.count; i++) {
            const password = generatePassword();
            const registrationId = 1 + (i % 16000);
            const number = `+1999${String(nextNumber++).padStart(8, '0')}` as PhoneNumber;
            const key = { id: 1, publicKey: new Uint8Array(33).fill(5), signature: new Uint8Array(64) };
            jobs.push(
              server.app.storage.accounts
                .register({
                  newAccountId: randomUUID() as AccountId,
                  number,
                  identityKey: key.publicKey,
                  registrationId,
                  passwordHash: sha256(password),
                  deviceName: new Uint8Array(),
                  signedPreKey: key,
                  kyberLastResortKey: key,
                  now: Date.now(),
                })
                .then((r) => out.push({ login: `${r.account.id}.1`, password, accountId: r.account.id, registrationId })),
            );
          }
          await Promise.all(jobs);
          send({ event: 'provisioned', credentials: out });
          return;
        }
        case 'stats': {
          const gc = (globalThis as { gc?: () => void }).gc;
          gc?.();
          gc?.();
          send({
            event: 'stats',
            rss: process.memoryUsage().rss,
            heapUsed: process.memoryUsage().heapUsed,
            connections: server.app.registry.size,
            // Group-commit and WAL figures exist on SQLite only (0 on PostgreSQL).
            commits: sqlite?.writer.commits ?? 0,
            jobs: sqlite?.writer.jobs ?? 0,
            syncMsTotal: sqlite?.writer.syncMsTotal ?? 0,
            syncMsMax: sqlite?.writer.syncMsMax ?? 0,
            queued: await server.app.storage.messages.totalDepth(),
            walBytes: sqlite !== undefined && existsSync(`${sqlite.file}-wal`) ? statSync(`${sqlite.file}-wal`).size : 0,
            loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
            loopDelayMaxMs: loopDelay.max / 1e6,
          });
          loopDelay.reset();
          return;
        }
        case 'stop':
          await server.close();
          process.exit(0);
      }
    })();
  });
}

void main();
