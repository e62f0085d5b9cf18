// A lean client of the Parley WebSocket protocol for the relay benchmark: request frames are encoded by
// hand (the generator shares the machine with the server, so its own cost matters), responses and pushes
// are decoded with protobuf-es. Pushes are acked at once.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import WebSocket from 'ws';
import { EnvelopeSchema, OutgoingMessageSchema, SendMessageRequestSchema } from '../src/protocol/gen/service_pb.ts';
import { FrameSchema, ResponseSchema } from '../src/protocol/gen/transport_pb.ts';
import type { BenchCredentials } from './relay-server.ts';

function varint(n: number, out: number[]): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

function field(tag: number, bytes: Uint8Array, out: number[]): void {
  out.push(tag);
  varint(bytes.length, out);
  for (const b of bytes) out.push(b);
}

const VERB_PUT = new TextEncoder().encode('PUT');

/** Frame{request{id, verb, path, body}} as bytes. */
export function requestFrame(id: number, path: Uint8Array, body: Uint8Array): Buffer {
  const request: number[] = [0x08];
  varint(id, request);
  field(0x12, VERB_PUT, request);
  field(0x1a, path, request);
  const head = Buffer.from(request);
  const bodyHeader: number[] = [0x22];
  varint(body.length, bodyHeader);
  const requestLength = head.length + bodyHeader.length + body.length;
  const frameHeader: number[] = [0x0a];
  varint(requestLength, frameHeader);
  return Buffer.concat([Buffer.from(frameHeader), head, Buffer.from(bodyHeader), body]);
}

/** A send body to `to` with `size` content bytes; `stamp(body, t)` writes a float64 time into the content. */
export function sendTemplate(to: BenchCredentials, size: number): { path: Uint8Array; body: Uint8Array; stampAt: number } {
  const content = new Uint8Array(size);
  for (let i = 0; i < size; i++) content[i] = (i * 131 + 7) & 0xff;
  const marker = Buffer.from('PARLEYBENCHMARK!');
  content.set(marker, 8);
  const body = toBinary(
    SendMessageRequestSchema,
    create(SendMessageRequestSchema, {
      messages: [create(OutgoingMessageSchema, { destinationDeviceId: 1, destinationRegistrationId: to.registrationId, type: 2, content })],
      timestamp: BigInt(Date.now()),
    }),
  );
  const stampAt = Buffer.from(body).indexOf(marker) - 8;
  return { path: new TextEncoder().encode(`/v1/messages/${to.accountId}`), body, stampAt };
}

/** One simulated device on one socket. */
export class BenchDevice {
  readonly ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, (status: number) => void>();
  /** Called with each pushed envelope's content (after it is acked). */
  onEnvelope: (content: Uint8Array) => void = () => undefined;
  queueEmpty = false;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => this.#onMessage(data));
    ws.on('error', () => undefined);
  }

  /** Connects; `onEnvelope` is set before the socket opens (pushes can arrive with the upgrade). */
  static connect(wsUrl: string, c: BenchCredentials, onEnvelope?: (content: Uint8Array) => void): Promise<BenchDevice> {
    const ws = new WebSocket(wsUrl, { headers: { authorization: `Basic ${Buffer.from(`${c.login}:${c.password}`).toString('base64')}` }, perMessageDeflate: false });
    const device = new BenchDevice(ws);
    if (onEnvelope !== undefined) device.onEnvelope = onEnvelope;
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(device));
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  #onMessage(data: Buffer): void {
    const frame = fromBinary(FrameSchema, data);
    if (frame.kind.case === 'response') {
      const id = Number(frame.kind.value.id);
      const done = this.#pending.get(id);
      this.#pending.delete(id);
      done?.(frame.kind.value.status);
      return;
    }
    if (frame.kind.case !== 'request') return;
    const request = frame.kind.value;
    this.ws.send(toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'response', value: create(ResponseSchema, { id: request.id, status: 200 }) } })));
    if (request.path === '/v1/queue/empty') this.queueEmpty = true;
    else this.onEnvelope(fromBinary(EnvelopeSchema, request.body).content);
  }

  /** Sends `body` to `path`; resolves with the status. */
  send(path: Uint8Array, body: Uint8Array): Promise<number> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.ws.send(requestFrame(id, path, body));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
