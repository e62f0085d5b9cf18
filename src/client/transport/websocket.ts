/**
 * The WebSocket transport: one authenticated socket to the server carrying request/response frames both ways
 * (transport.proto). It keeps the connection up by itself: a state machine with typed `state` events and
 * numbered reasons, reconnects with full-jitter backoff, keep-alive requests, and per-request timeouts and
 * AbortSignals. A server that is shutting down closes with 1001 Going Away: the transport then reconnects at
 * once (after a random wait below `goingAwayJitterMs`, so that a node's clients do not all arrive together),
 * since another node, or the restarted server, is usually ready behind the same address. The WebSocket constructor is injected (default `globalThis.WebSocket`), so the same code runs
 * in browsers and, with the `ws` package, in Node.
 */
import { ClientError, ClientErrorCode, abortError } from '../errors.js';
import { Emitter } from '../emitter.js';
import { deferred, drop, withDeadline, type Deferred } from '../async.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { decodeFrame, encodeRequestFrame, encodeResponseFrame, MAX_FRAME_BYTES } from './frames.js';
import { loginOf, type ApiRequest, type ApiResponse, type DeviceCredentials, type RequestOptions, type Requester } from './types.js';

/** A callback type checked bivariantly, so that both DOM's and `ws`'s event types fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** The part of the WebSocket API the transport uses (DOM's WebSocket and `ws`'s both have it). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers (and Node 22+), `ws`'s default export in Node. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;
/** The close code of a server that is shutting down (RFC 6455 Going Away). */
export const GOING_AWAY = 1001;
/** Immediate reconnects after 1001 in a row (of sockets closed before `stableAfterMs`) before backing off. */
const MAX_QUICK_GOING_AWAY = 3;

/** Connection states. */
export const ConnectionState = {
  /** Not started yet. */
  Idle: 'idle',
  /** A socket is being opened. */
  Connecting: 'connecting',
  /** The socket is open and authenticated. */
  Connected: 'connected',
  /** Waiting (backoff) before the next attempt. */
  Reconnecting: 'reconnecting',
  /** Stopped for good: closed by the caller, or the credentials were refused. */
  Closed: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** Why the state changed. Numbered, as centrifuge-js numbers its disconnect codes; stable across releases. */
export const ConnectionReason = {
  /** The caller asked (connect() or close()). */
  Requested: 1,
  /** The socket opened. */
  Opened: 2,
  /** The socket could not be opened (network, server down, connect timeout). */
  ConnectFailed: 3,
  /** An open socket closed. */
  ConnectionLost: 4,
  /** The server refused the credentials: the transport stops. */
  Unauthorized: 5,
  /** Keep-alive requests went unanswered; the socket was closed. */
  KeepAliveTimeout: 6,
  /** The backoff delay passed; trying again. */
  Retrying: 7,
} as const;
export type ConnectionReason = (typeof ConnectionReason)[keyof typeof ConnectionReason];

/** The payload of a `state` event. */
export interface StateChange {
  readonly state: ConnectionState;
  readonly previous: ConnectionState;
  readonly reason: ConnectionReason;
  /** In Reconnecting: how long until the next attempt. */
  readonly retryInMs?: number;
  /** The WebSocket close code, when a socket closed. */
  readonly closeCode?: number;
}

/** A request the server pushed (PUT /v1/queue/message, PUT /v1/queue/empty). */
export interface IncomingRequest {
  readonly verb: string;
  readonly path: string;
  readonly body: Uint8Array;
}

/**
 * Answers a pushed request. The response is sent when the promise settles (a rejection answers 500), and
 * only on the socket that delivered the request: once that socket has closed the server redelivers, so an
 * answer there would be meaningless.
 */
export type PushHandler = (request: IncomingRequest) => Promise<{ status: number; body?: Uint8Array }>;

/** Events of the transport. */
export interface TransportEvents {
  state: StateChange;
}

export interface WebSocketTransportOptions {
  /** The server's base URL, `http(s)://host:port` (the transport connects to `ws(s)://host:port/v1/websocket`). */
  readonly url: string;
  readonly credentials: DeviceCredentials;
  /** Default `globalThis.WebSocket`. */
  readonly WebSocket?: WebSocketConstructor | undefined;
  /** Answers server pushes (default: 501, which leaves pushed envelopes queued). */
  readonly onRequest?: PushHandler | undefined;
  /** Default request timeout, ms (default 15,000). */
  readonly requestTimeoutMs?: number | undefined;
  /** How long opening a socket may take, ms (default 10,000). */
  readonly connectTimeoutMs?: number | undefined;
  /** Silence after which a keep-alive request is sent, ms (default 30,000; 0 turns keep-alives off). */
  readonly keepAliveMs?: number | undefined;
  /** A socket must stay open this long for the backoff to start over, ms (default 5,000). */
  readonly stableAfterMs?: number | undefined;
  readonly backoff?: BackoffOptions | undefined;
  /**
   * After a 1001 Going Away close, the reconnect waits a random time below this, ms (default 500): soon,
   * but spread out. The backoff starts over; if the new attempt fails, it takes over from there.
   */
  readonly goingAwayJitterMs?: number | undefined;
  /**
   * Called after a socket failed to open: resolves false when the server refuses the credentials (browsers do
   * not expose the 401 of a failed upgrade, so the client asks over HTTP). Default: assume they are fine.
   */
  readonly checkCredentials?: (() => Promise<boolean>) | undefined;
  readonly maxFrameBytes?: number | undefined;
}

interface Pending {
  readonly socket: WebSocketLike;
  readonly done: Deferred<ApiResponse>;
  readonly cleanup: () => void;
}

/** The WebSocket URL for `url` (http -> ws, https -> wss) with the credentials as query parameters. */
export function websocketUrl(url: string, credentials: DeviceCredentials): string {
  const u = new URL('/v1/websocket', url);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = new URLSearchParams({ login: loginOf(credentials), password: credentials.password }).toString();
  return u.toString();
}

/** The WebSocket transport. Start it with {@link connect}; stop it with {@link close}. */
export class WebSocketTransport implements Requester {
  readonly #options: WebSocketTransportOptions;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #events = new Emitter<TransportEvents>();
  readonly #backoff: Backoff;
  readonly #pending = new Map<bigint, Pending>();
  #state: ConnectionState = ConnectionState.Idle;
  #socket: WebSocketLike | undefined;
  #openedAt = 0;
  #nextId = 1n;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** The socket being opened, and its connect timeout. */
  #connecting: { socket: WebSocketLike; timer: ReturnType<typeof setTimeout> } | undefined;
  #keepAliveTimer: ReturnType<typeof setTimeout> | undefined;
  #lastFrameAt = 0;
  /** 1001 closes in a row of sockets that had not become stable. */
  #goingAwayStreak = 0;
  /** Settles when the state next becomes Connected (resolve) or Closed (reject). */
  #connected: Deferred<void> = deferred();

  constructor(options: WebSocketTransportOptions) {
    this.#options = options;
    this.#WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.#backoff = new Backoff(options.backoff);
    this.#connected.promise.catch(() => undefined);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof TransportEvents>(event: K, listener: (payload: TransportEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** Starts connecting (and keeps reconnecting until {@link close}). Does nothing when already started. */
  connect(): void {
    if (this.#state !== ConnectionState.Idle) return;
    if (!this.#WebSocket) throw new ClientError(ClientErrorCode.InvalidArgument, 'no WebSocket implementation: pass one (in Node, the ws package)');
    this.#open(ConnectionReason.Requested);
  }

  /** Resolves once connected; rejects when the transport closes first, on timeout, or on abort. */
  async waitUntilConnected(options: RequestOptions = {}): Promise<void> {
    if (this.#state === ConnectionState.Connected) return;
    if (this.#state === ConnectionState.Closed) throw this.#closedError();
    await withDeadline(this.#connected.promise, options.timeoutMs ?? this.#requestTimeoutMs, options.signal, () => new ClientError(ClientErrorCode.Timeout, 'not connected in time'));
  }

  /** Stops: closes the socket, fails pending requests with `CLIENT_CLOSED`, never reconnects. */
  close(reason: ConnectionReason = ConnectionReason.Requested): void {
    if (this.#state === ConnectionState.Closed) return;
    clearTimeout(this.#reconnectTimer);
    this.#stopKeepAlive();
    if (this.#connecting) {
      clearTimeout(this.#connecting.timer);
      this.#detach(this.#connecting.socket);
      closeQuietly(this.#connecting.socket, 1000);
      this.#connecting = undefined;
    }
    const socket = this.#socket;
    this.#socket = undefined;
    this.#detach(socket);
    if (socket) closeQuietly(socket, 1000);
    this.#failPending(undefined, new ClientError(ClientErrorCode.Closed, 'transport closed'));
    this.#setState(ConnectionState.Closed, reason);
    this.#connected.reject(this.#closedError());
  }

  /**
   * Sends a request over the socket, waiting for the connection when it is not up yet. Rejects with
   * `CLIENT_TIMEOUT`, `CLIENT_ABORTED`, `CLIENT_CONNECTION_CLOSED` (the socket closed before the answer;
   * whether the server acted on it is unknown) or `CLIENT_CLOSED`.
   */
  async request(req: ApiRequest, options: RequestOptions = {}): Promise<ApiResponse> {
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    const started = Date.now();
    if (this.#state !== ConnectionState.Connected) await this.waitUntilConnected({ signal: options.signal, timeoutMs });
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN) throw new ClientError(ClientErrorCode.ConnectionClosed, 'connection lost');
    if (options.signal?.aborted) throw abortError(options.signal);
    const id = this.#nextId++;
    const done = deferred<ApiResponse>();
    const onAbort = (): void => this.#settle(id, undefined, abortError(options.signal as AbortSignal));
    const timer = setTimeout(
      () => this.#settle(id, undefined, new ClientError(ClientErrorCode.Timeout, `no response to ${req.verb} in ${timeoutMs} ms`)),
      Math.max(0, timeoutMs - (Date.now() - started)),
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.#pending.set(id, {
      socket,
      done,
      cleanup: () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      },
    });
    try {
      socket.send(encodeRequestFrame(id, req.verb, req.path, req.body));
    } catch (cause) {
      this.#settle(id, undefined, new ClientError(ClientErrorCode.ConnectionClosed, 'send failed', { cause }));
    }
    return done.promise;
  }

  get #requestTimeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 15_000;
  }

  #closedError(): ClientError {
    return new ClientError(ClientErrorCode.Closed, 'transport closed');
  }

  #setState(state: ConnectionState, reason: ConnectionReason, extra: { retryInMs?: number; closeCode?: number } = {}): void {
    const previous = this.#state;
    if (previous === state && state !== ConnectionState.Reconnecting) return;
    this.#state = state;
    this.#events.emit('state', { state, previous, reason, ...extra });
  }

  #open(reason: ConnectionReason): void {
    const Ctor = this.#WebSocket as WebSocketConstructor;
    this.#setState(ConnectionState.Connecting, reason);
    let socket: WebSocketLike;
    try {
      socket = new Ctor(websocketUrl(this.#options.url, this.#options.credentials));
    } catch {
      this.#scheduleReconnect(ConnectionReason.ConnectFailed);
      return;
    }
    socket.binaryType = 'arraybuffer';
    let opened = false;
    const connectTimer = setTimeout(() => {
      if (!opened) closeQuietly(socket, 4000);
    }, this.#options.connectTimeoutMs ?? 10_000);
    this.#connecting = { socket, timer: connectTimer };
    socket.onopen = () => {
      clearTimeout(connectTimer);
      this.#connecting = undefined;
      if (this.#state === ConnectionState.Closed) return;
      opened = true;
      this.#socket = socket;
      this.#openedAt = Date.now();
      this.#lastFrameAt = this.#openedAt;
      this.#setState(ConnectionState.Connected, ConnectionReason.Opened);
      const connected = this.#connected;
      this.#connected = deferred();
      this.#connected.promise.catch(() => undefined);
      connected.resolve();
      this.#scheduleKeepAlive();
    };
    socket.onmessage = (event) => this.#onMessage(socket, event.data);
    socket.onerror = () => undefined; // a close event follows
    socket.onclose = (event) => {
      clearTimeout(connectTimer);
      if (this.#connecting?.socket === socket) this.#connecting = undefined;
      this.#detach(socket);
      if (this.#state === ConnectionState.Closed) return;
      if (opened) {
        this.#socket = undefined;
        this.#stopKeepAlive();
        this.#failPending(socket, new ClientError(ClientErrorCode.ConnectionClosed, 'connection closed before the response'));
        const stable = Date.now() - this.#openedAt >= (this.#options.stableAfterMs ?? 5_000);
        if (stable) this.#goingAwayStreak = 0;
        // At once, unless sockets keep being sent away right after opening (then the backoff decides).
        if (event.code === GOING_AWAY && this.#goingAwayStreak++ < MAX_QUICK_GOING_AWAY) {
          this.#backoff.reset();
          const jitterMs = this.#options.goingAwayJitterMs ?? 500;
          // Reported as ConnectionLost with closeCode 1001 and the short retryInMs.
          this.#scheduleReconnect(ConnectionReason.ConnectionLost, event.code, Math.floor((this.#options.backoff?.random ?? Math.random)() * jitterMs));
          return;
        }
        if (stable) this.#backoff.reset();
        this.#scheduleReconnect(event.code === 4001 ? ConnectionReason.KeepAliveTimeout : ConnectionReason.ConnectionLost, event.code);
      } else {
        drop(this.#afterConnectFailure(event.code));
      }
    };
  }

  async #afterConnectFailure(closeCode: number): Promise<void> {
    const check = this.#options.checkCredentials;
    if (check) {
      let ok = true;
      try {
        ok = await check();
      } catch {
        ok = true; // could not tell: keep trying
      }
      if (this.#state === ConnectionState.Closed) return;
      if (!ok) {
        this.close(ConnectionReason.Unauthorized);
        return;
      }
    }
    this.#scheduleReconnect(ConnectionReason.ConnectFailed, closeCode);
  }

  #scheduleReconnect(reason: ConnectionReason, closeCode?: number, delayMs?: number): void {
    if (this.#state === ConnectionState.Closed) return;
    const delay = delayMs ?? this.#backoff.next();
    this.#setState(ConnectionState.Reconnecting, reason, closeCode === undefined ? { retryInMs: delay } : { retryInMs: delay, closeCode });
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      if (this.#state === ConnectionState.Reconnecting) this.#open(ConnectionReason.Retrying);
    }, delay);
  }

  #detach(socket: WebSocketLike | undefined): void {
    if (!socket) return;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    // Not null: closing a socket that is still connecting makes `ws` (Node) emit an error event, and an
    // error event without a listener would be thrown as an uncaught exception.
    socket.onerror = () => undefined;
  }

  #onMessage(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.#socket) return;
    this.#lastFrameAt = Date.now();
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : undefined;
    if (!bytes) return; // text frames are not part of the protocol
    const frame = decodeFrame(bytes, this.#options.maxFrameBytes ?? MAX_FRAME_BYTES);
    if (!frame) return; // malformed: nothing to answer, and nothing we sent waits on it
    if (frame.kind === 'response') {
      const r = frame.response;
      this.#settle(r.id, { status: r.status, code: r.code, message: r.message, body: r.body, retryAfterMs: r.retryAfterMs });
      return;
    }
    const req = frame.request;
    drop(this.#answer(socket, req.id, { verb: req.verb, path: req.path, body: req.body }));
  }

  async #answer(socket: WebSocketLike, id: bigint, request: IncomingRequest): Promise<void> {
    let status = 501;
    let body: Uint8Array | undefined;
    const handler = this.#options.onRequest;
    if (handler) {
      try {
        ({ status, body } = await handler(request));
      } catch {
        status = 500;
      }
    }
    if (socket !== this.#socket || socket.readyState !== OPEN) return;
    try {
      socket.send(encodeResponseFrame(id, status, body));
    } catch {
      // The socket is closing; the server will deliver again.
    }
  }

  #settle(id: bigint, response: ApiResponse | undefined, error?: ClientError): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    pending.cleanup();
    if (response) pending.done.resolve(response);
    else pending.done.reject(error);
  }

  #failPending(socket: WebSocketLike | undefined, error: ClientError): void {
    for (const [id, pending] of [...this.#pending]) {
      if (socket === undefined || pending.socket === socket) this.#settle(id, undefined, error);
    }
  }

  #scheduleKeepAlive(): void {
    const interval = this.#options.keepAliveMs ?? 30_000;
    if (interval <= 0) return;
    this.#stopKeepAlive();
    this.#keepAliveTimer = setTimeout(() => drop(this.#keepAlive(interval)), interval);
  }

  async #keepAlive(interval: number): Promise<void> {
    const socket = this.#socket;
    if (!socket || this.#state !== ConnectionState.Connected) return;
    if (Date.now() - this.#lastFrameAt >= interval) {
      try {
        await this.request({ verb: 'GET', path: '/v1/accounts/whoami' }, { timeoutMs: interval });
      } catch (err) {
        if (ClientError.is(err, ClientErrorCode.Timeout) && socket === this.#socket) {
          closeQuietly(socket, 4001);
          return;
        }
      }
    }
    if (socket === this.#socket) this.#scheduleKeepAlive();
  }

  #stopKeepAlive(): void {
    clearTimeout(this.#keepAliveTimer);
    this.#keepAliveTimer = undefined;
  }
}

function closeQuietly(socket: WebSocketLike, code: number): void {
  try {
    socket.close(code);
  } catch {
    // already closed
  }
}
