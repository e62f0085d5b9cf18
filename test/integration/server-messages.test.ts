// Messaging against the real server: Signal-Server's mismatch (409) and stale (410) answers, durable
// store-and-forward online and offline, per-device order, delete only on ack, redelivery of unacked
// envelopes, ephemeral envelopes never stored, 30-day expiry, queue and size limits, the per-sender rate
// limit, and idempotent retries.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MismatchedDevicesSchema, SendMessageResponseSchema, StaleDevicesSchema } from '../../src/protocol/gen/service_pb.ts';
import { decodeBody, fakeCiphertext, http, register, sendBody, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { countRows, dataFolderBytes, startTestServer, type TestServer } from '../support/server-harness.ts';
import { sqliteStorage } from '../../src/server/app.ts';

const DAY = 24 * 60 * 60 * 1000;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('server messages', () => {
  let t: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;
  let sockets: WsTestClient[] = [];

  /** Bob sends one envelope to Alice's device 1 over HTTP. */
  const sendToAlice = (content: Uint8Array, options: Parameters<typeof sendBody>[1] = {}, from: TestAccount = bob) =>
    http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: from, body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content }], options) });
  const connect = async (who: TestAccount, options: Parameters<typeof WsTestClient.connect>[2] = {}) => {
    const socket = await WsTestClient.connect(t.wsUrl, who, options);
    sockets.push(socket);
    return socket;
  };
  /** Waits until the database holds `n` queued envelopes (acks are deleted asynchronously). */
  const untilQueued = async (n: number) => {
    for (let i = 0; i < 200 && (await countRows(t, 'messages')) !== n; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await countRows(t, 'messages'), n);
  };

  before(async () => {
    t = await startTestServer({
      limits: { maxQueueDepth: 50 },
      rateLimits: { messagesPerSender: { capacity: 10_000, windowMs: 1000 } },
    });
    alice = await register(t.url, '+15550100001', '111111');
    bob = await register(t.url, '+15550100002', '222222');
  });
  beforeEach(async () => {
    for (const s of sockets) await s.close();
    sockets = [];
    // Start each test with empty queues.
    for (const who of [alice, bob]) {
      const drain = await connect(who);
      await drain.waitForQueueEmpty();
      await drain.close();
    }
    await untilQueued(0);
  });
  after(async () => {
    for (const s of sockets) await s.close();
    await t.close();
  });

  it('answers 409 MismatchedDevices with missing and extra devices', async () => {
    const none = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: bob, body: sendBody([]) });
    assert.deepEqual([none.status, none.code], [409, 'SERVER_MISMATCHED_DEVICES']);
    const missing = decodeBody(MismatchedDevicesSchema, none.body);
    assert.deepEqual([missing.missingDevices, missing.extraDevices], [[1], []]);
    const extra = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
      auth: bob,
      body: sendBody([
        { deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(16) },
        { deviceId: 3, registrationId: 5, content: fakeCiphertext(16) },
      ]),
    });
    assert.equal(extra.status, 409);
    assert.deepEqual(decodeBody(MismatchedDevicesSchema, extra.body).extraDevices, [3]);
    // Over the WebSocket the same answer arrives as a Response frame.
    const ws = await connect(bob);
    const response = await ws.request('PUT', `/v1/messages/${alice.accountId}`, sendBody([]));
    assert.deepEqual([response.status, response.code], [409, 'SERVER_MISMATCHED_DEVICES']);
    assert.deepEqual(decodeBody(MismatchedDevicesSchema, response.body).missingDevices, [1]);
    assert.equal(await countRows(t, 'messages'), 0);
  });

  it('answers 410 StaleDevices for a changed registration id, and accepts 0 as "unknown"', async () => {
    const stale = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
      auth: bob,
      body: sendBody([{ deviceId: 1, registrationId: ((alice.registrationId + 1) % 16000) + 1, content: fakeCiphertext(16) }]),
    });
    assert.deepEqual([stale.status, stale.code], [410, 'SERVER_STALE_DEVICES']);
    assert.deepEqual(decodeBody(StaleDevicesSchema, stale.body).staleDevices, [1]);
    const unknownId = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
      auth: bob,
      body: sendBody([{ deviceId: 1, registrationId: 0, content: fakeCiphertext(16) }]),
    });
    assert.equal(unknownId.status, 200);
  });

  it("excludes the sending device when sending to one's own account", async () => {
    const toSelf = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: alice, body: sendBody([]) });
    assert.equal(toSelf.status, 200);
    assert.equal(decodeBody(SendMessageResponseSchema, toSelf.body).stored, 0);
    const includingSelf = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
      auth: alice,
      body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(16) }]),
    });
    assert.equal(includingSelf.status, 409);
    assert.deepEqual(decodeBody(MismatchedDevicesSchema, includingSelf.body).extraDevices, [1]);
  });

  it('stores offline envelopes and delivers them in order on connect, then queue/empty; acks delete them', async () => {
    const contents = Array.from({ length: 30 }, (_, i) => fakeCiphertext(100 + i, i));
    for (const content of contents) {
      const sent = await sendToAlice(content);
      assert.equal(decodeBody(SendMessageResponseSchema, sent.body).stored, 1);
    }
    assert.equal(await countRows(t, 'messages'), 30, 'stored before delivery');
    const ws = await connect(alice);
    await ws.waitForQueueEmpty();
    assert.deepEqual(ws.received.map((e) => hex(e.content)), contents.map(hex));
    const first = ws.received[0];
    assert.ok(first !== undefined);
    assert.equal(first.sourceAccountId, bob.accountId);
    assert.equal(first.sourceDeviceId, 1);
    assert.equal(first.destinationDeviceId, 1);
    assert.equal(first.type, 2);
    assert.equal(first.guid.length, 16);
    assert.equal(first.serverTimestamp, BigInt(t.clock.now()));
    assert.equal(new Set(ws.received.map((e) => hex(e.guid))).size, 30, 'guids are unique');
    await untilQueued(0);
  });

  it('pushes envelopes to a connected device as they are accepted, in order', async () => {
    const ws = await connect(alice);
    await ws.waitForQueueEmpty();
    const bobWs = await connect(bob);
    const contents = Array.from({ length: 40 }, (_, i) => fakeCiphertext(64, i));
    for (const content of contents) {
      const response = await bobWs.request('PUT', `/v1/messages/${alice.accountId}`, sendBody([{ deviceId: 1, registrationId: alice.registrationId, content }]));
      assert.equal(response.status, 200);
    }
    await ws.waitForEnvelopes(40);
    assert.deepEqual(ws.received.map((e) => hex(e.content)), contents.map(hex));
    assert.equal(ws.queueEmptyCount, 1, 'queue/empty is sent once per connection');
    await untilQueued(0);
  });

  it('keeps unacknowledged envelopes (no answer, or a non-200 answer) and redelivers them in order on reconnect', async () => {
    const contents = Array.from({ length: 6 }, (_, i) => fakeCiphertext(32, i));
    for (const content of contents) await sendToAlice(content);
    // Ack the first two, refuse the third with 500, leave the rest unanswered.
    let n = 0;
    const first = await connect(alice, { ack: () => (n++ < 2 ? 200 : n === 3 ? 500 : 'hold') });
    await first.waitForEnvelopes(6);
    await untilQueued(4);
    await first.close();
    const second = await connect(alice);
    await second.waitForQueueEmpty();
    assert.deepEqual(second.received.map((e) => hex(e.content)), contents.slice(2).map(hex));
    assert.deepEqual(second.received.map((e) => hex(e.guid)), first.received.slice(2).map((e) => hex(e.guid)), 'same guids: clients dedupe by guid');
    await untilQueued(0);
  });

  it('delivers ephemeral envelopes only to connected devices and never stores them', async () => {
    const offline = fakeCiphertext(40);
    const dropped = await sendToAlice(offline, { ephemeral: true });
    assert.equal(dropped.status, 200);
    assert.equal(decodeBody(SendMessageResponseSchema, dropped.body).stored, 0);
    assert.equal(await countRows(t, 'messages'), 0);
    const ws = await connect(alice);
    await ws.waitForQueueEmpty();
    const online = fakeCiphertext(40);
    await sendToAlice(online, { ephemeral: true });
    await ws.waitForEnvelopes(1);
    assert.equal(ws.received.length, 1, 'the offline one was dropped');
    assert.equal(ws.received[0]?.ephemeral, true);
    assert.equal(hex(ws.received[0]?.content ?? new Uint8Array()), hex(online));
    assert.equal(await countRows(t, 'messages'), 0);
    await sqliteStorage(t.server.app).writer.drain();
    const disk = dataFolderBytes(t.dataDir);
    assert.equal(disk.indexOf(Buffer.from(online)), -1, 'ephemeral content never reached the disk');
    assert.equal(disk.indexOf(Buffer.from(offline)), -1);
  });

  it('expires envelopes after 30 days (injected clock), at delivery and in the sweep', async () => {
    const old = fakeCiphertext(24, 1);
    await sendToAlice(old);
    t.clock.advance(29 * DAY);
    const recent = fakeCiphertext(24, 2);
    await sendToAlice(recent);
    t.clock.advance(DAY + 1);
    const ws = await connect(alice, { ack: () => 'hold' });
    await ws.waitForQueueEmpty();
    assert.deepEqual(ws.received.map((e) => hex(e.content)), [hex(recent)], 'the 30-day-old envelope is not delivered');
    await ws.close();
    const swept = await t.server.app.sweep();
    assert.equal(swept.envelopes, 1);
    assert.equal(await countRows(t, 'messages'), 1);
  });

  it('refuses envelopes beyond the queue limit with 507 and accepts again once drained', async () => {
    for (let i = 0; i < 50; i++) assert.equal((await sendToAlice(fakeCiphertext(16))).status, 200);
    const full = await sendToAlice(fakeCiphertext(16));
    assert.deepEqual([full.status, full.code], [507, 'SERVER_QUEUE_FULL']);
    assert.equal(await countRows(t, 'messages'), 50);
    const ws = await connect(alice);
    await ws.waitForQueueEmpty();
    await untilQueued(0);
    assert.equal((await sendToAlice(fakeCiphertext(16))).status, 200);
  });

  it('limits envelope size to 256 KiB', async () => {
    assert.equal((await sendToAlice(fakeCiphertext(256 * 1024))).status, 200);
    const big = await sendToAlice(fakeCiphertext(256 * 1024 + 1));
    assert.deepEqual([big.status, big.code], [413, 'SERVER_PAYLOAD_TOO_LARGE']);
  });

  it('treats a retry with the same idempotency key as the first send', async () => {
    const key = fakeCiphertext(16);
    const content = fakeCiphertext(32);
    const first = await sendToAlice(content, { idempotencyKey: key });
    const retry = await sendToAlice(content, { idempotencyKey: key });
    assert.equal(decodeBody(SendMessageResponseSchema, first.body).stored, 1);
    assert.equal(decodeBody(SendMessageResponseSchema, retry.body).stored, 1, 'answered as the first one was');
    // Five concurrent sends with one key: one stored.
    const key2 = fakeCiphertext(16);
    const results = await Promise.all(Array.from({ length: 5 }, () => sendToAlice(fakeCiphertext(32), { idempotencyKey: key2 })));
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(await countRows(t, 'messages'), 2);
    // The key is scoped to the sender: Alice may use the same bytes.
    assert.equal(
      (await http(t.url, 'PUT', `/v1/messages/${bob.accountId}`, { auth: alice, body: sendBody([{ deviceId: 1, registrationId: 0, content }], { idempotencyKey: key }) })).status,
      200,
    );
    assert.equal(await countRows(t, 'messages'), 3);
    // Keys are forgotten after 24 hours.
    t.clock.advance(DAY + 1);
    await t.server.app.sweep();
    assert.equal(await countRows(t, 'idempotency_keys'), 0);
  });

  it('validates sends: timestamp, type, content, duplicates, idempotency key, destination', async () => {
    const c = () => fakeCiphertext(8);
    const cases: Array<[string, Uint8Array, string, number, string]> = [
      ['zero timestamp', sendBody([{ deviceId: 1, registrationId: 0, content: c() }], { timestamp: 0n }), alice.accountId, 400, 'SERVER_BAD_REQUEST'],
      ['unknown type', sendBody([{ deviceId: 1, registrationId: 0, content: c(), type: 5 }]), alice.accountId, 400, 'SERVER_BAD_REQUEST'],
      ['empty content', sendBody([{ deviceId: 1, registrationId: 0, content: new Uint8Array() }]), alice.accountId, 400, 'SERVER_BAD_REQUEST'],
      ['two envelopes for one device', sendBody([{ deviceId: 1, registrationId: 0, content: c() }, { deviceId: 1, registrationId: 0, content: c() }]), alice.accountId, 400, 'SERVER_BAD_REQUEST'],
      ['short idempotency key', sendBody([{ deviceId: 1, registrationId: 0, content: c() }], { idempotencyKey: new Uint8Array(5) }), alice.accountId, 400, 'SERVER_BAD_REQUEST'],
      ['garbage body', new Uint8Array([0x0a, 0xff]), alice.accountId, 400, 'SERVER_BAD_REQUEST'],
      ['unknown account', sendBody([{ deviceId: 1, registrationId: 0, content: c() }]), '00000000-0000-4000-8000-000000000000', 404, 'SERVER_NOT_FOUND'],
      ['malformed account', sendBody([{ deviceId: 1, registrationId: 0, content: c() }]), 'nope', 400, 'SERVER_BAD_REQUEST'],
    ];
    for (const [label, body, destination, status, code] of cases) {
      const result = await http(t.url, 'PUT', `/v1/messages/${destination}`, { auth: bob, body });
      assert.deepEqual([result.status, result.code], [status, code], label);
    }
    assert.equal(await countRows(t, 'messages'), 0);
  });

  it('replaces an older socket of the same device (4409)', async () => {
    const older = await connect(alice);
    await older.waitForQueueEmpty();
    const newer = await connect(alice);
    assert.equal((await older.closed).code, 4409);
    await newer.waitForQueueEmpty();
    await sendToAlice(fakeCiphertext(16));
    await newer.waitForEnvelopes(1);
  });
});

describe('server messages: per-sender rate limit', () => {
  let t: TestServer;
  after(() => t.close());

  it('answers 429 with a retry time once a sender exceeds its rate', async () => {
    t = await startTestServer({ rateLimits: { messagesPerSender: { capacity: 3, windowMs: 3000 } } });
    const alice = await register(t.url, '+15550100001', '111111');
    const bob = await register(t.url, '+15550100002', '222222');
    const send = () => http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: bob, body: sendBody([{ deviceId: 1, registrationId: 0, content: fakeCiphertext(16) }]) });
    for (let i = 0; i < 3; i++) assert.equal((await send()).status, 200);
    const limited = await send();
    assert.deepEqual([limited.status, limited.code], [429, 'SERVER_RATE_LIMITED']);
    assert.equal(limited.retryAfter, 1);
    t.clock.advance(1000);
    assert.equal((await send()).status, 200);
  });
});

describe('server messages: a slow device with a small push window', () => {
  let t: TestServer;
  after(() => t.close());

  it('gets every envelope once, in order, when it acks more slowly than envelopes arrive', async () => {
    t = await startTestServer({ limits: { pushWindow: 4 }, rateLimits: { messagesPerSender: { capacity: 10_000, windowMs: 1000 } } });
    const alice = await register(t.url, '+15550100001', '111111');
    const bob = await register(t.url, '+15550100002', '222222');
    const slow = await WsTestClient.connect(t.wsUrl, alice, { ack: () => 'hold' });
    await slow.waitForQueueEmpty();
    const bobWs = await WsTestClient.connect(t.wsUrl, bob);
    const contents = Array.from({ length: 60 }, (_, i) => fakeCiphertext(40, i));
    // All sends go out at once: the window fills, the live backlog overflows, and the rest is read back
    // from the store as acks free the window.
    const sent = await Promise.all(
      contents.map((content) => bobWs.request('PUT', `/v1/messages/${alice.accountId}`, sendBody([{ deviceId: 1, registrationId: alice.registrationId, content }]))),
    );
    assert.ok(sent.every((r) => r.status === 200));
    await slow.waitForEnvelopes(4);
    assert.equal(slow.received.length, 4, 'no more than the window is pushed before acks');
    for (let acked = 0; acked < 60; acked++) {
      await slow.waitForEnvelopes(acked + 1);
      slow.ack(slow.received[acked] as (typeof slow.received)[number]);
    }
    await slow.until(() => slow.received.length === 60, 5000);
    const order = new Map(contents.map((c, i) => [hex(c), i]));
    const seen = slow.received.map((e) => order.get(hex(e.content)) ?? -1);
    assert.deepEqual(seen, [...seen].sort((x, y) => x - y), 'in acceptance order');
    assert.equal(new Set(seen).size, 60, 'each once');
    await slow.close();
    await bobWs.close();
  });
});
