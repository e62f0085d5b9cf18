// The NATS bus's event codec: every event kind round-trips; malformed input (truncations, flipped
// bytes, random bytes, another device's envelope) is refused with BusCodecError and nothing else;
// events that cannot be represented are refused on encode.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceEvent } from '../../../src/server/bus/bus.ts';
import { BusCodecError, decodeDeviceEvent, encodeDeviceEvent } from '../../../src/server/bus/codec.ts';
import type { AccountId, DeviceId, DeviceRef, GroupId } from '../../../src/server/ids.ts';
import { Prng } from '../../support/prng.ts';

const REF = 123_456_789 as DeviceRef;
const rng = new Prng(20261126);

function bytes(n: number): Uint8Array {
  return rng.bytes(n);
}

const envelope = {
  ref: REF,
  guid: bytes(16),
  type: 3,
  sourceAccountId: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' as AccountId,
  sourceDeviceId: 2 as DeviceId,
  destinationDeviceId: 0x7fff_ffff as DeviceId,
  timestamp: 1_764_115_200_000,
  serverTimestamp: 1_764_115_200_321,
  content: bytes(1000),
};

const EVENTS: DeviceEvent[] = [
  { kind: 'stored', envelope: { ...envelope, seq: 2 ** 40 } },
  { kind: 'stored', envelope: { ...envelope, groupId: 'ffeeddccbbaa99887766554433221100' as GroupId, content: new Uint8Array(0), seq: 1 } },
  { kind: 'ephemeral', envelope },
  { kind: 'removed' },
  { kind: 'resync' },
  { kind: 'connected', connectionId: 'node-é.1/c42', connectedAt: 1_764_115_200_999 },
];

describe('bus event codec', () => {
  it('round-trips every event kind', () => {
    for (const event of EVENTS) {
      const encoded = encodeDeviceEvent(event);
      assert.deepEqual(decodeDeviceEvent(encoded, REF), event, event.kind);
    }
    // Compact: a stored envelope costs its content plus 73 bytes.
    assert.equal(encodeDeviceEvent(EVENTS[0] as DeviceEvent).length, 1000 + 16 + 2 + 8 + 1 + 4 + 16 + 4 + 4 + 8 + 8 + 1 + 4 + 8);
  });

  it('refuses an envelope addressed to another device than the subject', () => {
    const encoded = encodeDeviceEvent(EVENTS[0] as DeviceEvent);
    assert.throws(() => decodeDeviceEvent(encoded, (REF + 1) as DeviceRef), BusCodecError);
  });

  it('refuses every truncation and extension, and never throws anything but BusCodecError', () => {
    for (const event of EVENTS) {
      const encoded = encodeDeviceEvent(event);
      for (let cut = 0; cut < encoded.length; cut += event.kind === 'stored' || event.kind === 'ephemeral' ? 7 : 1) {
        assert.throws(() => decodeDeviceEvent(encoded.slice(0, cut), REF), BusCodecError, `${event.kind} cut at ${cut}`);
      }
      assert.throws(() => decodeDeviceEvent(Uint8Array.from([...encoded, 0]), REF), BusCodecError);
    }
    // Flipped bytes and random input: either BusCodecError or a valid event that encodes back the same.
    for (let i = 0; i < 3000; i++) {
      const base = encodeDeviceEvent(EVENTS[i % EVENTS.length] as DeviceEvent);
      const mutated = i % 3 === 0 ? bytes(rng.int(0, 63)) : Uint8Array.from(base);
      if (i % 3 !== 0) {
        const at = rng.int(0, Math.min(mutated.length, 120) - 1);
        mutated[at] = (mutated[at] as number) ^ rng.int(1, 255);
      }
      let decoded: DeviceEvent;
      try {
        decoded = decodeDeviceEvent(mutated, REF);
      } catch (err) {
        assert.ok(err instanceof BusCodecError, `unexpected ${String(err)}`);
        continue;
      }
      assert.deepEqual(encodeDeviceEvent(decoded), mutated);
    }
  });

  it('refuses events it cannot represent', () => {
    const bad: DeviceEvent[] = [
      { kind: 'ephemeral', envelope: { ...envelope, sourceAccountId: 'not-a-uuid' as AccountId } },
      { kind: 'ephemeral', envelope: { ...envelope, groupId: 'abc' as GroupId } },
      { kind: 'ephemeral', envelope: { ...envelope, guid: new Uint8Array(256) } },
      { kind: 'ephemeral', envelope: { ...envelope, timestamp: -1 } },
      { kind: 'ephemeral', envelope: { ...envelope, sourceDeviceId: 0 as DeviceId } },
      { kind: 'stored', envelope: { ...envelope, seq: 1.5 } },
      { kind: 'connected', connectionId: '', connectedAt: 1 },
    ];
    for (const event of bad) assert.throws(() => encodeDeviceEvent(event), BusCodecError);
  });
});
