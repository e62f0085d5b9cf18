/**
 * The WebSocket endpoint, `GET /v1/websocket` on the HTTP port. The upgrade is authenticated before the
 * socket opens (Basic header, or `login` and `password` query parameters for browsers); a failure is
 * answered with a plain HTTP 401 and the TCP connection closed. One interval pings every socket and
 * drops those that did not answer the previous ping. When the bus comes back from an outage, every
 * socket re-reads its device's queue from the store.
 *
 * Shutdown ({@link WebSocketGateway.close}): refuse new upgrades (503), stop pushing and refuse new
 * requests (503), let running requests answer, then close every socket with 1001 Going Away, on which
 * Parley clients reconnect at once (with a little jitter), to another node behind the same address.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authenticator } from '../auth/authenticator.js';
import { parseBasicAuthorization, parseQueryCredentials } from '../auth/credentials.js';
import { drop } from '../drop.js';
import { ServerError, ServerErrorCode, STATUS_OF } from '../errors.js';
import { CloseCode } from './close-codes.js';
import { DeviceConnection, type ConnectionDeps } from './connection.js';

export const WEBSOCKET_PATH = '/v1/websocket';

/** How long a closing gateway keeps sockets open to answer requests already on their way with 503. */
const SHUTDOWN_GRACE_MS = 100;

const REASONS: Readonly<Record<number, string>> = { 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' };

/** Answers an upgrade request with a bare HTTP error and closes the TCP connection. */
function refuse(socket: Duplex, code: ServerErrorCode): void {
  const status = STATUS_OF[code];
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nX-Parley-Error: ${code}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

/** Accepts authenticated WebSocket connections. */
export class WebSocketGateway {
  readonly #wss: WebSocketServer;
  readonly #authenticator: Authenticator;
  readonly #deps: ConnectionDeps;
  readonly #connections = new Set<DeviceConnection>();
  #heartbeat: NodeJS.Timeout | undefined;
  readonly #stopResync: () => void;
  #closing = false;

  constructor(authenticator: Authenticator, deps: ConnectionDeps) {
    this.#authenticator = authenticator;
    this.#deps = deps;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.config.limits.maxRequestBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
    const interval = deps.config.heartbeatIntervalMs;
    if (interval > 0) {
      this.#heartbeat = setInterval(() => this.#beat(), interval);
      this.#heartbeat.unref();
    }
    this.#stopResync = deps.bus.onResync(() => {
      for (const connection of this.#connections) connection.resync();
    });
  }

  /** The `upgrade` handler of the HTTP server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined); // a reset during the handshake must not crash the process
    drop(this.#upgrade(req, socket, head), () => refuse(socket, ServerErrorCode.Internal));
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (this.#closing) return refuse(socket, ServerErrorCode.Unavailable);
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== WEBSOCKET_PATH) return refuse(socket, ServerErrorCode.UnknownPath);
    const credentials = parseBasicAuthorization(req.headers.authorization) ?? parseQueryCredentials(url.searchParams);
    let device;
    try {
      device = await this.#authenticator.authenticate(credentials);
    } catch (err) {
      return refuse(socket, ServerError.is(err) ? err.code : ServerErrorCode.Internal);
    }
    if (this.#closing || socket.destroyed) return refuse(socket, ServerErrorCode.Unavailable);
    const remoteAddress = req.socket.remoteAddress ?? 'unknown';
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const connection = new DeviceConnection(ws, device, remoteAddress, this.#deps);
      this.#connections.add(connection);
      ws.on('close', () => this.#connections.delete(connection));
    });
  }

  #beat(): void {
    for (const connection of this.#connections) {
      if (!connection.alive) {
        connection.terminate();
        continue;
      }
      connection.alive = false;
      connection.ping();
    }
  }

  /** How many sockets are open. */
  get size(): number {
    return this.#connections.size;
  }

  /**
   * Refuses new upgrades, refuses new requests with 503 for `graceMs` (default 100), lets running
   * requests finish and pushes be acknowledged (all in all at most `drainTimeoutMs`, default 10 s), then
   * closes every socket with 1001 and waits until each one's closing work (last seen, ack deletes) is
   * done. Nothing a client saw acknowledged is lost: acks are only written after the store committed.
   */
  async close(drainTimeoutMs = 10_000, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    this.#closing = true;
    this.#stopResync();
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    const connections = [...this.#connections];
    let requests = 0;
    let pushes = 0;
    for (const c of connections) {
      requests += c.inFlight.requests;
      pushes += c.inFlight.pushes;
      c.beginShutdown();
    }
    const drainStarted = Date.now();
    this.#deps.logger.info({ event: 'shutdown_drain', sockets: connections.length, requests, pushes }, 'shutting down: finishing requests in flight');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        // A grace period first: requests the clients sent before they could know are still in the socket
        // buffers; they get a clear 503 (retry elsewhere) rather than a socket closing on them.
        await new Promise((resolve) => setTimeout(resolve, Math.min(graceMs, drainTimeoutMs)));
        await Promise.all(connections.map((c) => c.idle()));
      })(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, drainTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.#deps.logger.info({ event: 'shutdown_close', sockets: connections.length, drainMs: Date.now() - drainStarted }, 'shutting down: closing sockets (1001)');
    const closed = connections.map(
      (c) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => c.terminate(), 2000);
          timer.unref();
          c.onClosed(() => clearTimeout(timer));
          c.close(CloseCode.GoingAway, 'server shutting down');
          drop(c.finished().then(resolve));
        }),
    );
    await Promise.all(closed);
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
