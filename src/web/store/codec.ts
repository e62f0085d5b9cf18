/**
 * The bytes of a record, for sealing (see ./sealer.ts): JSON that keeps what JSON alone loses, namely bytes
 * (`Uint8Array`, as base64) and properties whose value is `undefined` (the SDK's records keep optional
 * fields present, and the contract compares them strictly).
 *
 * Tagged values are one-key objects: `{"$b": "<base64>"}` and `{"$u": 1}`. A plain object that happens to
 * have exactly one key named like a tag is escaped as `{"$o": {...}}`, so every record round-trips.
 * Only plain data is accepted (what the store interfaces hold): anything else is a `TypeError`, so a bad
 * record fails the write and leaves stored data as it was.
 */
import { base64Decode, base64Encode } from '@bufbuild/protobuf/wire';

const BYTES = '$b';
const UNDEFINED = '$u';
const OBJECT = '$o';

/** Whether `value` is a plain object (an object literal or `Object.create(null)`). */
function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The JSON text of `value`, built directly as a string (no tagged copy of the record is made first: the
 * store encodes every record it writes).
 */
function encode(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return `{"${UNDEFINED}":1}`;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('a record holds a number JSON cannot encode');
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (value instanceof Uint8Array) return `{"${BYTES}":"${base64Encode(value)}"}`;
      if (Array.isArray(value)) return `[${value.map(encode).join(',')}]`;
      if (isPlainObject(value)) {
        const keys = Object.keys(value);
        const body = `{${keys.map((k) => `${JSON.stringify(k)}:${encode((value as Record<string, unknown>)[k])}`).join(',')}}`;
        return keys.length === 1 && (keys[0] === BYTES || keys[0] === UNDEFINED || keys[0] === OBJECT) ? `{"${OBJECT}":${body}}` : body;
      }
      throw new TypeError('a record holds a non-plain object, which the browser store does not keep');
    }
    default:
      throw new TypeError(`a record holds a ${typeof value}, which the browser store does not keep`);
  }
}

function decode(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(decode);
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const v = o[keys[0] as string];
    switch (keys[0]) {
      case BYTES:
        if (typeof v !== 'string') throw new TypeError('bad bytes value');
        return base64Decode(v);
      case UNDEFINED:
        return undefined;
      case OBJECT:
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError('bad escaped object');
        return decodeObject(v as Record<string, unknown>);
    }
  }
  return decodeObject(o);
}

function decodeObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = decode(v);
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The UTF-8 JSON of a record (bytes as base64, `undefined` properties kept). Throws `TypeError` on non-plain data. */
export function encodeValue(value: unknown): Uint8Array<ArrayBuffer> {
  return encoder.encode(encode(value));
}

/** The record of {@link encodeValue}'s bytes (throws on bytes that are not such JSON). */
export function decodeValue(bytes: Uint8Array): unknown {
  return decode(JSON.parse(decoder.decode(bytes)));
}
