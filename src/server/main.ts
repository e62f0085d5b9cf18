/**
 * The server's entry points: {@link startServer} (used by `parley serve`, tests and benchmarks) and
 * {@link parseServerArgs} with its `--help` text (re-exported from `args.ts`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type App } from './app.js';
import { resolveConfig, type ServerOptions } from './config.js';
import { createHttpHandler } from './http/http-adapter.js';

export { parseServerArgs, SERVER_HELP, type ParsedServerArgs } from './args.js';
export type { ServerOptions, RateLimits, RateLimit, ServerLimits, VerificationSenderOption } from './config.js';
export type { VerificationSender } from './services/verification-sender.js';
export { ServerError, ServerErrorCode } from './errors.js';

/** How long a shutdown waits for running HTTP requests (long uploads resume after it). */
const HTTP_DRAIN_LIMIT_MS = 10_000;

/** A listening server. */
export interface RunningServer {
  /** The port it listens on (the chosen one when started with port 0). */
  readonly port: number;
  /** `http://<host>:<port>` (with 127.0.0.1 when listening on every interface). */
  readonly url: string;
  /** The parts, for tests: router (in-process requests), storage, sweep, metrics. */
  readonly app: App;
  /**
   * Graceful shutdown: stops accepting connections, tells WebSocket clients to reconnect (1001), lets
   * running HTTP requests answer (up to 10 s; an upload cut later resumes), then flushes and closes the
   * storage. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Opens the data folder (creating and migrating the database), then listens for HTTP and WebSocket
 * clients on one port. Resolves once the port accepts connections (`/healthz` answers 200 from then on).
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const config = resolveConfig(options);
  const app = await createApp(config);
  // HTTP requests under way, so that a shutdown lets them answer before the storage closes.
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const handler = createHttpHandler(app.router, config.limits.maxRequestBytes, app.logger);
  const server: Server = createServer({ requestTimeout: 30_000, headersTimeout: 15_000, keepAliveTimeout: 5_000 }, (req, res) => {
    inFlight++;
    res.once('close', () => {
      if (--inFlight === 0) idle?.();
    });
    handler(req, res);
  });
  /** Resolves once no HTTP request is running, or after `limitMs`. */
  const httpDrained = (limitMs: number): Promise<void> =>
    new Promise((resolve) => {
      if (inFlight === 0) return resolve();
      const timer = setTimeout(resolve, limitMs);
      timer.unref();
      idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  server.on('upgrade', (req, socket, head: Buffer) => app.gateway.handleUpgrade(req, socket, head));
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await app.close();
    throw err;
  }
  // After listen, socket-level errors (for example running out of descriptors) are logged, never fatal.
  server.on('error', (err) => app.logger.warn({ err }, 'HTTP server error'));
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  app.logger.info({ event: 'listening', port }, 'server listening');
  let closing: Promise<void> | undefined;
  return {
    port,
    url,
    app,
    close(): Promise<void> {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await app.close(httpDrained(HTTP_DRAIN_LIMIT_MS));
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}

/** The longest a graceful shutdown may take before {@link closeOnSignal} gives up. */
export const SHUTDOWN_LIMIT_MS = 30_000;

/**
 * Waits for SIGINT or SIGTERM, then shuts `server` down gracefully: it stops accepting, tells its clients
 * to reconnect (to another node of a cluster) and waits for what it acknowledged to be durable. Resolves
 * with the exit status: 0 once closed; 1 when closing failed, took longer than {@link SHUTDOWN_LIMIT_MS},
 * or a second signal came first (nothing acknowledged is lost even then: an acknowledgement follows the
 * commit).
 */
export function closeOnSignal(server: RunningServer, stderr: { write(text: string): unknown } = process.stderr): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        stderr.write(`parley serve: ${signal} again, exiting now\n`);
        resolve(1);
        return;
      }
      stopping = true;
      server.app.logger.info({ event: 'shutdown', signal }, 'shutting down');
      const timer = setTimeout(() => {
        stderr.write(`parley serve: shutdown took longer than ${SHUTDOWN_LIMIT_MS / 1000} s\n`);
        resolve(1);
      }, SHUTDOWN_LIMIT_MS);
      timer.unref();
      server.close().then(
        () => {
          clearTimeout(timer);
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve(0);
        },
        (err: unknown) => {
          clearTimeout(timer);
          stderr.write(`parley serve: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
