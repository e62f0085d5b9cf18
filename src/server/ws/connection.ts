/**
 * One authenticated WebSocket. Frames from the client are either requests (run through the same router
 * as HTTP, answered with a Response of the same id) or responses to the server's pushes (acks). Frames
 * that are not a binary `Frame` message break the framing and close the socket (4400); a request the
 * router refuses gets an error Response and the socket stays open. Requests are rate limited per
 * connection: refused ones get 429 with `retry_after_ms`, and a client that keeps going past
 * `floodCloseAfter` refusals in a row is disconnected (4429).
 *
 * On shutdown the gateway calls {@link DeviceConnection.beginShutdown}: pushing stops, new requests are
 * refused with 503 (retry elsewhere), and {@link DeviceConnection.idle} resolves once the requests being
 * handled have been answered (an answer to a send is only written after the store committed it) and the
 * pushes out have been acknowledged; then the socket is closed with 1001.
 */
import type { Duplex } from 'node:stream';
import { fromBinary } from '@bufbuild/protobuf';
import type { WebSocket } from 'ws';
import { FrameSchema, type Request, type Response } from '../../protocol/gen/transport_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { ServerConfig } from '../config.js';
import { QueueDelivery, type DeliveryDeps, type PushChannel } from '../delivery/queue-delivery.js';
import { drop } from '../drop.js';
import { ServerError, ServerErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { ServerMetrics } from '../metrics.js';
import type { RateLimiter } from '../rate-limiter.js';
import { errorResponse, type Router, type RouterResponse } from '../http/router.js';
import type { PresenceService } from '../services/presence.js';
import { CloseCode } from './close-codes.js';
import { encodePushFrame, encodeRequestFrame, encodeResponseFrame, type EnvelopeFields } from './frames.js';
import type { ConnectionRegistry, RegisteredSocket } from './registry.js';

/** What a connection needs from the server. */
export interface ConnectionDeps extends DeliveryDeps {
  readonly router: Router;
  readonly registry: ConnectionRegistry;
  readonly presence: PresenceService;
  readonly requestLimiter: RateLimiter;
  readonly config: ServerConfig;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
}

interface PendingPush {
  resolve(status: number): void;
  reject(err: Error): void;
}

/** Requests handled at once on one socket; more are refused with 429 until some finish. */
const MAX_CONCURRENT_REQUESTS = 1024;
const EMPTY = new Uint8Array(0);
let nextConnectionId = 0;

/** An authenticated device's socket. */
export class DeviceConnection implements RegisteredSocket, PushChannel {
  readonly device: AuthenticatedDevice;
  readonly #ws: WebSocket;
  readonly #deps: ConnectionDeps;
  readonly #remoteAddress: string;
  readonly #key = `c${nextConnectionId++}`;
  readonly #delivery: QueueDelivery;
  readonly #pending = new Map<number, PendingPush>();
  #nextPushId = 1;
  #activeRequests = 0;
  #refusedInARow = 0;
  #closed = false;
  /** The TCP socket under the WebSocket, corked while frames of this loop iteration accumulate. */
  readonly #socket: Duplex | undefined;
  #corked = false;
  #closeListeners: Array<() => void> = [];
  #shuttingDown = false;
  #idleWaiters: Array<() => void> = [];
  /** Settles once the socket closed and its last-seen write and ack deletes finished. */
  #finished: Promise<void> | undefined;
  /** Set by a pong, cleared by each heartbeat ping. */
  alive = true;

  constructor(ws: WebSocket, device: AuthenticatedDevice, remoteAddress: string, deps: ConnectionDeps) {
    this.device = device;
    this.#ws = ws;
    this.#deps = deps;
    this.#remoteAddress = remoteAddress;
    this.#socket = (ws as unknown as { _socket?: Duplex })._socket;
    this.#delivery = new QueueDelivery(device, this, deps, {
      connectionId: `${deps.bus.nodeId}/${this.#key}`,
      connectedAt: Date.now(),
      onRemoved: () => this.close(CloseCode.Revoked, 'device removed'),
      onReplaced: () => this.close(CloseCode.Replaced, 'replaced by a newer connection'),
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('error', (err) => {
      // ws reports oversized frames and broken framing here, then closes (1009, 1002).
      deps.logger.debug({ code: (err as { code?: string }).code, accountId: device.accountId, deviceId: device.deviceId }, 'socket error');
    });
    ws.on('close', () => this.#onClose());
    if (deps.registry.add(this)) deps.presence.wentOnline(device.accountId);
    deps.metrics.connections.inc();
    this.#delivery.start();
  }

  /** Closes the socket with a close code (idempotent). */
  close(code: number, reason: string): void {
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) this.#ws.close(code, reason);
  }

  /** Calls `listener` once the socket has closed (at once if it already has). */
  onClosed(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  /** Drops the socket without a closing handshake (heartbeat timeout, shutdown). */
  terminate(): void {
    this.#ws.terminate();
  }

  /**
   * Shutdown, step one: stop pushing, refuse new requests with 503. Acks of pushes already out and
   * requests already running go on; {@link idle} says when they are done.
   */
  beginShutdown(): void {
    this.#shuttingDown = true;
    this.#delivery.stop();
    this.#checkIdle();
  }

  /** Requests being handled and pushes awaiting their ack. */
  get inFlight(): { readonly requests: number; readonly pushes: number } {
    return { requests: this.#activeRequests, pushes: this.#pending.size };
  }

  /** Resolves when no request is running and no push awaits its ack (or the socket closed). */
  idle(): Promise<void> {
    if (this.#closed || (this.#activeRequests === 0 && this.#pending.size === 0)) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Resolves once the socket has closed and the work its closing started (last seen, ack deletes) is done. */
  finished(): Promise<void> {
    return new Promise<void>((resolve) => this.onClosed(resolve)).then(() => this.#finished);
  }

  /** The bus came back after an outage: read the queue again (events may have been lost). */
  resync(): void {
    if (!this.#closed && !this.#shuttingDown) this.#delivery.resync();
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    if (!this.#closed && (this.#activeRequests > 0 || this.#pending.size > 0)) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Sends a ping; the heartbeat calls this. */
  ping(): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.ping();
  }

  push(envelope: EnvelopeFields): Promise<number> {
    return this.#request((id) => encodePushFrame(id, envelope));
  }

  queueEmpty(): Promise<number> {
    return this.#request((id) => encodeRequestFrame(id, 'PUT', '/v1/queue/empty', EMPTY));
  }

  /** Sends a server-initiated request; resolves with the client's status. */
  #request(encode: (id: number) => Buffer): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('socket closed'));
    const id = this.#nextPushId++;
    return new Promise<number>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#sendFrame(encode(id));
    });
  }

  #sendFrame(frame: Buffer): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    // Cork until the end of this loop iteration: the responses and pushes of one iteration (often many,
    // under load) leave in one write instead of one system call each.
    if (!this.#corked && this.#socket !== undefined) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(() => {
        this.#corked = false;
        this.#socket?.uncork();
      });
    }
    this.#ws.send(frame);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    let frame;
    try {
      if (!isBinary) throw new Error('text frame');
      frame = fromBinary(FrameSchema, data);
    } catch {
      this.#deps.logger.debug({ accountId: this.device.accountId, deviceId: this.device.deviceId }, 'malformed frame');
      this.close(CloseCode.MalformedFrame, ServerErrorCode.MalformedFrame);
      return;
    }
    switch (frame.kind.case) {
      case 'request':
        this.#onRequest(frame.kind.value);
        return;
      case 'response':
        this.#onResponse(frame.kind.value);
        return;
      default:
        this.close(CloseCode.MalformedFrame, ServerErrorCode.MalformedFrame);
    }
  }

  #onResponse(response: Response): void {
    if (response.id > BigInt(Number.MAX_SAFE_INTEGER)) return;
    const id = Number(response.id);
    const pending = this.#pending.get(id);
    if (pending === undefined) return; // an answer to nothing we sent: ignore
    this.#pending.delete(id);
    pending.resolve(response.status);
    if (this.#shuttingDown) this.#checkIdle();
  }

  #onRequest(request: Request): void {
    if (this.#shuttingDown) {
      const refused = new ServerError(ServerErrorCode.Unavailable, 'server shutting down: reconnect and retry', { retryAfterMs: 0 });
      this.#respond(request.id, errorResponse(refused, 'shutdown', this.#deps.logger));
      return;
    }
    const wait = this.#deps.requestLimiter.take(this.#key);
    if (wait > 0 || this.#activeRequests >= MAX_CONCURRENT_REQUESTS) {
      this.#refusedInARow++;
      if (this.#refusedInARow > this.#deps.config.limits.floodCloseAfter) {
        this.#deps.logger.info({ event: 'flood_close', accountId: this.device.accountId, deviceId: this.device.deviceId }, 'closing a flooding socket');
        this.close(CloseCode.Flooding, ServerErrorCode.RateLimited);
        return;
      }
      const refused = new ServerError(ServerErrorCode.RateLimited, 'too many requests on this connection', { retryAfterMs: Math.max(wait, 100) });
      this.#respond(request.id, errorResponse(refused, 'flood', this.#deps.logger));
      return;
    }
    this.#refusedInARow = 0;
    this.#activeRequests++;
    drop(
      this.#deps.router
        .handle({
          verb: request.verb,
          path: request.path,
          body: request.body,
          remoteAddress: this.#remoteAddress,
          transport: 'ws',
          auth: { device: this.device },
        })
        .then((response) => {
          this.#activeRequests--;
          this.#respond(request.id, response);
          if (this.#shuttingDown) this.#checkIdle();
        }),
    );
  }

  #respond(id: bigint, r: RouterResponse): void {
    this.#sendFrame(encodeResponseFrame({ id, status: r.status, code: r.code, message: r.message, body: r.body, retryAfterMs: Math.min(r.retryAfterMs, 0xffff_ffff) }));
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#delivery.stop();
    for (const pending of this.#pending.values()) pending.reject(new Error('socket closed'));
    this.#pending.clear();
    this.#deps.requestLimiter.reset(this.#key);
    this.#deps.metrics.connections.dec();
    const work: Array<Promise<unknown>> = [this.#delivery.settled()];
    if (this.#deps.registry.remove(this)) {
      work.push(this.#deps.presence.wentOffline(this.device.accountId).catch((err: unknown) => this.#deps.logger.warn({ err }, 'recording last seen failed')));
    }
    this.#finished = Promise.allSettled(work).then(() => undefined);
    this.#checkIdle();
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners = [];
  }
}
