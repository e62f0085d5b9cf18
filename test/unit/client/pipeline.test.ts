// The receive pipeline: persist then ack, dedupe of redelivered envelopes, malformed envelopes acked and
// dropped, a failed commit leaves the envelope queued, batches keep order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../../src/client/client.ts';
import { ConnectionState } from '../../../src/client/transport/websocket.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { ClientStore, StoreTx } from '../../../src/client/store/types.ts';
import type { Envelope } from '../../../src/protocol/gen/service_pb.ts';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, BOB, collect, connectedClient, eventually, nextEvent, registerOn, testOptions } from './support.ts';

/** A store whose next commit can be made to fail (a full disk, a crash of the storage layer). */
class FlakyStore implements ClientStore {
  failNextCommit = false;
  constructor(readonly inner: ClientStore) {}
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.inner.transaction(async (tx) => {
      const result = await fn(tx);
      if (this.failNextCommit) {
        this.failNextCommit = false;
        throw new Error('disk full');
      }
      return result;
    });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('receive pipeline (fake server)', () => {
  it('emits a redelivered envelope (same guid, or the same ciphertext again) once', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    const pushed: Envelope[] = [];
    fake.hooks.push = (e) => {
      if (e.sourceAccountId === alice.accountId) pushed.push(e);
      return undefined;
    };
    const messages = collect(bob, 'message');
    try {
      await alice.sendText(BOB, 'only once');
      await eventually(() => messages.items.length === 1 && fake.queue(bob.accountId).length === 0);
      const e = pushed[0] ?? assert.fail('nothing pushed');
      fake.inject(bob.accountId, 1, { ...e, guid: e.guid }); // the ack was lost: same guid again
      fake.inject(bob.accountId, 1, { type: e.type, sourceAccountId: e.sourceAccountId, sourceDeviceId: e.sourceDeviceId, timestamp: e.timestamp, content: e.content });
      await eventually(() => fake.queue(bob.accountId).length === 0);
      await bob.whenIdle();
      assert.equal(messages.items.length, 1);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('acknowledges and drops an envelope that does not decode', async () => {
    const fake = new FakeServer();
    const bob = await connectedClient(fake, BOB);
    const events = collect(bob, 'decryptionFailed');
    try {
      fake.hooks.push = () => new Uint8Array([0xff, 0xff, 0xff]);
      fake.inject(bob.accountId, 1, { type: 2, sourceAccountId: bob.accountId, sourceDeviceId: 1, timestamp: 1n, content: new Uint8Array([1]) });
      await eventually(() => fake.queue(bob.accountId).length === 0);
      assert.equal(events.items.length, 0);
    } finally {
      await bob.close();
    }
  });

  it('reports garbage from a real sender as undecryptable and asks it to resend', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      const failed = nextEvent(bob, 'decryptionFailed');
      fake.inject(bob.accountId, 1, { type: 2, sourceAccountId: alice.accountId, sourceDeviceId: 1, timestamp: 42n, content: new Uint8Array([0x44, 1, 2, 3]) });
      const f = await failed;
      assert.equal(f.code, 'PROTOCOL_INVALID_MESSAGE');
      assert.equal(f.from.accountId, alice.accountId);
      await bob.whenIdle();
      assert.ok(fake.log.some((l) => l.path === `/v1/messages/${alice.accountId}` && l.status === 200), 'a retry request went to the sender');
      const placeholder = (await bob.messages(alice.accountId)).find((m) => m.timestamp === 42);
      assert.equal(placeholder?.kind, 'undecryptable');
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('does not acknowledge an envelope whose batch failed to commit; it is processed after the next connect', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bobStore = new FlakyStore(new InMemoryClientStore());
    await registerOn(fake, BOB, bobStore);
    const bob = await Client.open(testOptions(fake, bobStore, { maintainKeys: false }));
    bob.connect();
    await bob.waitUntilConnected();
    const messages = collect(bob, 'message');
    try {
      await bob.whenIdle();
      bobStore.failNextCommit = true;
      await alice.sendText(BOB, 'survives a failed commit');
      await eventually(() => !bobStore.failNextCommit);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(messages.items.length, 0);
      assert.equal(fake.queue(bob.accountId).length, 1, 'still queued: it was not acked');
      fake.disconnectAll();
      await eventually(() => messages.items.length === 1 && fake.queue(bob.accountId).length === 0);
      assert.equal(messages.items[0]?.message.body, 'survives a failed commit');
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('forgets sent outbox entries after the resend window, and old envelope guids, on connecting', async () => {
    const fake = new FakeServer();
    let now = Date.now();
    const aliceStore = await registerOn(fake, ALICE);
    const alice = await Client.open(testOptions(fake, aliceStore, { now: () => now }));
    alice.connect();
    const bob = await connectedClient(fake, BOB);
    const toAlice: string[] = [];
    fake.hooks.push = (e) => {
      if (e.destinationDeviceId === 1 && e.sourceAccountId === bob.accountId) toAlice.push(Buffer.from(e.guid).toString('hex'));
      return undefined;
    };
    try {
      const receipt = nextEvent(alice, 'receipt');
      const sent = await alice.sendText(BOB, 'kept a day for resends');
      await receipt; // Bob's delivery receipt: an envelope Alice processed
      const guid = toAlice[0] ?? assert.fail('no envelope to Alice');
      const state = (): Promise<{ outbox: boolean; guid: boolean }> =>
        aliceStore.transaction(async (tx) => ({ outbox: (await tx.outbox.findMessage(bob.accountId, sent.timestamp)) !== undefined, guid: await tx.envelopes.has(guid) }));
      assert.deepEqual(await state(), { outbox: true, guid: true });
      // Each phase: move the clock, drop Alice's socket (once the fake holds it, or the drop misses it), wait
      // for her to connect again (housekeeping runs on connecting), then for that housekeeping to finish.
      const reconnect = async (what: string): Promise<void> => {
        await eventually(() => fake.connections(alice.accountId) > 0, 5_000, `Alice to be connected before ${what}`);
        const connected = nextEvent(alice, 'state', (c) => c.state === ConnectionState.Connected, 15_000);
        fake.disconnectAll();
        await connected;
        await alice.whenIdle();
      };
      now += 2 * 24 * 3600_000;
      await reconnect('the outbox prune');
      assert.deepEqual(await state(), { outbox: false, guid: true }, 'sent entries go after a day; guids are kept longer than the server keeps envelopes');
      now += 30 * 24 * 3600_000;
      await reconnect('the guid prune');
      assert.deepEqual(await state(), { outbox: false, guid: false });
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('keeps the order of a large backlog processed in batches', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bobStore = await registerOn(fake, BOB);
    try {
      for (let i = 0; i < 60; i++) await alice.sendText(BOB, `m${i}`);
      const bob = await Client.open(testOptions(fake, bobStore, { receiver: { batchSize: 16 } }));
      const messages = collect(bob, 'message');
      const empty = nextEvent(bob, 'queueEmpty');
      bob.connect();
      await empty;
      assert.deepEqual(messages.items.map((m) => m.message.body), Array.from({ length: 60 }, (_, i) => `m${i}`));
      await bob.whenIdle();
      // One delivery receipt per batch at most, not one per message.
      const receipts = fake.log.filter((l) => l.path === `/v1/messages/${alice.accountId}`).length;
      assert.ok(receipts <= 5, `${receipts} receipt sends`);
      await bob.close();
    } finally {
      await alice.close();
    }
  });
});
