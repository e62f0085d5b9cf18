// The SDK end to end against the in-process fake server: registration, sessions, sending and receiving
// online and offline, receipts, and the content kinds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../../src/client/client.ts';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, BOB, collect, connectedClient, eventually, nextEvent, registerOn, testOptions } from './support.ts';

describe('Client messaging (fake server)', () => {
  it('registers, uploads keys, and exchanges messages both ways while online', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      assert.equal(fake.keyCounts(alice.accountId).preKeys, 5);
      const received = nextEvent(bob, 'message');
      const sent = await alice.sendText(BOB, 'hello bob');
      assert.equal(sent.status, 'sent');
      const ev = await received;
      assert.equal(ev.message.body, 'hello bob');
      assert.equal(ev.from.accountId, alice.accountId);
      assert.equal(ev.from.number, ALICE);
      assert.equal(ev.from.numberVerified, true);
      assert.equal(ev.message.timestamp, sent.timestamp);

      const back = nextEvent(alice, 'message');
      await bob.sendText(ALICE, 'hi alice');
      assert.equal((await back).message.body, 'hi alice');
      // The queue is empty once acknowledged.
      await eventually(() => fake.queue(bob.accountId).length === 0 && fake.queue(alice.accountId).length === 0);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('delivers what was sent while the recipient was offline, in order, once', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bobStore = await registerOn(fake, BOB);
    try {
      for (let i = 0; i < 5; i++) await alice.sendText(BOB, `offline ${i}`);
      assert.equal(fake.queue((await alice.resolve(BOB)) as string).length, 5);
      const bob = await Client.open(testOptions(fake, bobStore));
      const got = collect(bob, 'message');
      const empty = nextEvent(bob, 'queueEmpty');
      bob.connect();
      await empty;
      assert.deepEqual(got.items.map((e) => e.message.body), [0, 1, 2, 3, 4].map((i) => `offline ${i}`));
      await bob.close();
    } finally {
      await alice.close();
    }
  });

  it('moves an outgoing message from sent to delivered to read with receipts', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      const incoming = nextEvent(bob, 'message');
      const delivered = nextEvent(alice, 'messageStatus', (e) => e.message.status === 'delivered');
      const sent = await alice.sendText(BOB, 'status please');
      assert.equal(sent.status, 'sent');
      await delivered;
      await incoming;
      const read = nextEvent(alice, 'messageStatus', (e) => e.message.status === 'read');
      const changed = await bob.markRead(ALICE);
      assert.equal(changed.length, 1);
      await read;
      assert.equal((await alice.message(sent.id))?.status, 'read');
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
