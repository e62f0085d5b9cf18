// The hand-written frame encoders against protobuf-es: every frame they build decodes, with protobuf-es,
// to exactly the message protobuf-es would have built from the same fields (seeded random values plus
// the edges: zeros, empties, 2^32-1, 2^53-1, 2^64-1).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { EnvelopeSchema } from '../../../src/protocol/gen/service_pb.ts';
import { FrameSchema, RequestSchema, ResponseSchema } from '../../../src/protocol/gen/transport_pb.ts';
import { encodePushFrame, encodeRequestFrame, encodeResponseFrame } from '../../../src/server/ws/frames.ts';
import { chooseSeed, Prng } from '../../support/prng.ts';

const seed = chooseSeed(process.env);
const rng = new Prng(seed);
const pickInt = (edges: number[], max: number): number => (rng.chance(0.3) ? rng.pick(edges) : rng.int(0, max));
const text = (max: number): string => Array.from({ length: rng.int(0, max) }, () => rng.pick(['a', 'Z', '/', 'é', '€', '😀', '0'])).join('');

describe(`hand-written frame encoders (seed ${seed})`, () => {
  it('encode responses exactly as protobuf-es', () => {
    for (let i = 0; i < 500; i++) {
      const fields = {
        id: rng.chance(0.2) ? rng.pick([0n, 1n, 2n ** 32n - 1n, 2n ** 64n - 1n]) : BigInt(rng.int(0, 2 ** 31)),
        status: pickInt([0, 200, 429, 0xffff_ffff], 600),
        code: text(30),
        message: text(60),
        body: rng.bytes(pickInt([0, 127, 128, 16384], 3000)),
        retryAfterMs: pickInt([0, 1, 0xffff_ffff], 100_000),
      };
      const expected = create(FrameSchema, { kind: { case: 'response', value: create(ResponseSchema, fields) } });
      const ours = encodeResponseFrame(fields);
      assert.deepEqual(fromBinary(FrameSchema, new Uint8Array(ours)), expected);
      assert.deepEqual(Buffer.from(ours), Buffer.from(toBinary(FrameSchema, expected)), 'byte-identical');
    }
  });

  it('encode requests exactly as protobuf-es', () => {
    for (let i = 0; i < 300; i++) {
      const id = pickInt([0, 1, 127, 128, 2 ** 31, Number.MAX_SAFE_INTEGER], 2 ** 40);
      const verb = rng.pick(['PUT', 'GET', '']);
      const path = text(40);
      const body = rng.bytes(pickInt([0, 1, 200], 500));
      const expected = create(FrameSchema, { kind: { case: 'request', value: create(RequestSchema, { id: BigInt(id), verb, path, body }) } });
      assert.deepEqual(Buffer.from(encodeRequestFrame(id, verb, path, body)), Buffer.from(toBinary(FrameSchema, expected)));
    }
  });

  it('encode pushes (request + envelope in one buffer) exactly as protobuf-es', () => {
    for (let i = 0; i < 500; i++) {
      const envelope = {
        guid: rng.bytes(rng.pick([0, 16])),
        type: pickInt([0, 2, 3, 8], 10),
        sourceAccountId: rng.chance(0.1) ? '' : '6a1e2b3c-0000-4000-8000-1234567890ab',
        sourceDeviceId: pickInt([0, 1, 2 ** 31 - 1], 200),
        destinationDeviceId: pickInt([0, 1, 2 ** 31 - 1], 200),
        timestamp: pickInt([0, 1, Date.UTC(2026, 0, 1), Number.MAX_SAFE_INTEGER], 2 ** 45),
        serverTimestamp: pickInt([0, Date.UTC(2026, 0, 1), Number.MAX_SAFE_INTEGER], 2 ** 45),
        content: rng.bytes(pickInt([0, 127, 128, 262_144], 2000)),
        ephemeral: rng.chance(0.5),
        groupId: rng.chance(0.5) ? '' : '0123456789abcdef0123456789abcdef',
      };
      const id = pickInt([0, 1, 128, 2 ** 31], 2 ** 33);
      const body = toBinary(
        EnvelopeSchema,
        create(EnvelopeSchema, { ...envelope, timestamp: BigInt(envelope.timestamp), serverTimestamp: BigInt(envelope.serverTimestamp) }),
      );
      const expected = create(FrameSchema, { kind: { case: 'request', value: create(RequestSchema, { id: BigInt(id), verb: 'PUT', path: '/v1/queue/message', body }) } });
      assert.deepEqual(Buffer.from(encodePushFrame(id, envelope)), Buffer.from(toBinary(FrameSchema, expected)));
    }
  });
});
