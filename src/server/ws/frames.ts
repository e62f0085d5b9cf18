/**
 * Hand-written encoders for the frames the server sends most: responses, and pushes of envelopes. Each
 * builds the whole WebSocket message in one allocation, copying the envelope content once (protobuf-es
 * builds each nested message separately, which showed up as a tenth of the relay's CPU and most of its
 * garbage). Field numbers follow transport.proto and service.proto; a unit test checks every encoder
 * against protobuf-es. Decoding of client frames stays with protobuf-es, the validating parser.
 */

/** Wire type 0 (varint) and 2 (length-delimited) tags. */
const tag = (field: number, wireType: 0 | 2): number => (field << 3) | wireType;

/** Bytes of `n` as a varint: numbers (safe integers, e.g. millisecond timestamps) or bigints (ids). */
function varintSize(n: number | bigint): number {
  let size = 1;
  if (typeof n === 'number') {
    while (n > 0x7f) {
      n = Math.floor(n / 128);
      size++;
    }
    return size;
  }
  while (n > 0x7fn) {
    n >>= 7n;
    size++;
  }
  return size;
}

const uintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : varintSize(n));

/** A cursor over a preallocated buffer. */
class Writer {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number | bigint): void {
    if (typeof n === 'number') {
      while (n > 0x7f) {
        this.buf[this.pos++] = (n % 128) | 0x80;
        n = Math.floor(n / 128);
      }
      this.buf[this.pos++] = n;
      return;
    }
    while (n > 0x7fn) {
      this.buf[this.pos++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
  }

  bytes(field: number, value: Uint8Array): void {
    if (value.length === 0) return;
    this.buf[this.pos++] = tag(field, 2);
    this.varint(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  uint(field: number, value: number | bigint): void {
    if (value === 0 || value === 0n) return;
    this.buf[this.pos++] = tag(field, 0);
    this.varint(value);
  }

  header(field: number, length: number): void {
    this.buf[this.pos++] = tag(field, 2);
    this.varint(length);
  }
}

const bytesFieldSize = (value: Uint8Array): number => (value.length === 0 ? 0 : 1 + uintSize(value.length) + value.length);
const uintFieldSize = (value: number | bigint): number => (value === 0 || value === 0n ? 0 : 1 + varintSize(value));
const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** A `Response` to send. */
export interface ResponseFields {
  readonly id: bigint;
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly body: Uint8Array;
  readonly retryAfterMs: number;
}

/** `Frame { response = 2 { id = 1, status = 2, code = 3, message = 4, body = 5, retry_after_ms = 6 } }`. */
export function encodeResponseFrame(r: ResponseFields): Buffer {
  const code = utf8(r.code);
  const message = utf8(r.message);
  const inner = uintFieldSize(r.id) + uintFieldSize(r.status) + bytesFieldSize(code) + bytesFieldSize(message) + bytesFieldSize(r.body) + uintFieldSize(r.retryAfterMs);
  const w = new Writer(1 + uintSize(inner) + inner);
  w.header(2, inner);
  w.uint(1, r.id);
  w.uint(2, r.status);
  w.bytes(3, code);
  w.bytes(4, message);
  w.bytes(5, r.body);
  w.uint(6, r.retryAfterMs);
  return w.buf;
}

/** `Frame { request = 1 { id = 1, verb = 2, path = 3, body = 4 } }`. */
export function encodeRequestFrame(id: number, verb: string, path: string, body: Uint8Array): Buffer {
  const v = utf8(verb);
  const p = utf8(path);
  const inner = uintFieldSize(id) + bytesFieldSize(v) + bytesFieldSize(p) + bytesFieldSize(body);
  const w = new Writer(1 + uintSize(inner) + inner);
  w.header(1, inner);
  w.uint(1, id);
  w.bytes(2, v);
  w.bytes(3, p);
  w.bytes(4, body);
  return w.buf;
}

/** An envelope to push. */
export interface EnvelopeFields {
  readonly guid: Uint8Array;
  readonly type: number;
  readonly sourceAccountId: string;
  readonly sourceDeviceId: number;
  readonly destinationDeviceId: number;
  readonly timestamp: number;
  readonly serverTimestamp: number;
  readonly content: Uint8Array;
  readonly ephemeral: boolean;
  /** The group of a group envelope, or ''. */
  readonly groupId: string;
}

const QUEUE_MESSAGE_PATH = utf8('/v1/queue/message');
const PUT = utf8('PUT');

/**
 * `Frame { request = 1 { id, verb "PUT", path "/v1/queue/message", body = Envelope { guid = 1, type = 2,
 * source_account_id = 3, source_device_id = 4, destination_device_id = 5, timestamp = 6,
 * server_timestamp = 7, content = 8, ephemeral = 9, group_id = 10 } } }`, built in one buffer.
 */
export function encodePushFrame(id: number, e: EnvelopeFields): Buffer {
  const source = utf8(e.sourceAccountId);
  const group = utf8(e.groupId);
  const envelope =
    bytesFieldSize(e.guid) +
    uintFieldSize(e.type) +
    bytesFieldSize(source) +
    uintFieldSize(e.sourceDeviceId) +
    uintFieldSize(e.destinationDeviceId) +
    uintFieldSize(e.timestamp) +
    uintFieldSize(e.serverTimestamp) +
    bytesFieldSize(e.content) +
    (e.ephemeral ? 2 : 0) +
    bytesFieldSize(group);
  const envelopeField = envelope === 0 ? 0 : 1 + uintSize(envelope) + envelope;
  const inner = uintFieldSize(id) + bytesFieldSize(PUT) + bytesFieldSize(QUEUE_MESSAGE_PATH) + envelopeField;
  const w = new Writer(1 + uintSize(inner) + inner);
  w.header(1, inner);
  w.uint(1, id);
  w.bytes(2, PUT);
  w.bytes(3, QUEUE_MESSAGE_PATH);
  if (envelope > 0) {
    w.header(4, envelope);
    w.bytes(1, e.guid);
    w.uint(2, e.type);
    w.bytes(3, source);
    w.uint(4, e.sourceDeviceId);
    w.uint(5, e.destinationDeviceId);
    w.uint(6, e.timestamp);
    w.uint(7, e.serverTimestamp);
    w.bytes(8, e.content);
    if (e.ephemeral) w.uint(9, 1);
    w.bytes(10, group);
  }
  return w.buf;
}
