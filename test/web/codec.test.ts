// The browser store's record encoding (src/web/store/codec.ts): every plain record round-trips, with bytes,
// undefined properties and objects that look like the encoding's own tags; anything else is a TypeError.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeValue, encodeValue } from '../../src/web/store/codec.ts';

const roundTrip = (v: unknown): unknown => decodeValue(encodeValue(v));

describe('browser store codec', () => {
  it('round-trips plain records: bytes, undefined properties and array items, nesting, text', () => {
    const record = {
      id: 'm1',
      n: -12.5,
      zero: 0,
      big: Number.MAX_SAFE_INTEGER,
      yes: true,
      no: false,
      nothing: null,
      missing: undefined,
      text: 'héllo 👋 "quoted" \\ \n\u0000',
      bytes: Uint8Array.from({ length: 300 }, (_, i) => i & 0xff),
      empty: new Uint8Array(0),
      list: [1, undefined, 'x', [new Uint8Array([9])], { deep: { deeper: undefined } }],
      nested: { a: { b: { c: [] } } },
      'odd key "with" quotes': 1,
    };
    const back = roundTrip(record) as typeof record;
    assert.deepEqual(back, record);
    assert.ok('missing' in back, 'an undefined property stays present');
    assert.ok(back.bytes instanceof Uint8Array);
  });

  it('keeps objects that look like its tags apart from the tags', () => {
    for (const v of [{ $b: 'AAAA' }, { $u: 1 }, { $o: { $b: 'x' } }, { $o: 1 }, { $b: 'AAAA', other: 1 }, [{ $u: 1 }], Object.assign(Object.create(null) as object, { $u: 2 })]) {
      assert.deepEqual(roundTrip(v), JSON.parse(JSON.stringify(v)));
    }
    assert.deepEqual(roundTrip({ $b: new Uint8Array([1, 2]) }), { $b: new Uint8Array([1, 2]) });
  });

  it('refuses what is not plain data with a TypeError', () => {
    for (const bad of [Number.NaN, Infinity, 10n, () => 1, Symbol('s'), new Date(0), new Map(), new Uint16Array(2), { when: new Date(0) }, [Number.NEGATIVE_INFINITY]]) {
      assert.throws(() => encodeValue(bad), TypeError);
    }
  });

  it('refuses bytes that are not its encoding', () => {
    assert.throws(() => decodeValue(new TextEncoder().encode('{"a":')));
    assert.throws(() => decodeValue(new Uint8Array([0xff, 0xfe])));
    assert.throws(() => decodeValue(new TextEncoder().encode('{"$b":1}')), TypeError);
  });
});
