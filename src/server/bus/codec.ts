/**
 * The wire form of {@link DeviceEvent}s on the NATS bus: a small binary codec (one allocation to encode,
 * bounds-checked reads to decode). Messages come from other nodes, so decoding validates everything and
 * throws {@link BusCodecError} on anything malformed; the bus logs and drops such a message.
 *
 * Layout (integers big-endian; "num" is a float64 holding a non-negative safe integer):
 *
 *   u8 version (1) | u8 kind
 *   kind 1 stored, 2 ephemeral: envelope, then for stored: num seq
 *     envelope = num ref | u8 guidLength, guid | u32 type | 16 bytes source account (UUID)
 *              | u32 source device | u32 destination device | num timestamp | num serverTimestamp
 *              | u8 hasGroup (0/1) [, 16 bytes group id] | u32 contentLength, content
 *   kind 3 removed: nothing
 *   kind 4 connected: num connectedAt | u8 idLength, UTF-8 connection id
 *   kind 5 resync: nothing
 *
 * The device is the subject's (`<prefix>.dev.<ref>`); an envelope naming another device is refused.
 */
import { MAX_DEVICE_ID, type AccountId, type DeviceId, type DeviceRef, type GroupId } from '../ids.js';
import type { NewEnvelope, StoredEnvelope } from '../storage/stores.js';
import type { DeviceEvent } from './bus.js';

/** The codec version written in every message's first byte. */
export const BUS_CODEC_VERSION = 1;
/** The largest envelope content accepted (the server's own limit is 256 KiB; leave room). */
export const MAX_BUS_CONTENT_BYTES = 1024 * 1024;

const KIND = { stored: 1, ephemeral: 2, removed: 3, connected: 4, resync: 5 } as const;
const ENVELOPE_FIXED = 8 + 1 + 4 + 16 + 4 + 4 + 8 + 8 + 1 + 4;

/** A bus message that could not be decoded (or an event that cannot be encoded). */
export class BusCodecError extends Error {
  override readonly name = 'BusCodecError';
}

const TEXT_ENCODER = new TextEncoder();
const TEXT_DECODER = new TextDecoder('utf-8', { fatal: true });

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The value of a lowercase hex digit's char code, or -1. */
function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

/** 32 lowercase hex digits (with dashes at the UUID positions when `dashed`) as 16 bytes. */
function hexBytes16(value: string, dashed: boolean, what: string): Uint8Array {
  if (value.length !== (dashed ? 36 : 32)) throw new BusCodecError(`${what} has the wrong length`);
  const out = new Uint8Array(16);
  let j = 0;
  for (let i = 0; i < value.length; i += 2) {
    if (dashed && (i === 8 || i === 13 || i === 18 || i === 23)) {
      if (value.charCodeAt(i) !== 45) throw new BusCodecError(`${what} is malformed`);
      i -= 1;
      continue;
    }
    const hi = hexValue(value.charCodeAt(i));
    const lo = hexValue(value.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) throw new BusCodecError(`${what} is not lowercase hex`);
    out[j++] = hi * 16 + lo;
  }
  return out;
}

function hexOf(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX[b] as string;
  return out;
}

function uuidString(bytes: Uint8Array): string {
  const h = hexOf(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

class Writer {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
  }

  u8(n: number): void {
    this.#view.setUint8(this.#pos, n);
    this.#pos += 1;
  }

  u32(n: number): void {
    this.#view.setUint32(this.#pos, n);
    this.#pos += 4;
  }

  num(n: number): void {
    this.#view.setFloat64(this.#pos, n);
    this.#pos += 8;
  }

  raw(b: Uint8Array): void {
    this.bytes.set(b, this.#pos);
    this.#pos += b.length;
  }

  get done(): boolean {
    return this.#pos === this.bytes.length;
  }
}

class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(n: number): void {
    if (this.#pos + n > this.#bytes.length) throw new BusCodecError('truncated message');
  }

  u8(): number {
    this.#need(1);
    return this.#view.getUint8(this.#pos++);
  }

  u32(): number {
    this.#need(4);
    const n = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return n;
  }

  num(what: string): number {
    this.#need(8);
    const n = this.#view.getFloat64(this.#pos);
    this.#pos += 8;
    if (!Number.isSafeInteger(n) || n < 0) throw new BusCodecError(`${what} is not a non-negative integer`);
    return n;
  }

  raw(n: number): Uint8Array {
    this.#need(n);
    // A copy: the message buffer belongs to the NATS client and may be reused.
    const out = this.#bytes.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  end(): void {
    if (this.#pos !== this.#bytes.length) throw new BusCodecError('trailing bytes');
  }
}

function checkNum(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new BusCodecError(`${what} is not a non-negative integer`);
}

function checkDeviceId(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_DEVICE_ID) throw new BusCodecError(`${what} is out of range`);
}

function writeEnvelope(w: Writer, e: NewEnvelope, source: Uint8Array, group: Uint8Array | undefined): void {
  w.num(e.ref);
  w.u8(e.guid.length);
  w.raw(e.guid);
  w.u32(e.type);
  w.raw(source);
  w.u32(e.sourceDeviceId);
  w.u32(e.destinationDeviceId);
  w.num(e.timestamp);
  w.num(e.serverTimestamp);
  w.u8(group === undefined ? 0 : 1);
  if (group !== undefined) w.raw(group);
  w.u32(e.content.length);
  w.raw(e.content);
}

function encodeEnvelopeEvent(kind: 'stored' | 'ephemeral', e: NewEnvelope, seq: number | undefined): Uint8Array {
  checkNum(e.ref, 'ref');
  checkNum(e.timestamp, 'timestamp');
  checkNum(e.serverTimestamp, 'serverTimestamp');
  checkDeviceId(e.sourceDeviceId, 'source device');
  checkDeviceId(e.destinationDeviceId, 'destination device');
  if (!Number.isInteger(e.type) || e.type < 0 || e.type > 0xffff_ffff) throw new BusCodecError('type is out of range');
  if (e.guid.length > 255) throw new BusCodecError('guid longer than 255 bytes');
  if (e.content.length > MAX_BUS_CONTENT_BYTES) throw new BusCodecError('content too large for the bus');
  if (seq !== undefined) checkNum(seq, 'seq');
  const source = hexBytes16(e.sourceAccountId, true, 'source account');
  const group = e.groupId === undefined ? undefined : hexBytes16(e.groupId, false, 'group id');
  const w = new Writer(2 + ENVELOPE_FIXED + e.guid.length + (group === undefined ? 0 : 16) + e.content.length + (seq === undefined ? 0 : 8));
  w.u8(BUS_CODEC_VERSION);
  w.u8(KIND[kind]);
  writeEnvelope(w, e, source, group);
  if (seq !== undefined) w.num(seq);
  return w.bytes;
}

/** Encodes an event. Throws {@link BusCodecError} for an event that cannot be represented. */
export function encodeDeviceEvent(event: DeviceEvent): Uint8Array {
  switch (event.kind) {
    case 'stored':
      return encodeEnvelopeEvent('stored', event.envelope, event.envelope.seq);
    case 'ephemeral':
      return encodeEnvelopeEvent('ephemeral', event.envelope, undefined);
    case 'removed':
    case 'resync':
      return Uint8Array.of(BUS_CODEC_VERSION, KIND[event.kind]);
    case 'connected': {
      checkNum(event.connectedAt, 'connectedAt');
      const id = TEXT_ENCODER.encode(event.connectionId);
      if (id.length === 0 || id.length > 255) throw new BusCodecError('connection id must be 1 to 255 bytes');
      const w = new Writer(2 + 8 + 1 + id.length);
      w.u8(BUS_CODEC_VERSION);
      w.u8(KIND.connected);
      w.num(event.connectedAt);
      w.u8(id.length);
      w.raw(id);
      return w.bytes;
    }
  }
}

function readEnvelope(r: Reader, ref: DeviceRef): NewEnvelope {
  const envelopeRef = r.num('ref');
  if (envelopeRef !== ref) throw new BusCodecError('envelope addressed to another device than its subject');
  const guid = r.raw(r.u8());
  const type = r.u32();
  const sourceAccountId = uuidString(r.raw(16)) as AccountId;
  const sourceDeviceId = r.u32();
  checkDeviceId(sourceDeviceId, 'source device');
  const destinationDeviceId = r.u32();
  checkDeviceId(destinationDeviceId, 'destination device');
  const timestamp = r.num('timestamp');
  const serverTimestamp = r.num('serverTimestamp');
  const hasGroup = r.u8();
  if (hasGroup > 1) throw new BusCodecError('bad group flag');
  const groupId = hasGroup === 1 ? (hexOf(r.raw(16)) as GroupId) : undefined;
  const contentLength = r.u32();
  if (contentLength > MAX_BUS_CONTENT_BYTES) throw new BusCodecError('content too large');
  const content = r.raw(contentLength);
  return {
    ref,
    guid,
    type,
    sourceAccountId,
    sourceDeviceId: sourceDeviceId as DeviceId,
    destinationDeviceId: destinationDeviceId as DeviceId,
    timestamp,
    serverTimestamp,
    content,
    ...(groupId === undefined ? {} : { groupId }),
  };
}

/**
 * Decodes a message received on device `ref`'s subject. Throws {@link BusCodecError} when it is
 * malformed: unknown version or kind, truncated, trailing bytes, out-of-range numbers, another device.
 */
export function decodeDeviceEvent(bytes: Uint8Array, ref: DeviceRef): DeviceEvent {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== BUS_CODEC_VERSION) throw new BusCodecError(`unknown codec version ${version}`);
  const kind = r.u8();
  let event: DeviceEvent;
  switch (kind) {
    case KIND.stored: {
      const envelope = readEnvelope(r, ref);
      const stored: StoredEnvelope = { ...envelope, seq: r.num('seq') };
      event = { kind: 'stored', envelope: stored };
      break;
    }
    case KIND.ephemeral:
      event = { kind: 'ephemeral', envelope: readEnvelope(r, ref) };
      break;
    case KIND.removed:
      event = { kind: 'removed' };
      break;
    case KIND.resync:
      event = { kind: 'resync' };
      break;
    case KIND.connected: {
      const connectedAt = r.num('connectedAt');
      const length = r.u8();
      if (length === 0) throw new BusCodecError('empty connection id');
      let connectionId: string;
      try {
        connectionId = TEXT_DECODER.decode(r.raw(length));
      } catch {
        throw new BusCodecError('connection id is not UTF-8');
      }
      event = { kind: 'connected', connectionId, connectedAt };
      break;
    }
    default:
      throw new BusCodecError(`unknown event kind ${kind}`);
  }
  r.end();
  return event;
}
