// Prekeys: replenished when the server runs low, rotated by age, old ones deleted after the grace period.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../../src/client/client.ts';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, BOB, connectedClient, eventually, nextEvent, registerOn, testOptions } from './support.ts';

const DAY = 24 * 3600_000;

describe('key maintenance (fake server)', () => {
  it('uploads a new batch of one-time keys when the count drops below the threshold', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE, { maintainKeys: false });
    const bob = await connectedClient(fake, BOB, { maintainKeys: false });
    try {
      for (let i = 0; i < 4; i++) await bob.api.getKeys(alice.accountId, 1);
      assert.equal(fake.keyCounts(alice.accountId).preKeys, 1);
      const report = await alice.maintainKeys();
      assert.equal(report.uploadedPreKeys, 5);
      assert.equal(report.uploadedKyberPreKeys, 5);
      assert.equal(fake.keyCounts(alice.accountId).preKeys, 6);
      const again = await alice.maintainKeys();
      assert.equal(again.uploadedPreKeys, 0, 'nothing to do above the threshold');
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('replenishes by itself after PreKey messages used keys up', async () => {
    const fake = new FakeServer();
    const alice = await connectedClient(fake, ALICE);
    const bob = await connectedClient(fake, BOB);
    try {
      for (let i = 0; i < 3; i++) await bob.api.getKeys(alice.accountId, 1);
      const got = nextEvent(alice, 'message');
      await bob.sendText(ALICE, 'uses a prekey');
      await got;
      await eventually(() => fake.keyCounts(alice.accountId).preKeys > 5, 5_000, 'replenishment');
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  it('rotates the signed prekey and the last-resort Kyber key by age, and deletes old ones after the grace period', async () => {
    const fake = new FakeServer();
    const store = await registerOn(fake, ALICE);
    const before = fake;
    let now = Date.now();
    const client = await Client.open(testOptions(fake, store, { now: () => now, maintainKeys: false }));
    try {
      const accountId = client.accountId;
      const first = before.keyCounts(accountId);
      assert.equal((await client.maintainKeys()).rotatedSignedPreKey, false);
      now += 3 * DAY;
      const report = await client.maintainKeys();
      assert.equal(report.rotatedSignedPreKey, true);
      assert.equal(report.rotatedLastResortKey, true);
      const second = fake.keyCounts(accountId);
      assert.notEqual(second.signedPreKeyId, first.signedPreKeyId);
      assert.notEqual(second.lastResortId, first.lastResortId);
      // The old keys stay a while (late PreKey messages may name them) ...
      const kept = await store.transaction(async (tx) => ({ signed: await tx.signedPreKeys.list(), kyber: (await tx.kyberPreKeys.list()).filter((k) => k.lastResort) }));
      assert.equal(kept.signed.length, 2);
      assert.equal(kept.kyber.length, 2);
      // ... and go after the grace period (the current ones are rotated again meanwhile).
      now += 40 * DAY;
      await client.maintainKeys();
      const left = await store.transaction(async (tx) => ({ signed: await tx.signedPreKeys.list(), kyber: (await tx.kyberPreKeys.list()).filter((k) => k.lastResort) }));
      assert.deepEqual(left.signed.map((k) => k.id), [fake.keyCounts(accountId).signedPreKeyId]);
      assert.deepEqual(left.kyber.map((k) => k.id), [fake.keyCounts(accountId).lastResortId]);
    } finally {
      await client.close();
    }
  });
});
