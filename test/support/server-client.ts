// A small client for server tests that speaks the wire protocol directly (protobuf over HTTP, and
// Frame/Request/Response over a `ws` WebSocket). It deliberately does not use src/client: it tests the
// server against docs/api.md, not against the SDK. Every secret it handles is recorded for the log scan.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import {
  EnvelopeSchema,
  OutgoingMessageSchema,
  RegisterRequestSchema,
  RegisterResponseSchema,
  SendMessageRequestSchema,
  VerificationCodeRequestSchema,
  type Envelope,
} from '../../src/protocol/gen/service_pb.ts';
import { FrameSchema, RequestSchema, ResponseSchema, type Response } from '../../src/protocol/gen/transport_pb.ts';
import type { KeyPair } from '../../src/protocol/keys.ts';
import { recordSecret } from './server-harness.ts';
import { kyberPreKey, newIdentity, signedPreKey } from './server-keys.ts';

/** The answer to an HTTP request. */
export interface HttpResult {
  readonly status: number;
  /** X-Parley-Error, or ''. */
  readonly code: string;
  /** Retry-After in seconds, or 0. */
  readonly retryAfter: number;
  readonly body: Uint8Array;
  readonly contentType: string;
}

/** Credentials of a registered device. */
export interface DeviceCredentials {
  readonly login: string;
  readonly password: string;
}

/** Basic authorization header value. */
export function basic(c: DeviceCredentials): string {
  return `Basic ${Buffer.from(`${c.login}:${c.password}`).toString('base64')}`;
}

/** A plain HTTP request. `auth` is credentials or a raw Authorization header value. */
export async function http(baseUrl: string, verb: string, path: string, options: { body?: Uint8Array; auth?: DeviceCredentials | string } = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/x-protobuf' };
  if (options.auth !== undefined) headers.authorization = typeof options.auth === 'string' ? options.auth : basic(options.auth);
  const response = await fetch(`${baseUrl}${path}`, { method: verb, headers, body: verb === 'GET' ? undefined : new Uint8Array(options.body ?? []) });
  return {
    status: response.status,
    code: response.headers.get('x-parley-error') ?? '',
    retryAfter: Number(response.headers.get('retry-after') ?? 0),
    body: new Uint8Array(await response.arrayBuffer()),
    contentType: response.headers.get('content-type') ?? '',
  };
}

/** A registered device, with the key material its registration used. */
export interface TestAccount extends DeviceCredentials {
  readonly accountId: string;
  readonly deviceId: number;
  readonly number: string;
  readonly identity: KeyPair;
  readonly registrationId: number;
  readonly reregistered: boolean;
}

/** Builds a valid RegisterRequest body (fresh keys) for `number` and `code`. */
export async function registerRequest(number: string, code: string, registrationId = 1 + Math.floor(Math.random() * 16000)): Promise<{ body: Uint8Array; identity: KeyPair }> {
  const identity = await newIdentity();
  recordSecret(identity.publicKey.serialized);
  const body = toBinary(
    RegisterRequestSchema,
    create(RegisterRequestSchema, {
      number,
      code,
      registrationId,
      identityKey: identity.publicKey.serialized,
      signedPreKey: await signedPreKey(identity, 1),
      kyberLastResortPreKey: kyberPreKey(identity, 1000),
    }),
  );
  return { body, identity };
}

/** Requests a code for `number` (not needed for test numbers, but harmless). */
export function requestCode(baseUrl: string, number: string): Promise<HttpResult> {
  recordSecret(number);
  return http(baseUrl, 'POST', '/v1/verification/request', { body: toBinary(VerificationCodeRequestSchema, create(VerificationCodeRequestSchema, { number })) });
}

/** Registers `number` with `code`; throws unless the server answers 200. */
export async function register(baseUrl: string, number: string, code: string, registrationId?: number): Promise<TestAccount> {
  recordSecret(number);
  const { body, identity } = await registerRequest(number, code, registrationId);
  const registrationIdUsed = fromBinary(RegisterRequestSchema, body).registrationId;
  const result = await http(baseUrl, 'POST', '/v1/accounts/register', { body });
  if (result.status !== 200) throw new Error(`register failed: ${result.status} ${result.code}`);
  const response = fromBinary(RegisterResponseSchema, result.body);
  recordSecret(response.password);
  return {
    accountId: response.accountId,
    deviceId: response.deviceId,
    login: `${response.accountId}.${response.deviceId}`,
    password: response.password,
    number,
    identity,
    registrationId: registrationIdUsed,
    reregistered: response.reregistered,
  };
}

/** A `SendMessageRequest` body with one envelope per (device, registration id, content). */
export function sendBody(
  messages: ReadonlyArray<{ deviceId: number; registrationId: number; content: Uint8Array; type?: number }>,
  options: { ephemeral?: boolean; idempotencyKey?: Uint8Array; timestamp?: bigint } = {},
): Uint8Array {
  for (const m of messages) recordSecret(m.content);
  return toBinary(
    SendMessageRequestSchema,
    create(SendMessageRequestSchema, {
      messages: messages.map((m) =>
        create(OutgoingMessageSchema, { destinationDeviceId: m.deviceId, destinationRegistrationId: m.registrationId, type: m.type ?? 2, content: m.content }),
      ),
      timestamp: options.timestamp ?? BigInt(Date.now()),
      ephemeral: options.ephemeral ?? false,
      idempotencyKey: options.idempotencyKey ?? new Uint8Array(0),
    }),
  );
}

/** How a test client answers pushes: a status per envelope, or 'hold' to answer later with `ack()`. */
export type AckPolicy = (envelope: Envelope) => number | 'hold';

/** A raw WebSocket client of the Parley protocol. */
export class WsTestClient {
  readonly ws: WebSocket;
  /** Envelopes pushed to this client, in arrival order. */
  readonly received: Envelope[] = [];
  /** How many `PUT /v1/queue/empty` pushes arrived. */
  queueEmptyCount = 0;
  readonly closed: Promise<{ code: number; reason: string }>;
  ackPolicy: AckPolicy;
  readonly #pending = new Map<bigint, { resolve: (r: Response) => void; reject: (err: Error) => void }>();
  readonly #held = new Map<string, bigint>();
  #nextId = 1n;
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket, ackPolicy: AckPolicy) {
    this.ws = ws;
    this.ackPolicy = ackPolicy;
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        // Requests in flight will never be answered.
        for (const pending of this.#pending.values()) pending.reject(new Error(`socket closed (${code})`));
        this.#pending.clear();
        resolve({ code, reason: reason.toString() });
      }),
    );
    ws.on('message', (data: Buffer) => this.#onMessage(data));
    ws.on('error', () => undefined);
  }

  /** Connects with Basic credentials (or query parameters when `viaQuery`). Rejects with the HTTP status on refusal. */
  static connect(wsUrl: string, credentials: DeviceCredentials | undefined, options: { viaQuery?: boolean; ack?: AckPolicy; maxPayload?: number } = {}): Promise<WsTestClient> {
    const url = new URL(wsUrl);
    const headers: Record<string, string> = {};
    if (credentials !== undefined) {
      if (options.viaQuery === true) {
        url.searchParams.set('login', credentials.login);
        url.searchParams.set('password', credentials.password);
      } else {
        headers.authorization = basic(credentials);
      }
    }
    const ws = new WebSocket(url, { headers, maxPayload: options.maxPayload ?? 64 * 1024 * 1024 });
    const client = new WsTestClient(ws, options.ack ?? (() => 200));
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, code: res.headers['x-parley-error'] }));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  #onMessage(data: Buffer): void {
    const frame = fromBinary(FrameSchema, data);
    if (frame.kind.case === 'response') {
      const pending = this.#pending.get(frame.kind.value.id);
      this.#pending.delete(frame.kind.value.id);
      pending?.resolve(frame.kind.value);
    } else if (frame.kind.case === 'request') {
      const request = frame.kind.value;
      if (request.path === '/v1/queue/empty') {
        this.queueEmptyCount++;
        this.#respond(request.id, 200);
      } else if (request.path === '/v1/queue/message') {
        const envelope = fromBinary(EnvelopeSchema, request.body);
        this.received.push(envelope);
        const status = this.ackPolicy(envelope);
        if (status === 'hold') this.#held.set(Buffer.from(envelope.guid).toString('hex'), request.id);
        else this.#respond(request.id, status);
      } else {
        this.#respond(request.id, 404);
      }
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake();
    }
  }

  #respond(id: bigint, status: number): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'response', value: create(ResponseSchema, { id, status }) } })));
  }

  /** Answers a held push. */
  ack(envelope: Envelope, status = 200): void {
    const key = Buffer.from(envelope.guid).toString('hex');
    const id = this.#held.get(key);
    if (id === undefined) throw new Error('no held push for this envelope');
    this.#held.delete(key);
    this.#respond(id, status);
  }

  /** Sends a request frame and waits for its response. */
  request(verb: string, path: string, body: Uint8Array = new Uint8Array(0), timeoutMs = 10_000): Promise<Response> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no response to ${verb} ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.ws.send(toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'request', value: create(RequestSchema, { id, verb, path, body }) } })));
    });
  }

  /** Sends raw bytes (or text) as one WebSocket message. */
  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  /** Waits until `predicate` holds (checked after every push), or fails after `timeoutMs`. */
  async until(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for `count` pushed envelopes in total. */
  waitForEnvelopes(count: number, timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.received.length >= count, timeoutMs, `${count} envelopes (have ${this.received.length})`);
  }

  /** Waits for the first `PUT /v1/queue/empty`. */
  waitForQueueEmpty(timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.queueEmptyCount > 0, timeoutMs, 'queue empty');
  }

  /** Closes and waits for the close handshake. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    await this.closed;
  }
}

/** Decodes a response body. */
export function decodeBody<Desc extends DescMessage>(schema: Desc, body: Uint8Array): MessageShape<Desc> {
  return fromBinary(schema, body);
}

/** Random bytes that stand in for a ciphertext. Recorded as a secret for the log scan. */
export function fakeCiphertext(length: number, marker?: number): Uint8Array {
  const bytes = new Uint8Array(randomBytes(length));
  if (marker !== undefined) new DataView(bytes.buffer).setUint32(0, marker);
  recordSecret(bytes);
  return bytes;
}
