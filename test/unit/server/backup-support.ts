// The real server for the backup tests, with the backup service's limits chosen by the test: createApp (SQLite
// in a temporary folder, a clock the test moves), and a router of the app's routes in which the backup routes
// are those of a BackupService with the test's options (on the app's own backup store), behind node:http on a
// loopback port 0 (WebSocket upgrades go to the app's gateway as in main.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../../src/server/app.ts';
import { Authenticator } from '../../../src/server/auth/authenticator.ts';
import { resolveConfig, type ServerOptions } from '../../../src/server/config.ts';
import { createHttpHandler } from '../../../src/server/http/http-adapter.ts';
import { Router } from '../../../src/server/http/router.ts';
import { backupRoutes } from '../../../src/server/routes/backups.ts';
import { BackupService, type BackupServiceOptions } from '../../../src/server/services/backups.ts';
import { assertCleanLog, TEST_NUMBERS } from '../../support/server-harness.ts';

/** Real time plus an offset that tests move forward (rate limits refill as in production; expiry is tested by jumping). */
export class ShiftedClock {
  #offset = 0;

  now(): number {
    return Date.now() + this.#offset;
  }

  advance(ms: number): void {
    this.#offset += ms;
  }
}

export interface BackupServer {
  readonly url: string;
  readonly app: App;
  readonly backups: BackupService;
  readonly dataDir: string;
  readonly clock: ShiftedClock;
  log(): string;
  close(options?: { keepData?: boolean }): Promise<void>;
}

export async function startBackupServer(options: ServerOptions & { backups?: BackupServiceOptions; dataDir?: string; checkLog?: boolean } = {}): Promise<BackupServer> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'parley-backup-server-'));
  const clock = new ShiftedClock();
  const lines: string[] = [];
  const config = resolveConfig({
    testNumbers: TEST_NUMBERS,
    logLevel: 'debug',
    heartbeatIntervalMs: 0,
    ...options,
    port: 0,
    host: '127.0.0.1',
    dataDir,
    clock,
    logDestination: { write: (line: string) => void lines.push(line) },
  });
  const app = await createApp(config);
  const backups = new BackupService(app.storage.backups, app.storage.blobs, config, options.backups);
  const appRoutes = app.router.routes.filter((r) => !r.path.startsWith('/v1/backups'));
  const router = new Router([...appRoutes, ...backupRoutes(backups)], new Authenticator(app.storage.accounts), app.metrics, app.logger);
  const server: Server = createServer(createHttpHandler(router, config.limits.maxRequestBytes, app.logger));
  server.on('upgrade', (req, socket, head: Buffer) => app.gateway.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closed = false;
  return {
    url,
    app,
    backups,
    dataDir,
    clock,
    log: () => lines.join(''),
    async close({ keepData = false } = {}) {
      if (closed) return;
      closed = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
      server.closeAllConnections();
      await stopped;
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
      if (options.checkLog !== false) assertCleanLog(lines.join(''));
    },
  };
}
