// Decoder fuzzing: random and mutated frames of every client-to-server request type, over an
// authenticated WebSocket, plus mutated HTTP bodies for every route. Bounded (5,000 frames, 600 HTTP
// requests) and seeded (PARLEY_TEST_SEED reproduces a run). Afterwards the server still answers
// /healthz, the database passes integrity_check, and a victim's queue and keys, which no fuzzed frame
// addresses, are exactly as before. The harness fails the test if anything was logged at error level
// (a handler bug surfacing as a 500).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import {
  KeyStatusResponseSchema,
  PresenceSettingsSchema,
  SetKeysRequestSchema,
  VerificationCodeRequestSchema,
} from '../../src/protocol/gen/service_pb.ts';
import { FrameSchema, RequestSchema, ResponseSchema } from '../../src/protocol/gen/transport_pb.ts';
import { chooseSeed, Prng } from '../support/prng.ts';
import { decodeBody, fakeCiphertext, http, register, registerRequest, sendBody, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';
import { kyberPreKey, preKeys, signedPreKey } from '../support/server-keys.ts';
import { sqliteStorage } from '../../src/server/app.ts';

const FRAMES = 5000;
const HTTP_REQUESTS = 600;
const VICTIM_QUEUE = 10;

interface Template {
  readonly verb: string;
  readonly path: string;
  readonly body: Uint8Array;
}

describe('server decoder fuzzing', () => {
  let t: TestServer;
  let victim: TestAccount;
  let mallory: TestAccount;
  let bob: TestAccount;
  let templates: Template[];
  const queued: string[] = [];
  const seed = chooseSeed(process.env);
  const rng = new Prng(seed);

  before(async () => {
    t = await startTestServer({
      rateLimits: { requestsPerConnection: { capacity: 1_000_000, windowMs: 1000 }, messagesPerSender: { capacity: 1_000_000, windowMs: 1000 } },
    });
    victim = await register(t.url, '+15550100001', '111111');
    mallory = await register(t.url, '+15550100002', '222222');
    bob = await register(t.url, '+15550100003', '333333');
    // The victim's state that must survive untouched: keys and a queue sent by Bob.
    const keys = create(SetKeysRequestSchema, { preKeys: await preKeys(1, 10), kyberPreKeys: [kyberPreKey(victim.identity, 50), kyberPreKey(victim.identity, 51)] });
    assert.equal((await http(t.url, 'PUT', '/v1/keys', { auth: victim, body: toBinary(SetKeysRequestSchema, keys) })).status, 200);
    for (let i = 0; i < VICTIM_QUEUE; i++) {
      const content = fakeCiphertext(80, i);
      queued.push(Buffer.from(content).toString('hex'));
      const sent = await http(t.url, 'PUT', `/v1/messages/${victim.accountId}`, { auth: bob, body: sendBody([{ deviceId: 1, registrationId: victim.registrationId, content }]) });
      assert.equal(sent.status, 200);
    }
    // One valid request of every client-to-server type. None addresses the victim.
    const throwaway = await registerRequest('+15550100008', '888888');
    templates = [
      { verb: 'POST', path: '/v1/verification/request', body: toBinary(VerificationCodeRequestSchema, create(VerificationCodeRequestSchema, { number: '+15550100009' })) },
      { verb: 'POST', path: '/v1/accounts/register', body: throwaway.body },
      { verb: 'GET', path: '/v1/accounts/whoami', body: new Uint8Array() },
      { verb: 'GET', path: `/v1/accounts/lookup/${encodeURIComponent(bob.number)}`, body: new Uint8Array() },
      {
        verb: 'PUT',
        path: '/v1/keys',
        body: toBinary(
          SetKeysRequestSchema,
          create(SetKeysRequestSchema, {
            preKeys: await preKeys(100, 3),
            kyberPreKeys: [kyberPreKey(mallory.identity, 200)],
            signedPreKey: await signedPreKey(mallory.identity, 5),
            kyberLastResortPreKey: kyberPreKey(mallory.identity, 6),
          }),
        ),
      },
      { verb: 'GET', path: '/v1/keys/status', body: new Uint8Array() },
      { verb: 'GET', path: `/v1/keys/${mallory.accountId}/1`, body: new Uint8Array() },
      { verb: 'GET', path: `/v1/keys/${bob.accountId}/*`, body: new Uint8Array() },
      { verb: 'PUT', path: `/v1/messages/${bob.accountId}`, body: sendBody([{ deviceId: 1, registrationId: bob.registrationId, content: fakeCiphertext(60) }], { idempotencyKey: fakeCiphertext(16) }) },
      { verb: 'PUT', path: `/v1/messages/${mallory.accountId}`, body: sendBody([], { ephemeral: true }) },
      { verb: 'PUT', path: '/v1/presence/settings', body: toBinary(PresenceSettingsSchema, create(PresenceSettingsSchema, { visibility: 2, allowedAccountIds: [bob.accountId] })) },
      { verb: 'GET', path: `/v1/presence/${bob.accountId}`, body: new Uint8Array() },
      { verb: 'GET', path: '/healthz', body: new Uint8Array() },
    ];
  });
  after(() => t.close());

  /** Flips, inserts or deletes a few bytes, truncates, or extends. */
  function mutate(input: Uint8Array): Uint8Array {
    const bytes = Array.from(input);
    const edits = rng.int(1, 4);
    for (let e = 0; e < edits; e++) {
      const at = bytes.length === 0 ? 0 : rng.int(0, bytes.length - 1);
      switch (rng.int(0, 5)) {
        case 0:
          bytes[at] = rng.int(0, 255);
          break;
        case 1:
          bytes[at] = (bytes[at] ?? 0) ^ (1 << rng.int(0, 7));
          break;
        case 2:
          bytes.splice(at, 0, ...rng.bytes(rng.int(1, 8)));
          break;
        case 3:
          bytes.splice(at, rng.int(1, 8));
          break;
        case 4:
          bytes.length = rng.int(0, bytes.length);
          break;
        default:
          bytes.push(...rng.bytes(rng.int(1, 64)));
      }
    }
    return new Uint8Array(bytes);
  }

  function requestFrame(id: bigint, verb: string, path: string, body: Uint8Array): Uint8Array {
    return toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'request', value: create(RequestSchema, { id, verb, path, body }) } }));
  }

  /** One fuzzed frame: random bytes, a mutated frame, a valid frame with a mutated body, path or verb, or a stray response. */
  function fuzzFrame(i: number): Uint8Array {
    const template = rng.pick(templates);
    const id = BigInt(i + 1);
    switch (rng.int(0, 6)) {
      case 0:
        return rng.bytes(rng.int(0, 300));
      case 1:
        return mutate(requestFrame(id, template.verb, template.path, template.body));
      case 2:
      case 3:
        return requestFrame(id, template.verb, template.path, mutate(template.body));
      case 4:
        return requestFrame(id, rng.pick(['GET', 'PUT', 'POST', 'DELETE', '', 'get']), new TextDecoder().decode(mutate(new TextEncoder().encode(template.path))), template.body);
      case 5:
        return requestFrame(id, template.verb, template.path, rng.bytes(rng.int(0, 200)));
      default:
        return toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'response', value: create(ResponseSchema, { id: BigInt(rng.int(0, 50)), status: rng.int(0, 600) }) } }));
    }
  }

  it(`survives ${FRAMES} fuzzed WebSocket frames and ${HTTP_REQUESTS} fuzzed HTTP bodies with stored data intact`, { timeout: 60_000 }, async (ctx) => {
    ctx.diagnostic(`seed ${seed} (set PARLEY_TEST_SEED to reproduce)`);
    let ws = await WsTestClient.connect(t.wsUrl, mallory, { ack: () => 200 });
    let reconnects = 0;
    for (let i = 0; i < FRAMES; i++) {
      if (ws.ws.readyState !== ws.ws.OPEN) {
        await ws.closed;
        ws = await WsTestClient.connect(t.wsUrl, mallory, { ack: () => 200 });
        reconnects++;
      }
      ws.sendRaw(fuzzFrame(i));
      // A round trip after every frame, so that each one is processed before the next (a frame sent
      // after one that closes the socket would never be read): the answer arrives, or the close does.
      await ws.request('GET', '/v1/accounts/whoami').catch(() => undefined);
    }
    await ws.close();
    ctx.diagnostic(`${reconnects} reconnects after malformed frames`);

    for (let i = 0; i < HTTP_REQUESTS; i++) {
      const template = rng.pick(templates);
      const auth = rng.chance(0.8) ? mallory : undefined;
      const result = await http(t.url, template.verb, template.path, { auth, body: rng.chance(0.2) ? rng.bytes(rng.int(0, 100)) : mutate(template.body) });
      assert.ok(result.status < 500 || result.status === 503 || result.status === 507, `HTTP ${template.verb} ${template.path} answered ${result.status} ${result.code}`);
    }

    assert.equal((await http(t.url, 'GET', '/healthz')).status, 200);
    const db = new Database(sqliteStorage(t.server.app).file, { readonly: true, fileMustExist: true });
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
    const status = decodeBody(KeyStatusResponseSchema, (await http(t.url, 'GET', '/v1/keys/status', { auth: victim })).body);
    assert.deepEqual([status.preKeyCount, status.kyberPreKeyCount], [10, 2], "the victim's keys are untouched");
    const receiver = await WsTestClient.connect(t.wsUrl, victim);
    await receiver.waitForQueueEmpty();
    assert.deepEqual(receiver.received.map((e) => Buffer.from(e.content).toString('hex')), queued, "the victim's queue is intact");
    await receiver.close();
  });
});
