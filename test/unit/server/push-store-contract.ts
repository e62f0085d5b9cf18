// The push store contract (src/server/storage/push-store.ts): one set of cases for every backend, run by
// storage-sqlite.test.ts and storage-postgres.test.ts over the storage contract's harness. They pin what the
// push notifier relies on: one subscription per device, replaced in place; nothing stored for a device
// that does not exist; a delete that names an endpoint leaves a newer one alone; the subscription goes
// with its device (removed companion, re-registered number); and one VAPID key pair for every node,
// even when nodes start at once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountId, DeviceId, DeviceRef, PhoneNumber } from '../../../src/server/ids.ts';
import type { PushSubscriptionRecord } from '../../../src/server/storage/push-store.ts';
import type { NewRegistration } from '../../../src/server/storage/stores.ts';
import type { StorageHarness } from './storage-contract.ts';

/** One backend's database for the suite: the storage contract's harness (storage-contract.ts) serves. */
export type PushStoreHarness = Pick<StorageHarness, 'storage' | 'reopen' | 'peer' | 'cleanup'>;

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const key = (id: number) => ({ id, publicKey: bytes(33, id % 256), signature: bytes(64, 7) });

function registration(number: string, id: string): NewRegistration {
  return {
    newAccountId: id as AccountId, number: number as PhoneNumber, identityKey: bytes(33, 5), registrationId: 42, passwordHash: bytes(32, 9),
    deviceName: new Uint8Array(), signedPreKey: key(1), kyberLastResortKey: key(1000), now: 1000,
  };
}

function subscription(ref: DeviceRef, accountId: AccountId, n: number, at = 1000): PushSubscriptionRecord {
  return { ref, accountId, endpoint: `https://push.example.test/s/${n}`, p256dh: bytes(65, n), auth: bytes(16, n), updatedAt: at };
}

/** Plain data for deepEqual (a backend may hand back Buffers). */
const plain = (s: PushSubscriptionRecord | undefined): unknown =>
  s === undefined ? undefined : { ...s, p256dh: [...s.p256dh], auth: [...s.auth] };

/** Registers the suite for one backend; `open` makes a fresh database. */
export function pushStoreContract(name: string, open: () => Promise<PushStoreHarness>, options: { readonly skip?: string | boolean } = {}): void {
  describe(`push store contract: ${name}`, options, () => {
    let h: PushStoreHarness | undefined;
    before(async () => {
      h = await open();
    });
    after(async () => {
      await h?.cleanup();
    });
    const harness = (): PushStoreHarness => {
      assert.ok(h !== undefined);
      return h;
    };

    it('stores one subscription per device, replaces it, survives a reopen, and deletes by device or by endpoint', async () => {
      const s = harness().storage;
      const a = await s.accounts.register(registration('+15550200001', '00000000-0000-4000-8000-00000000a001'));
      const ref = a.device.ref;
      const id = a.account.id;
      assert.equal(await s.push.get(ref), undefined);
      assert.deepEqual(await s.push.put(subscription(ref, id, 1)), { kind: 'stored' });
      assert.deepEqual(plain(await s.push.get(ref)), plain(subscription(ref, id, 1)));
      assert.deepEqual(await s.push.put(subscription(ref, id, 2, 2000)), { kind: 'stored' });
      assert.deepEqual(plain(await s.push.get(ref)), plain(subscription(ref, id, 2, 2000)), 'replaced, not added');
      const reopened = await harness().reopen();
      assert.deepEqual(plain(await reopened.push.get(ref)), plain(subscription(ref, id, 2, 2000)), 'durable');
      assert.equal(await reopened.push.delete(ref, subscription(ref, id, 1).endpoint), false, 'an old endpoint does not delete the new one');
      assert.ok((await reopened.push.get(ref)) !== undefined);
      assert.equal(await reopened.push.delete(ref, subscription(ref, id, 2).endpoint), true);
      assert.equal(await reopened.push.get(ref), undefined);
      await reopened.push.put(subscription(ref, id, 3));
      assert.equal(await reopened.push.delete(ref), true);
      assert.equal(await reopened.push.delete(ref), false, 'nothing left');
    });

    it('stores nothing for a device that does not exist or belongs to another account', async () => {
      const s = harness().storage;
      const a = await s.accounts.register(registration('+15550200002', '00000000-0000-4000-8000-00000000a002'));
      assert.deepEqual(await s.push.put(subscription(987_654 as DeviceRef, a.account.id, 1)), { kind: 'device-gone' });
      assert.equal(await s.push.get(987_654 as DeviceRef), undefined);
      assert.deepEqual(await s.push.put(subscription(a.device.ref, '00000000-0000-4000-8000-00000000ffff' as AccountId, 1)), { kind: 'device-gone' });
      assert.equal(await s.push.get(a.device.ref), undefined);
    });

    it('a removed companion and the devices of a re-registered number lose their subscriptions', async () => {
      const s = harness().storage;
      const a = await s.accounts.register(registration('+15550200003', '00000000-0000-4000-8000-00000000a003'));
      const id = a.account.id;
      assert.deepEqual(await s.devices.reserve(id, bytes(32, 77), 10_000, 4, 0), { kind: 'reserved', deviceId: 2 });
      const linked = await s.devices.link({
        codeHash: bytes(32, 77), accountId: id, deviceId: 2 as DeviceId, accountKey: bytes(33, 5), identityKey: bytes(33, 41), identity: bytes(80, 1),
        registrationId: 7, passwordHash: bytes(32, 1), name: new Uint8Array(), signedPreKey: key(1), kyberLastResortKey: key(1000), maxCompanions: 4, now: 10,
      });
      assert.equal(linked.kind, 'linked');
      const companion = linked.kind === 'linked' ? linked.device.ref : (0 as DeviceRef);
      await s.push.put(subscription(a.device.ref, id, 1));
      await s.push.put(subscription(companion, id, 2));
      assert.equal(await s.devices.remove(id, 2 as DeviceId), companion);
      assert.equal(await s.push.get(companion), undefined, 'removed with its device');
      assert.ok((await s.push.get(a.device.ref)) !== undefined, 'the primary keeps its own');
      const again = await s.accounts.register(registration('+15550200003', '00000000-0000-4000-8000-00000000a0ff'));
      assert.equal(again.reregistered, true);
      assert.equal(await s.push.get(a.device.ref), undefined, 'gone with the old device 1');
      assert.equal(await s.push.get(again.device.ref), undefined, 'the new device 1 starts without one');
    });

    it('keeps the first VAPID key pair: later and concurrent candidates (from other nodes) get the stored one', async () => {
      const s = harness().storage;
      const peer = await harness().peer();
      const candidate = (n: number) => ({ publicKey: `public-${n}`, privateKey: `private-${n}` });
      const results = await Promise.all([s.push.vapidKeys(candidate(1), 1), peer.push.vapidKeys(candidate(2), 1), s.push.vapidKeys(candidate(3), 1)]);
      const [first] = results;
      assert.ok(first !== undefined);
      for (const r of results) assert.deepEqual(r, first, 'every node gets the same pair');
      assert.ok([1, 2, 3].some((n) => first.publicKey === `public-${n}` && first.privateKey === `private-${n}`), 'a candidate, whole');
      assert.deepEqual(await s.push.vapidKeys(candidate(4), 2), first, 'a later start keeps it');
      assert.deepEqual(await (await harness().reopen()).push.vapidKeys(candidate(5), 3), first, 'durable');
    });
  });
}
