// Decryption failures recover: the user sees "could not decrypt", the sender is asked to resend, answers by
// starting a new session and sending the message again from its outbox, and the message then arrives.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { messageId } from '../../../src/client/ids.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, BOB, collect, connectedClient, eventually, nextEvent, registerOn } from './support.ts';

describe('decryption failures (fake server)', () => {
  it('recovers a message sent on a session the receiver lost', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bobStore = new InMemoryClientStore();
    await registerOn(fake, BOB, bobStore);
    const bob = await connectedClient(fake, BOB, {}, bobStore);
    try {
      await alice.sendText(BOB, 'one');
      await nextEvent(bob, 'message');
      await bob.sendText(ALICE, 'two');
      await nextEvent(alice, 'message');
      // Bob loses his session with Alice (a restored backup, a bug): her next message cannot be decrypted.
      await bobStore.transaction((tx) => tx.sessions.remove(alice.accountId, 1));
      const failures = collect(bob, 'decryptionFailed');
      const recovered = nextEvent(bob, 'message', (e) => e.message.body === 'after the loss');
      const sent = await alice.sendText(BOB, 'after the loss');
      await eventually(() => failures.items.some((e) => e.timestamp === sent.timestamp));
      const f = failures.items.find((e) => e.timestamp === sent.timestamp) ?? assert.fail();
      assert.equal(f.code, 'PROTOCOL_NO_SESSION');
      assert.equal(f.retryRequested, true);
      assert.equal(f.timestamp, sent.timestamp);
      const m = await recovered;
      assert.equal(m.message.id, messageId(alice.accountId, sent.timestamp));
      const stored = await bob.message(m.message.id);
      assert.equal(stored?.kind, 'text', 'the placeholder was replaced by the message');
      // And the conversation goes on both ways.
      const back = nextEvent(alice, 'message', (e) => e.message.body === 'still here');
      await bob.sendText(ALICE, 'still here');
      await back;
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('recovers a message whose ciphertext was damaged (bad MAC)', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      await alice.sendText(BOB, 'one');
      await nextEvent(bob, 'message');
      // Bob answers, so Alice's next message is a plain SignalMessage (version, protobuf, 8-byte MAC).
      await bob.sendText(ALICE, 'two');
      await nextEvent(alice, 'message');
      await alice.whenIdle();
      let damaged = 0;
      fake.hooks.push = (e, bytes) => {
        if (e.sourceAccountId !== alice.accountId || e.type !== 2 || damaged > 0) return undefined;
        damaged++;
        const copy = bytes.slice();
        copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0x01; // the content ends with the MAC
        return copy;
      };
      const failed = nextEvent(bob, 'decryptionFailed');
      const recovered = nextEvent(bob, 'message', (e) => e.message.body === 'damaged once');
      const sent = await alice.sendText(BOB, 'damaged once');
      const f = await failed;
      assert.equal(f.code, 'PROTOCOL_BAD_MAC');
      assert.equal(f.timestamp, sent.timestamp);
      await recovered;
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
