/**
 * A JSON encoding of plain records that keeps what JSON alone loses: bytes (`Uint8Array`, as base64) and
 * properties whose value is `undefined` (a record type's optional-but-present fields). Used for the records
 * the profile database keeps whole (groups, group system messages), so that a field the SDK adds to such a
 * record is stored and read back without a schema change.
 *
 * Tagged values are one-key objects: `{"$bytes": "<base64>"}` and `{"$undefined": true}`. A plain object
 * that happens to have exactly such a key is escaped as `{"$object": {...}}`, so every record round-trips.
 */

const BYTES = '$bytes';
const UNDEFINED = '$undefined';
const OBJECT = '$object';

type Encoded = null | boolean | number | string | Encoded[] | { [key: string]: Encoded };

function encode(value: unknown): Encoded {
  if (value === undefined) return { [UNDEFINED]: true };
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('record holds a number JSON cannot encode');
    return value;
  }
  if (value instanceof Uint8Array) return { [BYTES]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map(encode);
  if (typeof value === 'object') {
    const out: Record<string, Encoded> = {};
    for (const [k, v] of Object.entries(value)) out[k] = encode(v);
    const keys = Object.keys(out);
    return keys.length === 1 && (keys[0] === BYTES || keys[0] === UNDEFINED || keys[0] === OBJECT) ? { [OBJECT]: out } : out;
  }
  throw new TypeError(`record holds a ${typeof value}, which the profile database does not store`);
}

function decode(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(decode);
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const v = o[keys[0] as string];
    if (keys[0] === BYTES) {
      if (typeof v !== 'string') throw new TypeError('bad bytes value');
      return new Uint8Array(Buffer.from(v, 'base64'));
    }
    if (keys[0] === UNDEFINED) return undefined;
    if (keys[0] === OBJECT) {
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

/** The JSON text of a record (bytes as base64, `undefined` properties kept). */
export function encodeRecord(value: unknown): string {
  return JSON.stringify(encode(value));
}

/** The record of {@link encodeRecord}'s text (throws on text that is not such JSON). */
export function decodeRecord<T>(text: string): T {
  return decode(JSON.parse(text)) as T;
}
