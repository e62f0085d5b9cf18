// Queue delivery when bus events are not the tidy single-node stream: an event that arrives after a newer
// one (two nodes publishing), an envelope stored without any event (a publish skipped during a bus
// outage), and a `resync` event. The delivery reads the queue again and pushes each envelope once,
// skipping what it already pushed on this socket even while that is still unacknowledged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AccountId, DeviceId, DeviceRef } from '../../../src/server/ids.ts';
import type { NewEnvelope, StoredEnvelope } from '../../../src/server/storage/stores.ts';
import { fakeCiphertext, register, WsTestClient, type TestAccount } from '../../support/server-client.ts';
import { startTestServer, type TestServer } from '../../support/server-harness.ts';

describe('queue delivery with late, missing and resync events', () => {
  let t: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;
  let ref: DeviceRef;

  before(async () => {
    t = await startTestServer();
    alice = await register(t.url, '+15550100001', '111111');
    bob = await register(t.url, '+15550100002', '222222');
    const device = await t.server.app.storage.accounts.device(bob.accountId as AccountId, 1 as DeviceId);
    assert.ok(device !== undefined);
    ref = device.ref;
  });
  after(() => t.close());

  /** Stores one envelope for bob (as a send would), without publishing anything. */
  async function store(marker: number): Promise<StoredEnvelope> {
    const envelope: NewEnvelope = {
      ref,
      guid: randomBytes(16),
      type: 2,
      sourceAccountId: alice.accountId as AccountId,
      sourceDeviceId: 1 as DeviceId,
      destinationDeviceId: 1 as DeviceId,
      timestamp: t.clock.now(),
      serverTimestamp: t.clock.now(),
      content: fakeCiphertext(32, marker),
    };
    const result = await t.server.app.storage.messages.insert([envelope], { maxQueueDepth: 10_000, now: t.clock.now() });
    if (result.kind !== 'stored') throw new Error(`not stored: ${result.kind}`);
    return result.envelopes[0] as StoredEnvelope;
  }

  const markers = (ws: WsTestClient): number[] => ws.received.map((e) => new DataView(e.content.buffer, e.content.byteOffset).getUint32(0));

  it('pushes a late event (older than one already pushed) by reading the queue again, once', async () => {
    const ws = await WsTestClient.connect(t.wsUrl, bob);
    try {
      await ws.waitForQueueEmpty();
      const e4 = await store(4);
      const e5 = await store(5);
      assert.ok(e5.seq > e4.seq);
      // Node B's event for 5 overtakes node A's event for 4.
      t.server.app.bus.publishToDevice(ref, { kind: 'stored', envelope: e5 });
      t.server.app.bus.publishToDevice(ref, { kind: 'stored', envelope: e4 });
      await ws.waitForEnvelopes(2);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(markers(ws), [5, 4]);
    } finally {
      await ws.close();
    }
  });

  it('finds an envelope stored without an event on resync, and does not push again what is unacknowledged', async () => {
    // Hold the ack of marker 6: it stays queued and in flight.
    const ws = await WsTestClient.connect(t.wsUrl, bob, { ack: (e) => (new DataView(e.content.buffer, e.content.byteOffset).getUint32(0) === 6 ? 'hold' : 200) });
    try {
      await ws.waitForQueueEmpty();
      const e6 = await store(6);
      t.server.app.bus.publishToDevice(ref, { kind: 'stored', envelope: e6 });
      await ws.waitForEnvelopes(1);
      await store(7); // a publish that never happened (the bus was down)
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(markers(ws), [6], 'nothing tells the socket about 7 yet');
      t.server.app.bus.publishToDevice(ref, { kind: 'resync' });
      await ws.waitForEnvelopes(2);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(markers(ws), [6, 7], '7 found, 6 (unacknowledged, still queued) not pushed twice');
      const six = ws.received[0];
      assert.ok(six !== undefined);
      ws.ack(six);
    } finally {
      await ws.close();
    }
    // Everything acknowledged: a new socket gets an empty queue.
    const again = await WsTestClient.connect(t.wsUrl, bob);
    try {
      await again.waitForQueueEmpty();
      assert.equal(again.received.length, 0);
    } finally {
      await again.close();
    }
  });
});
