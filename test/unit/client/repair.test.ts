// Sending when the recipient's device set changed (409, 410), when the server's answer is lost (the retry
// carries the same idempotency key and is stored once), and when the server asks to slow down (429).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, BOB, connectedClient, eventually } from './support.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';

describe('MessageSender repair and retries (fake server)', () => {
  it('refuses a device the server says is missing (409) when no signed device list names it, and sends once it is gone', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      await alice.sendText(BOB, 'one');
      const bobId = bob.accountId;
      // A device the server made up (the fake has no device lists): nothing may be encrypted to it.
      fake.addDevice(bobId, 2);
      await assert.rejects(alice.sendText(BOB, 'two'), (err: unknown) => ClientError.is(err, ClientErrorCode.UntrustedDevice));
      assert.equal(fake.queue(bobId, 2).length, 0, 'device 2 got nothing');
      assert.ok(fake.log.some((l) => l.path === `/v1/keys/${bobId}/2`), 'fetched the bundle of device 2');
      const two = (await alice.messages(BOB)).find((m) => m.body === 'two');
      assert.equal(two?.status, 'failed');
      fake.removeDevice(bobId, 2);
      const three = await alice.sendText(BOB, 'three');
      assert.equal(three.status, 'sent');
      assert.equal(fake.log.filter((l) => l.path === `/v1/messages/${bobId}` && l.status === 409).length, 1);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('starts a new session with a device that re-registered (410)', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      await alice.sendText(BOB, 'one');
      fake.setRegistrationId(bob.accountId, 1, 1234);
      await alice.sendText(BOB, 'two');
      assert.equal(fake.log.filter((l) => l.path === `/v1/messages/${bob.accountId}` && l.status === 410).length, 1);
      assert.equal(fake.log.filter((l) => l.path === `/v1/keys/${bob.accountId}/1`).length, 1);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('sends the same request again with the same idempotency key when the answer is lost: stored once', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    await bob.close(); // offline, so the queue shows what was stored
    try {
      await alice.sendText(BOB, 'warm-up');
      const bobId = bob.accountId;
      let lost = 0;
      fake.hooks.request = (r) => {
        if (r.path !== `/v1/messages/${bobId}` || lost > 0) return undefined;
        lost++;
        fake.route(r); // stored...
        setTimeout(() => fake.disconnectAll(), 5); // ...and the connection drops before the answer
        return new Promise<never>(() => undefined);
      };
      const sent = await alice.sendText(BOB, 'exactly once');
      assert.equal(sent.status, 'sent');
      assert.equal(lost, 1);
      assert.equal(fake.queue(bobId).length, 2, 'warm-up and one copy of the retried message');
    } finally {
      await alice.close();
    }
  });

  it('waits and retries on 429, and fails for good on 404', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      let limited = 0;
      fake.hooks.request = (r) => (r.path.startsWith('/v1/messages/') && limited++ < 2 ? { status: 429, code: 'SERVER_RATE_LIMITED', retryAfterMs: 10 } : undefined);
      assert.equal((await alice.sendText(BOB, 'after a pause')).status, 'sent');
      fake.hooks.request = (r) => (r.path.startsWith('/v1/messages/') ? { status: 404, code: 'SERVER_NOT_FOUND' } : undefined);
      await assert.rejects(alice.sendText(BOB, 'to nobody'), (e: unknown) => ClientError.is(e, ClientErrorCode.UnknownRecipient));
      const failed = (await alice.messages(BOB)).find((m) => m.body === 'to nobody');
      assert.equal(failed?.status, 'failed');
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('leaves a message pending when the server stays unreachable, and sends it on reconnect', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE, { send: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 2 } } });
    const bob = await connectedClient(fake, BOB);
    try {
      await alice.sendText(BOB, 'first');
      fake.online = false;
      fake.disconnectAll();
      await assert.rejects(alice.sendText(BOB, 'while down'), (e: unknown) => ClientError.is(e) && e.retryable);
      assert.equal((await alice.messages(BOB)).find((m) => m.body === 'while down')?.status, 'pending');
      fake.online = true;
      await eventually(async () => (await alice.messages(BOB)).find((m) => m.body === 'while down')?.status !== 'pending', 5_000, 'the resend');
      await eventually(async () => (await bob.messages(ALICE)).some((m) => m.body === 'while down'));
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
