// Identity changes and safety numbers: a re-registered peer is reported and the conversation continues; a
// verified peer whose key changes blocks sending until verified again; both sides compute the same number.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../../src/client/client.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, BOB, connectedClient, nextEvent, registerOn, testOptions } from './support.ts';

describe('identity (fake server)', () => {
  it('shows the same 60-digit safety number on both sides, and marks it verified', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      const got = nextEvent(bob, 'message');
      await alice.sendText(BOB, 'hi');
      await got;
      const a = await alice.safetyNumber(BOB);
      const b = await bob.safetyNumber(ALICE);
      assert.match(a.digits, /^[0-9]{60}$/);
      assert.equal(a.digits, b.digits);
      assert.equal(a.formatted.split(' ').length, 12);
      assert.equal(a.status, 'unverified');
      await alice.markVerified(BOB, a.identityKey);
      assert.equal((await alice.safetyNumber(BOB)).status, 'verified');
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('reports a re-registered peer on sending and on receiving, and carries on (unverified contact)', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    await alice.sendText(BOB, 'before');
    const before = (await alice.safetyNumber(BOB)).digits;
    await bob.close();
    // Bob registers again on a new device: new identity, same account.
    const bob2 = await connectedClient(fake, BOB);
    try {
      assert.equal(bob2.accountId, bob.accountId);
      const changed = nextEvent(alice, 'identityChanged');
      const got = nextEvent(bob2, 'message');
      const sent = await alice.sendText(BOB, 'after');
      assert.equal(sent.status, 'sent');
      const change = await changed;
      assert.equal(change.accountId, bob.accountId);
      assert.equal(change.status, 'unverified');
      assert.equal(change.number, BOB);
      assert.equal((await got).message.body, 'after');
      assert.notEqual((await alice.safetyNumber(BOB)).digits, before);
    } finally {
      await alice.close();
      await bob2.close();
    }
  });

  it('tells the receiver when a message arrives from a new identity', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    await bob.sendText(ALICE, 'first');
    await bob.close();
    const bob2 = await connectedClient(fake, BOB);
    try {
      const changed = nextEvent(alice, 'identityChanged');
      const got = nextEvent(alice, 'message', (e) => e.message.body === 'from the new phone');
      await bob2.sendText(ALICE, 'from the new phone');
      assert.equal((await changed).accountId, bob.accountId);
      await got;
    } finally {
      await alice.close();
      await bob2.close();
    }
  });

  it('blocks sending to a verified contact whose key changed, until it is verified again', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    await alice.sendText(BOB, 'hi');
    await alice.markVerified(BOB);
    await bob.close();
    const bob2Store = await registerOn(fake, BOB);
    const bob2 = await Client.open(testOptions(fake, bob2Store));
    bob2.connect();
    try {
      const changed = nextEvent(alice, 'identityChanged');
      await assert.rejects(alice.sendText(BOB, 'blocked'), (e: unknown) => ClientError.is(e, ClientErrorCode.IdentityNotVerified));
      assert.equal((await changed).status, 'verification-required');
      const blocked = (await alice.messages(BOB)).find((m) => m.body === 'blocked');
      assert.equal(blocked?.status, 'failed');
      const sn = await alice.safetyNumber(BOB);
      assert.equal(sn.status, 'verification-required');
      await alice.markVerified(BOB, sn.identityKey);
      const got = nextEvent(bob2, 'message');
      assert.equal((await alice.sendText(BOB, 'verified again')).status, 'sent');
      assert.equal((await got).message.body, 'verified again');
    } finally {
      await alice.close();
      await bob2.close();
    }
  });
});
