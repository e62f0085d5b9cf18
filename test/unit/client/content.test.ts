// The content kinds end to end (fake server): reply/quote, reaction, edit, delete for everyone, typing (never
// stored), disappearing timer, view-once; and the padding of plaintext.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../../src/client/client.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { pad, unpad, PADDING_BLOCK } from '../../../src/client/content.ts';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, BOB, collect, connectedClient, eventually, nextEvent, registerOn, testOptions } from './support.ts';

describe('padding', () => {
  it('pads to multiples of 160 bytes and strips the padding again', () => {
    for (const n of [0, 1, 158, 159, 160, 500]) {
      const bytes = new Uint8Array(n).fill(7);
      const padded = pad(bytes);
      assert.equal(padded.length % PADDING_BLOCK, 0);
      assert.ok(padded.length > n);
      assert.deepEqual(unpad(padded), bytes);
    }
    assert.throws(() => unpad(new Uint8Array(160)), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidContent));
  });
});

describe('content kinds (fake server)', () => {
  it('quotes, reacts, edits and deletes for everyone', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      const got = nextEvent(bob, 'message');
      const original = await alice.sendText(BOB, 'original text');
      const incoming = (await got).message;

      const reply = nextEvent(alice, 'message');
      await bob.sendText(ALICE, 'a reply', { quote: incoming });
      const r = (await reply).message;
      assert.deepEqual(r.quote, { timestamp: original.timestamp, authorId: alice.accountId, text: 'original text' });

      const reaction = nextEvent(alice, 'reaction');
      await bob.react(incoming.id, '👍');
      const re = await reaction;
      assert.equal(re.targetId, original.id);
      assert.deepEqual(re.message?.reactions.map((x) => x.emoji), ['👍']);
      const removed = nextEvent(alice, 'reaction');
      await bob.react(incoming.id, '👍', { remove: true });
      assert.deepEqual((await removed).message?.reactions, []);

      const edit = nextEvent(bob, 'edit');
      await alice.edit(original.id, 'edited text');
      assert.equal((await edit).message?.body, 'edited text');
      assert.equal((await bob.message(incoming.id))?.body, 'edited text');
      assert.equal((await alice.message(original.id))?.body, 'edited text');

      const del = nextEvent(bob, 'delete');
      await alice.deleteForEveryone(original.id);
      await del;
      const gone = await bob.message(incoming.id);
      assert.equal(gone?.deleted, true);
      assert.equal(gone?.body, '');
      // Only the author can edit or delete.
      await assert.rejects(bob.edit(incoming.id, 'not mine'), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument));
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('delivers typing only to a connected recipient and never stores it', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      await alice.sendText(BOB, 'hi');
      const typing = nextEvent(bob, 'typing');
      await alice.sendTyping(BOB, true);
      assert.equal((await typing).started, true);
      assert.equal(fake.queue(bob.accountId).length, 0);
      assert.equal((await bob.messages(ALICE)).length, 1, 'typing is not a message');
      await bob.close();
      await alice.sendTyping(BOB, false);
      assert.equal(fake.queue(bob.accountId).length, 0, 'nothing queued for an offline recipient');
    } finally {
      await alice.close();
    }
  });

  it('sets a disappearing timer that both sides apply, and deletes expired messages', async () => {
    const fake = new FakeServer();
    let now = Date.now();
    const clock = (): number => now;
    const aliceStore = await registerOn(fake, ALICE);
    const alice = await Client.open(testOptions(fake, aliceStore, { now: clock }));
    alice.connect();
    const bobStore = await registerOn(fake, BOB);
    const bob = await Client.open(testOptions(fake, bobStore, { now: clock }));
    bob.connect();
    try {
      const timer = nextEvent(bob, 'timer');
      await alice.setExpireTimer(BOB, 60);
      assert.equal((await timer).expireTimer, 60);
      const got = nextEvent(bob, 'message');
      const sent = await alice.sendText(BOB, 'self-destructs');
      const m = (await got).message;
      assert.equal(m.expireTimer, 60);
      assert.equal(m.expiresAt, undefined, 'the timer starts when read');
      assert.equal((await alice.message(sent.id))?.expiresAt, now + 60_000);
      await bob.markRead(ALICE);
      now += 61_000;
      const expired = nextEvent(bob, 'expired');
      assert.equal(await bob.purgeExpired(), 1);
      assert.deepEqual((await expired).ids, [m.id]);
      assert.equal(await bob.message(m.id), undefined);
      assert.equal(await alice.purgeExpired(), 1);
      // Bob's replies carry the timer too.
      const reply = nextEvent(alice, 'message');
      await bob.sendText(ALICE, 'ok');
      assert.equal((await reply).message.expireTimer, 60);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('shows a view-once message once, then erases its text', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      const got = nextEvent(bob, 'message');
      const sent = await alice.sendText(BOB, 'look once', { viewOnce: true });
      const m = (await got).message;
      assert.equal(m.viewOnce, true);
      const viewed = nextEvent(alice, 'messageStatus', (e) => e.message.status === 'viewed');
      assert.equal((await bob.markViewed(m.id)).body, 'look once');
      assert.equal((await bob.message(m.id))?.body, '');
      assert.equal((await bob.markViewed(m.id)).body, '', 'the second time there is nothing to show');
      await viewed;
      assert.equal((await alice.message(sent.id))?.status, 'viewed');
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('refuses empty and oversized texts', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    try {
      await assert.rejects(alice.sendText(BOB, ''), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument));
      await assert.rejects(alice.sendText(BOB, 'x'.repeat(70_000)), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument));
      await assert.rejects(alice.sendText('not a number', 'hi'), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument));
      await assert.rejects(alice.sendText('+15559999999', 'hi'), (e: unknown) => ClientError.is(e, ClientErrorCode.UnknownRecipient));
      await assert.rejects(alice.sendText(ALICE, 'to myself'), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument));
    } finally {
      await alice.close();
    }
  });

  it('collects nothing from a typing indicator in the message list even when online', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    const messages = collect(bob, 'message');
    try {
      await alice.sendTyping(BOB, true);
      await eventually(() => fake.log.some((l) => l.path.startsWith('/v1/messages/')));
      await bob.whenIdle();
      assert.equal(messages.items.length, 0);
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
