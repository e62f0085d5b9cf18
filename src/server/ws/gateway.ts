/**
 * The WebSocket endpoint, `GET /v1/websocket` on the HTTP port. The upgrade is authenticated before the
 * socket opens (Basic header, or `login` and `password` query parameters for browsers); a failure is
 * answered with a plain HTTP 401 and the TCP connection closed. One interval pings every socket and
 * drops those that did not answer the previous ping.
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

  /** Refuses new upgrades and closes every socket (1001). */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    const closed = [...this.#connections].map(
      (c) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            c.terminate();
            resolve();
          }, 2000);
          timer.unref();
          c.onClosed(() => {
            clearTimeout(timer);
            resolve();
          });
          c.close(CloseCode.GoingAway, 'server shutting down');
        }),
    );
    await Promise.all(closed);
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
