// A small in-process fake of the Parley server for the SDK's unit tests: the routes of docs/api.md that the
// SDK uses, the WebSocket framing (pushes with ack-by-response, queue/empty) and HTTP, all without sockets.
// It hands out a `fetch` and a WebSocket constructor to inject into the SDK. Tests hook into it: rewrite or
// answer requests (`hooks.request`), tamper with pushes (`hooks.push`), drop connections, read queues.
//
// It is deliberately simple (no rate limits, no expiry) and is not the real server: the end-to-end tests run
// against that one.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  EnvelopeSchema,
  KeyStatusResponseSchema,
  LookupResponseSchema,
  MismatchedDevicesSchema,
  PreKeyResponseSchema,
  RegisterRequestSchema,
  RegisterResponseSchema,
  SendMessageRequestSchema,
  SendMessageResponseSchema,
  SetKeysRequestSchema,
  StaleDevicesSchema,
  VerificationCodeRequestSchema,
  VerificationCodeResponseSchema,
  WhoAmIResponseSchema,
  type Envelope,
  type KyberPreKey,
  type PreKey,
  type SignedPreKey,
} from '../../src/protocol/gen/service_pb.ts';
import { FrameSchema } from '../../src/protocol/gen/transport_pb.ts';
import type { FetchLike } from '../../src/client/transport/http.ts';
import type { WebSocketConstructor, WebSocketLike } from '../../src/client/transport/websocket.ts';

/** The verification code the fake accepts for every number. */
export const FAKE_CODE = '123456';

export interface FakeRequest {
  readonly verb: string;
  readonly path: string;
  readonly body: Uint8Array;
  /** `<account>.<device>` when authenticated. */
  readonly login: string | undefined;
  readonly via: 'http' | 'ws';
}

export interface FakeResponse {
  readonly status: number;
  readonly code?: string;
  readonly body?: Uint8Array;
  readonly retryAfterMs?: number;
}

interface Device {
  readonly id: number;
  registrationId: number;
  password: string;
  signedPreKey: SignedPreKey | undefined;
  lastResort: KyberPreKey | undefined;
  signedUploadedAt: number;
  preKeys: PreKey[];
  kyberPreKeys: KyberPreKey[];
  /** Stored envelopes, oldest first. */
  queue: Envelope[];
  sockets: Set<FakeSocket>;
}

interface Account {
  readonly id: string;
  readonly number: string;
  identityKey: Uint8Array;
  devices: Map<number, Device>;
}

/** One connection as the server sees it. */
class FakeSocket {
  /** Pushes awaiting an answer: request id -> envelope guid (hex) or 'empty'. */
  readonly pending = new Map<bigint, string>();
  nextId = 1n;
  constructor(
    readonly client: FakeClientSocket,
    readonly account: Account,
    readonly device: Device,
  ) {}
}

/** The client's end, handed to the SDK as its WebSocket. */
class FakeClientSocket implements WebSocketLike {
  binaryType = 'blob';
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  server: FakeSocket | undefined;

  constructor(
    readonly fake: FakeServer,
    readonly url: string,
  ) {
    setImmediate(() => fake.accept(this));
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error('socket not open');
    const copy = data.slice();
    setImmediate(() => this.fake.onClientFrame(this, copy));
  }

  close(code = 1000): void {
    this.fake.dropSocket(this, code);
  }

  /** Server -> client bytes. */
  deliver(bytes: Uint8Array): void {
    if (this.readyState !== 1) return;
    const buffer = bytes.slice().buffer;
    setImmediate(() => {
      if (this.readyState === 1) this.onmessage?.({ data: buffer });
    });
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ok = (body?: Uint8Array): FakeResponse => ({ status: 200, body: body ?? new Uint8Array(0) });
const err = (status: number, code: string, body?: Uint8Array): FakeResponse => ({ status, code, body: body ?? new Uint8Array(0) });
const enc = <D extends DescMessage>(schema: D, init: Parameters<typeof create<D>>[1]): Uint8Array => toBinary(schema, create(schema, init));
const dec = <D extends DescMessage>(schema: D, bytes: Uint8Array): MessageShape<D> => fromBinary(schema, bytes);

export class FakeServer {
  readonly url = 'http://fake.parley.test';
  readonly hooks: {
    /**
     * Runs before every request; a response returned here is the answer (the route does not run). A promise
     * that never settles is a request the server never answers.
     */
    request?: (req: FakeRequest) => FakeResponse | Promise<FakeResponse> | undefined;
    /** Runs before every push: return other bytes to push instead, or null to skip this push (it stays queued). */
    push?: (envelope: Envelope, bytes: Uint8Array) => Uint8Array | null | undefined;
  } = {};
  /** Requests seen, in order (verb and path). */
  readonly log: Array<{ verb: string; path: string; via: 'http' | 'ws'; status: number }> = [];
  /** When false, WebSocket connections fail (as when the server is down); HTTP too. */
  online = true;
  readonly #accounts = new Map<string, Account>();
  readonly #byNumber = new Map<string, Account>();
  readonly #idempotency = new Map<string, number>();
  now: () => number = Date.now;

  /** The `fetch` to inject. */
  readonly fetch: FetchLike = async (input, init) => {
    if (!this.online) throw new TypeError('fetch failed');
    const url = new URL(input);
    const auth = init.headers.authorization;
    let login: string | undefined;
    if (auth?.startsWith('Basic ')) {
      const [user, password] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      login = this.#authenticate(user ?? '', password ?? '') ? user : '!';
    }
    const res = await this.#handle({ verb: init.method, path: url.pathname, body: init.body ?? new Uint8Array(0), login, via: 'http' });
    const headers = new Map<string, string>();
    if (res.code) headers.set('x-parley-error', res.code);
    if (res.retryAfterMs) headers.set('retry-after', String(Math.ceil(res.retryAfterMs / 1000)));
    const body = res.body ?? new Uint8Array(0);
    return { status: res.status, headers: { get: (n: string) => headers.get(n.toLowerCase()) ?? null }, arrayBuffer: async () => body.slice().buffer };
  };

  /** The WebSocket constructor to inject. */
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const fake = this;
    this.WebSocket = class extends FakeClientSocket {
      constructor(url: string) {
        super(fake, url);
      }
    };
  }

  // ---- test helpers ----------------------------------------------------------------------------------

  /** The stored queue of a device. */
  queue(accountId: string, deviceId = 1): Envelope[] {
    return this.#accounts.get(accountId)?.devices.get(deviceId)?.queue ?? [];
  }

  /** How many one-time keys a device has left. */
  keyCounts(accountId: string, deviceId = 1): { preKeys: number; kyberPreKeys: number; signedPreKeyId: number | undefined; lastResortId: number | undefined } {
    const d = this.#accounts.get(accountId)?.devices.get(deviceId);
    return { preKeys: d?.preKeys.length ?? 0, kyberPreKeys: d?.kyberPreKeys.length ?? 0, signedPreKeyId: d?.signedPreKey?.id, lastResortId: d?.lastResort?.id };
  }

  /** Adds a stored envelope to a device's queue (and pushes it if connected), as if someone sent it. */
  inject(
    accountId: string,
    deviceId: number,
    envelope: { type: number; sourceAccountId: string; sourceDeviceId: number; timestamp: bigint; content: Uint8Array; ephemeral?: boolean; guid?: Uint8Array },
  ): void {
    const d = this.#device(accountId, deviceId);
    const e = create(EnvelopeSchema, { guid: new Uint8Array(randomBytes(16)), destinationDeviceId: deviceId, serverTimestamp: BigInt(this.now()), ...envelope });
    d.queue.push(e);
    for (const s of d.sockets) this.#push(s, e);
  }

  /** Closes every connection (as a server restart would). */
  disconnectAll(code = 1001): void {
    for (const a of this.#accounts.values()) for (const d of a.devices.values()) for (const s of [...d.sockets]) this.dropSocket(s.client, code);
  }

  /** How many sockets a device has open. */
  connections(accountId: string, deviceId = 1): number {
    return this.#accounts.get(accountId)?.devices.get(deviceId)?.sockets.size ?? 0;
  }

  /**
   * Adds a device to an account with the first device's signed and last-resort keys (the same identity signs
   * them, so senders can start sessions with it; nobody decrypts what it receives).
   */
  addDevice(accountId: string, deviceId: number, registrationId = 4242): void {
    const account = this.#accounts.get(accountId) as Account;
    const first = account.devices.get(1) as Device;
    account.devices.set(deviceId, {
      ...first,
      id: deviceId,
      registrationId,
      password: randomBytes(24).toString('base64url'),
      preKeys: [],
      kyberPreKeys: [],
      queue: [],
      sockets: new Set(),
    });
  }

  /** Removes a device of an account. */
  removeDevice(accountId: string, deviceId: number): void {
    this.#accounts.get(accountId)?.devices.delete(deviceId);
  }

  /** Changes a device's registration id (as if it re-registered), so senders get 410. */
  setRegistrationId(accountId: string, deviceId: number, registrationId: number): void {
    this.#device(accountId, deviceId).registrationId = registrationId;
  }

  /** How many requests matched `path`. */
  requests(path: RegExp): number {
    return this.log.filter((l) => path.test(l.path)).length;
  }

  // ---- sockets -----------------------------------------------------------------------------------------

  accept(client: FakeClientSocket): void {
    if (client.readyState !== 0) return;
    const url = new URL(client.url);
    const login = url.searchParams.get('login') ?? '';
    const password = url.searchParams.get('password') ?? '';
    if (!this.online || url.pathname !== '/v1/websocket' || !this.#authenticate(login, password)) {
      client.readyState = 3;
      client.onerror?.({});
      client.onclose?.({ code: 1006, reason: '' });
      return;
    }
    const [accountId, deviceId] = login.split('.');
    const account = this.#accounts.get(accountId ?? '') as Account;
    const device = account.devices.get(Number(deviceId)) as Device;
    const socket = new FakeSocket(client, account, device);
    client.server = socket;
    device.sockets.add(socket);
    client.readyState = 1;
    client.onopen?.({});
    for (const e of device.queue) this.#push(socket, e);
    const id = socket.nextId++;
    socket.pending.set(id, 'empty');
    client.deliver(enc(FrameSchema, { kind: { case: 'request', value: { id, verb: 'PUT', path: '/v1/queue/empty' } } }));
  }

  dropSocket(client: FakeClientSocket, code: number): void {
    if (client.readyState === 3) return;
    client.readyState = 3;
    if (client.server) client.server.device.sockets.delete(client.server);
    setImmediate(() => client.onclose?.({ code, reason: '' }));
  }

  onClientFrame(client: FakeClientSocket, bytes: Uint8Array): void {
    const socket = client.server;
    if (!socket || client.readyState !== 1) return;
    let frame;
    try {
      frame = dec(FrameSchema, bytes);
    } catch {
      this.dropSocket(client, 1002);
      return;
    }
    if (frame.kind.case === 'response') {
      const r = frame.kind.value;
      const what = socket.pending.get(r.id);
      socket.pending.delete(r.id);
      if (what && what !== 'empty' && r.status === 200) {
        socket.device.queue = socket.device.queue.filter((e) => hex(e.guid) !== what);
      }
      return;
    }
    if (frame.kind.case === 'request') {
      const req = frame.kind.value;
      void this.#handle({ verb: req.verb, path: req.path, body: req.body, login: `${socket.account.id}.${socket.device.id}`, via: 'ws' }).then((res) => {
        client.deliver(
          enc(FrameSchema, {
            kind: {
              case: 'response',
              value: { id: req.id, status: res.status, code: res.code ?? '', body: res.body ?? new Uint8Array(0), retryAfterMs: res.retryAfterMs ?? 0 },
            },
          }),
        );
      });
    }
  }

  #push(socket: FakeSocket, e: Envelope): void {
    let bytes: Uint8Array = toBinary(EnvelopeSchema, e);
    const hooked = this.hooks.push?.(e, bytes);
    if (hooked === null) return;
    if (hooked) bytes = hooked;
    const id = socket.nextId++;
    socket.pending.set(id, hex(e.guid));
    socket.client.deliver(enc(FrameSchema, { kind: { case: 'request', value: { id, verb: 'PUT', path: '/v1/queue/message', body: bytes } } }));
  }

  // ---- routes ------------------------------------------------------------------------------------------

  #authenticate(login: string, password: string): boolean {
    const [accountId, deviceId] = login.split('.');
    const device = this.#accounts.get(accountId ?? '')?.devices.get(Number(deviceId));
    return device !== undefined && device.password === password;
  }

  #device(accountId: string, deviceId: number): Device {
    const d = this.#accounts.get(accountId)?.devices.get(deviceId);
    if (!d) throw new Error(`no device ${accountId}.${deviceId}`);
    return d;
  }

  async #handle(req: FakeRequest): Promise<FakeResponse> {
    const res = (await this.hooks.request?.(req)) ?? this.#route(req);
    this.log.push({ verb: req.verb, path: req.path, via: req.via, status: res.status });
    return res;
  }

  /** The route's answer to `req`, without hooks (for a hook that wants the normal effect and then more). */
  route(req: FakeRequest): FakeResponse {
    return this.#route(req);
  }

  #route(req: FakeRequest): FakeResponse {
    const { verb, path } = req;
    if (verb === 'POST' && path === '/v1/verification/request') {
      dec(VerificationCodeRequestSchema, req.body);
      return ok(enc(VerificationCodeResponseSchema, { expiresInSeconds: 600 }));
    }
    if (verb === 'POST' && path === '/v1/accounts/register') return this.#register(dec(RegisterRequestSchema, req.body));
    if (req.login === undefined || req.login === '!') return err(401, 'SERVER_UNAUTHORIZED');
    const [accountId, deviceText] = req.login.split('.');
    const account = this.#accounts.get(accountId ?? '') as Account;
    const device = account.devices.get(Number(deviceText)) as Device;
    let m: RegExpExecArray | null;
    if (verb === 'GET' && path === '/v1/accounts/whoami') {
      return ok(enc(WhoAmIResponseSchema, { accountId: account.id, deviceId: device.id, number: account.number }));
    }
    if (verb === 'GET' && (m = /^\/v1\/accounts\/lookup\/(.+)$/.exec(path))) {
      const found = this.#byNumber.get(decodeURIComponent(m[1] as string));
      return found ? ok(enc(LookupResponseSchema, { accountId: found.id })) : err(404, 'SERVER_NOT_FOUND');
    }
    if (verb === 'PUT' && path === '/v1/keys') {
      const k = dec(SetKeysRequestSchema, req.body);
      device.preKeys.push(...k.preKeys);
      device.kyberPreKeys.push(...k.kyberPreKeys);
      if (k.signedPreKey) {
        device.signedPreKey = k.signedPreKey;
        device.signedUploadedAt = this.now();
      }
      if (k.kyberLastResortPreKey) device.lastResort = k.kyberLastResortPreKey;
      return ok();
    }
    if (verb === 'GET' && path === '/v1/keys/status') {
      return ok(enc(KeyStatusResponseSchema, { preKeyCount: device.preKeys.length, kyberPreKeyCount: device.kyberPreKeys.length, signedPreKeyUploadedAt: BigInt(device.signedUploadedAt) }));
    }
    if (verb === 'GET' && (m = /^\/v1\/keys\/([^/]+)\/([^/]+)$/.exec(path))) {
      const target = this.#accounts.get(m[1] as string);
      if (!target) return err(404, 'SERVER_NOT_FOUND');
      const ids = m[2] === '*' ? [...target.devices.keys()] : [Number(m[2])];
      const devices = [];
      for (const id of ids) {
        const d = target.devices.get(id);
        if (!d) return err(404, 'SERVER_NOT_FOUND');
        devices.push({
          deviceId: d.id,
          registrationId: d.registrationId,
          signedPreKey: d.signedPreKey,
          preKey: d.preKeys.shift(),
          kyberPreKey: d.kyberPreKeys.shift() ?? d.lastResort,
        });
      }
      return ok(enc(PreKeyResponseSchema, { identityKey: target.identityKey, devices }));
    }
    if (verb === 'PUT' && (m = /^\/v1\/messages\/([^/]+)$/.exec(path))) return this.#send(account, device, m[1] as string, req.body);
    return err(404, 'SERVER_UNKNOWN_PATH');
  }

  #register(r: ReturnType<typeof dec<typeof RegisterRequestSchema>>): FakeResponse {
    if (r.code !== FAKE_CODE) return err(403, 'SERVER_INVALID_CODE');
    const old = this.#byNumber.get(r.number);
    const password = randomBytes(24).toString('base64url');
    const device: Device = {
      id: 1,
      registrationId: r.registrationId,
      password,
      signedPreKey: r.signedPreKey,
      lastResort: r.kyberLastResortPreKey,
      signedUploadedAt: this.now(),
      preKeys: [],
      kyberPreKeys: [],
      queue: [],
      sockets: new Set(),
    };
    if (old) {
      for (const d of old.devices.values()) for (const s of [...d.sockets]) this.dropSocket(s.client, 4003);
      old.identityKey = r.identityKey;
      old.devices = new Map([[1, device]]);
      return ok(enc(RegisterResponseSchema, { accountId: old.id, deviceId: 1, password, reregistered: true }));
    }
    const account: Account = { id: randomUUID(), number: r.number, identityKey: r.identityKey, devices: new Map([[1, device]]) };
    this.#accounts.set(account.id, account);
    this.#byNumber.set(r.number, account);
    return ok(enc(RegisterResponseSchema, { accountId: account.id, deviceId: 1, password, reregistered: false }));
  }

  #send(sender: Account, senderDevice: Device, destinationId: string, body: Uint8Array): FakeResponse {
    const req = dec(SendMessageRequestSchema, body);
    const target = this.#accounts.get(destinationId);
    if (!target) return err(404, 'SERVER_NOT_FOUND');
    const devices = new Map(target.devices);
    if (target === sender) devices.delete(senderDevice.id);
    const addressed = new Set(req.messages.map((m) => m.destinationDeviceId));
    const missing = [...devices.keys()].filter((d) => !addressed.has(d));
    const extra = [...addressed].filter((d) => !devices.has(d));
    if (missing.length > 0 || extra.length > 0) {
      return err(409, 'SERVER_MISMATCHED_DEVICES', enc(MismatchedDevicesSchema, { missingDevices: missing, extraDevices: extra }));
    }
    const stale = req.messages.filter((m) => m.destinationRegistrationId > 0 && devices.get(m.destinationDeviceId)?.registrationId !== m.destinationRegistrationId);
    if (stale.length > 0) return err(410, 'SERVER_STALE_DEVICES', enc(StaleDevicesSchema, { staleDevices: stale.map((m) => m.destinationDeviceId) }));
    const key = req.idempotencyKey.length > 0 ? `${sender.id}.${senderDevice.id}:${hex(req.idempotencyKey)}` : undefined;
    if (key !== undefined && this.#idempotency.has(key)) return ok(enc(SendMessageResponseSchema, { stored: this.#idempotency.get(key) as number }));
    let stored = 0;
    for (const m of req.messages) {
      const d = devices.get(m.destinationDeviceId) as Device;
      const e = create(EnvelopeSchema, {
        guid: randomBytes(16),
        type: m.type,
        sourceAccountId: sender.id,
        sourceDeviceId: senderDevice.id,
        destinationDeviceId: d.id,
        timestamp: req.timestamp,
        serverTimestamp: BigInt(this.now()),
        content: m.content,
        ephemeral: req.ephemeral,
      });
      if (req.ephemeral) {
        for (const s of d.sockets) this.#push(s, e);
        continue;
      }
      d.queue.push(e);
      stored++;
      for (const s of d.sockets) this.#push(s, e);
    }
    if (key !== undefined) this.#idempotency.set(key, stored);
    return ok(enc(SendMessageResponseSchema, { stored }));
  }
}
