// The storage contract: one set of cases run against every backend of src/server/storage (as Hono runs one
// router suite against each router): SQLite in storage-sqlite.test.ts, PostgreSQL in
// storage-postgres.test.ts. They pin the semantics the services rely on: atomic re-registration, one-time
// keys claimed once, queue order, limits, idempotency, expiry, code attempts, fan-out stored once. The
// cases that name a `peer` run the same operations concurrently from a second Storage on the same
// database (a second server node); a backend that one process owns alone (SQLite) hands back its one
// instance, and the cases still check concurrency within it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountId, DeviceId, DeviceRef, GroupId, PhoneNumber } from '../../../src/server/ids.ts';
import { PINNED_BLOB_TIME, type BackupStore, type StoredBackup } from '../../../src/server/storage/backup-store.ts';
import type {
  FanOutEnvelope,
  GroupRecord,
  InsertResult,
  NewDeviceList,
  NewEnvelope,
  NewLinkedDevice,
  NewRegistration,
  RegistrationResult,
  Storage,
  StoredEnvelope,
} from '../../../src/server/storage/stores.ts';

/** One backend's database for the suite. */
export interface StorageHarness {
  /** The Storage the cases use (replaced by {@link reopen}). */
  readonly storage: Storage;
  /** Closes the current Storage and opens the same database again (durability). */
  reopen(): Promise<Storage>;
  /** Another Storage on the same database, as a second node would have (or the same one, see the top). */
  peer(): Promise<Storage>;
  /** How many once-stored fan-out contents (payloads) the database holds, read on a separate connection. */
  payloads(): Promise<number>;
  /** The backup metadata store on the current Storage's database (kept apart from `Storage` for now). */
  backups(): BackupStore;
  /** Closes every Storage and deletes the database; runs even when a case failed. */
  cleanup(): Promise<void>;
}

/** The options of node:test's `describe` that the suite passes on (a skip without the service). */
export interface ContractOptions {
  readonly skip?: string | boolean;
}

const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);
/** `value` with every byte array (a backend may return Buffers) as a plain Uint8Array, for deepEqual. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}
const key = (id: number) => ({ id, publicKey: bytes(33, id % 256), signature: bytes(64, 7) });
/** Ids in ascending order, undefined last. */
const sortIds = (ids: readonly (number | undefined)[]): (number | undefined)[] =>
  [...ids].sort((x, y) => (x === undefined ? 1 : y === undefined ? -1 : x - y));
const storedSeqs = (results: readonly InsertResult[]): number[] => results.flatMap((r) => (r.kind === 'stored' ? r.envelopes.map((e) => e.seq) : []));
const ascending = (xs: readonly number[]): number[] => [...xs].sort((x, y) => x - y);

function registration(number: string, id: string, now = 1000): NewRegistration {
  return {
    newAccountId: id as AccountId,
    number: number as PhoneNumber,
    identityKey: bytes(33, 5),
    registrationId: 42,
    passwordHash: bytes(32, 9),
    deviceName: new Uint8Array(),
    signedPreKey: key(1),
    kyberLastResortKey: key(1000),
    now,
  };
}

function envelope(ref: DeviceRef, n: number, at = 1000): NewEnvelope {
  return {
    ref,
    guid: bytes(16, n % 256),
    type: 2,
    sourceAccountId: 'src' as AccountId,
    sourceDeviceId: 1 as DeviceId,
    destinationDeviceId: 1 as DeviceId,
    timestamp: at,
    serverTimestamp: at,
    content: bytes(20, n % 256),
  };
}

function fanOut(n: number, at = 1000): FanOutEnvelope {
  return { type: 7, sourceAccountId: 'src' as AccountId, sourceDeviceId: 1 as DeviceId, timestamp: at, serverTimestamp: at, content: bytes(300, n), groupId: GROUP as GroupId };
}

function group(members: readonly string[], revision = 0): GroupRecord {
  return {
    id: GROUP as GroupId,
    revision,
    settings: { adminsManageMembers: true, adminsEditInfo: false, adminsSend: false },
    attributes: bytes(10, revision),
    inviteHash: undefined,
    createdAt: 1000,
    creator: members[0] as AccountId,
    members: members.map((accountId, i) => ({ accountId: accountId as AccountId, admin: i === 0, joinedAt: 1000, joinedRevision: 0 })),
  };
}

const GROUP = '0123456789abcdef0123456789abcdef';
const ACCOUNT_A = '00000000-0000-4000-8000-00000000000a';
const ACCOUNT_B = '00000000-0000-4000-8000-00000000000b';
const ACCOUNT_C = '00000000-0000-4000-8000-00000000000c';
const ACCOUNT_D = '00000000-0000-4000-8000-00000000000d';
const ACCOUNT_E = '00000000-0000-4000-8000-00000000000e';
/** Further accounts of the concurrency cases. */
const account = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Registers the suite `storage contract: <name>`; `open` creates a fresh database for it. */
export function storageContract(name: string, open: () => Promise<StorageHarness>, options: ContractOptions = {}): void {
  describe(`storage contract: ${name}`, options, () => {
    let env: StorageHarness | undefined;
    let s: Storage;
    let a: RegistrationResult;
    let b: RegistrationResult;
    before(async () => {
      env = await open();
      s = env.storage;
      a = await s.accounts.register(registration('+15550100001', ACCOUNT_A));
      b = await s.accounts.register(registration('+15550100002', ACCOUNT_B));
    });
    after(async () => {
      await env?.cleanup();
    });
    const harness = (): StorageHarness => {
      assert.ok(env !== undefined, 'the backend opened');
      return env;
    };

    it('registers accounts with device 1 and finds them by id and number', async () => {
      assert.equal(a.reregistered, false);
      assert.equal(a.device.deviceId, 1);
      assert.equal((await s.accounts.byNumber('+15550100001' as PhoneNumber))?.id, ACCOUNT_A);
      assert.equal((await s.accounts.byId(ACCOUNT_B as AccountId))?.number, '+15550100002');
      assert.equal((await s.accounts.device(ACCOUNT_A as AccountId, 1 as DeviceId))?.ref, a.device.ref);
      assert.equal(await s.accounts.device(ACCOUNT_A as AccountId, 2 as DeviceId), undefined);
      assert.equal(await s.accounts.byNumber('+15550100009' as PhoneNumber), undefined);
    });

    it('claims one-time keys once each, lowest first, with the Kyber last-resort fallback', async () => {
      const ref = a.device.ref;
      assert.deepEqual(await s.keys.setKeys(ref, { preKeys: [key(3), key(2)], kyberPreKeys: [key(50)] }, 10, 2000), { ok: true });
      assert.deepEqual(await s.keys.status(ref), { preKeys: 2, kyberPreKeys: 1, signedPreKeyUploadedAt: 1000 });
      // Concurrent claims may run in any order (on a pool, on any connection): compare as sets.
      const claims = await Promise.all([s.keys.claim([ref]), s.keys.claim([ref]), s.keys.claim([ref])]);
      assert.deepEqual(sortIds(claims.map(([c]) => c?.preKey?.id)), [2, 3, undefined]);
      assert.deepEqual(sortIds(claims.map(([c]) => c?.kyberPreKey?.id)), [50, 1000, 1000]);
      assert.deepEqual(claims.map(([c]) => c?.signedPreKey?.id), [1, 1, 1]);
      // One after the other: lowest id first.
      await s.keys.setKeys(ref, { preKeys: [key(7), key(5), key(6)], kyberPreKeys: [key(61), key(60)] }, 10, 2000);
      const inTurn = [];
      for (let i = 0; i < 3; i++) inTurn.push((await s.keys.claim([ref]))[0]);
      assert.deepEqual(inTurn.map((c) => [c?.preKey?.id, c?.kyberPreKey?.id]), [[5, 60], [6, 61], [7, 1000]]);
      assert.deepEqual(plain(inTurn[0]?.preKey?.publicKey), bytes(33, 5));
    });

    it('refuses an upload past the stored limit as a whole', async () => {
      const ref = b.device.ref;
      assert.deepEqual(await s.keys.setKeys(ref, { preKeys: [key(1), key(2)], kyberPreKeys: [], signedPreKey: key(9) }, 2, 3000), { ok: true });
      assert.deepEqual(await s.keys.setKeys(ref, { preKeys: [key(3)], kyberPreKeys: [], signedPreKey: key(10) }, 2, 4000), { ok: false, reason: 'too-many-keys' });
      assert.deepEqual(await s.keys.status(ref), { preKeys: 2, kyberPreKeys: 0, signedPreKeyUploadedAt: 3000 });
    });

    it('queues envelopes durably, in order, and deletes only from the owning queue', async () => {
      const ref = b.device.ref;
      const result = await s.messages.insert([envelope(ref, 1), envelope(ref, 2), envelope(ref, 3)], { maxQueueDepth: 100, now: 1000 });
      assert.equal(result.kind, 'stored');
      const seqs = result.kind === 'stored' ? result.envelopes.map((e) => e.seq) : [];
      assert.ok((seqs[0] ?? 0) < (seqs[1] ?? 0) && (seqs[1] ?? 0) < (seqs[2] ?? 0));
      // Durable: a fresh handle (after a close and reopen) sees them.
      s = await harness().reopen();
      const page = await s.messages.page(ref, 0, 10, 0);
      assert.deepEqual(page.map((e) => e.content[0]), [1, 2, 3]);
      assert.deepEqual((await s.messages.page(ref, seqs[0] ?? 0, 1, 0)).map((e) => e.seq), [seqs[1]]);
      await s.messages.remove(a.device.ref, seqs[0] ?? 0);
      assert.equal(await s.messages.depth(ref), 3, "another device's delete does nothing");
      await s.messages.remove(ref, seqs[0] ?? 0);
      assert.equal(await s.messages.depth(ref), 2);
      assert.equal(await s.messages.totalDepth(), 2);
    });

    it('enforces the queue limit for the whole send, and idempotency keys', async () => {
      const current = await s.messages.depth(b.device.ref);
      const full = await s.messages.insert([envelope(b.device.ref, 4), envelope(b.device.ref, 5)], { maxQueueDepth: current + 1, now: 1000 });
      assert.equal(full.kind, 'queue-full');
      assert.equal(await s.messages.depth(b.device.ref), current);
      const idem = { scope: 'x.1', key: bytes(16, 3) };
      const first = await s.messages.insert([envelope(b.device.ref, 6)], { maxQueueDepth: 100, idempotency: idem, now: 1000 });
      const again = await s.messages.insert([envelope(b.device.ref, 7)], { maxQueueDepth: 100, idempotency: idem, now: 1000 });
      assert.equal(first.kind, 'stored');
      assert.deepEqual(again, { kind: 'duplicate', stored: 1 });
      assert.equal(await s.messages.depth(b.device.ref), current + 1);
    });

    it('expires envelopes and idempotency keys by time', async () => {
      const ref = b.device.ref;
      await s.messages.insert([envelope(ref, 8, 50_000)], { maxQueueDepth: 100, now: 50_000 });
      assert.equal((await s.messages.page(ref, 0, 100, 10_000)).length, 1, 'page skips envelopes before notBefore');
      const before = await s.messages.depth(ref);
      const removed = await s.messages.expire(10_000, 10_000);
      assert.equal(removed, before - 1);
      assert.equal(await s.messages.depth(ref), 1);
    });

    it('re-registers atomically: same id, new identity, old devices with keys and queues gone', async () => {
      const again = await s.accounts.register({ ...registration('+15550100002', 'unused'), identityKey: bytes(33, 6), now: 9000 });
      assert.equal(again.account.id, ACCOUNT_B);
      assert.equal(again.reregistered, true);
      assert.deepEqual(again.removedDevices, [b.device.ref]);
      assert.ok(again.device.ref > b.device.ref, 'a new device ref');
      assert.deepEqual([...((await s.accounts.byId(ACCOUNT_B as AccountId))?.identityKey ?? [])], [...bytes(33, 6)]);
      assert.equal(await s.messages.depth(b.device.ref), 0);
      assert.deepEqual((await s.keys.status(b.device.ref)).preKeys, 0);
      const late = await s.messages.insert([envelope(b.device.ref, 9)], { maxQueueDepth: 100, now: 9000 });
      assert.equal(late.kind, 'device-gone', 'an insert for a deleted device stores nothing');
    });

    it('stores fan-out content once; each ack deletes only its own row; the last reference frees it', async () => {
      const c = await s.accounts.register(registration('+15550100003', ACCOUNT_C));
      const d = await s.accounts.register(registration('+15550100004', ACCOUNT_D));
      const recipients = [c, d].map((r, i) => ({ ref: r.device.ref, deviceId: r.device.deviceId, guid: bytes(16, 40 + i) }));
      const before = (await harness().payloads());
      const result = await s.messages.insertFanOut(fanOut(11), recipients, { maxQueueDepth: 100, now: 1000 });
      assert.equal(result.kind, 'stored');
      const stored = result.kind === 'stored' ? result.envelopes : [];
      assert.equal(stored.length, 2);
      assert.equal((await harness().payloads()), before + 1, 'one payload for two queue rows');
      const [pageC] = await s.messages.page(c.device.ref, 0, 10, 0);
      assert.deepEqual([pageC?.content.length, pageC?.content[0], pageC?.groupId, pageC?.guid[0]], [300, 11, GROUP, 40]);
      await s.messages.remove(c.device.ref, stored[0]?.seq ?? 0);
      assert.equal(await s.messages.depth(c.device.ref), 0);
      assert.equal((await s.messages.page(d.device.ref, 0, 10, 0))[0]?.content[0], 11, "the other device's copy is intact");
      assert.equal((await harness().payloads()), before + 1);
      await s.messages.remove(d.device.ref, stored[1]?.seq ?? 0);
      assert.equal((await harness().payloads()), before, 'freed with its last queue row');
    });

    it('fan-out: all or nothing at a full queue, idempotent, freed by expiry and by device deletion', async () => {
      const c = await s.accounts.byId(ACCOUNT_C as AccountId);
      assert.ok(c !== undefined);
      const [dc] = await s.accounts.devices(ACCOUNT_C as AccountId);
      const [dd] = await s.accounts.devices(ACCOUNT_D as AccountId);
      assert.ok(dc !== undefined && dd !== undefined);
      const recipients = [dc, dd].map((r, i) => ({ ref: r.ref, deviceId: r.deviceId, guid: bytes(16, 50 + i) }));
      const before = (await harness().payloads());
      await s.messages.insert([envelope(dd.ref, 1)], { maxQueueDepth: 100, now: 1000 });
      assert.equal((await s.messages.insertFanOut(fanOut(12), recipients, { maxQueueDepth: 1, now: 1000 })).kind, 'queue-full');
      assert.deepEqual([await s.messages.depth(dc.ref), await s.messages.depth(dd.ref), (await harness().payloads())], [0, 1, before], 'nothing stored');
      const idem = { scope: 'y.1', key: bytes(16, 9) };
      assert.equal((await s.messages.insertFanOut(fanOut(13, 2000), recipients, { maxQueueDepth: 100, idempotency: idem, now: 2000 })).kind, 'stored');
      assert.deepEqual(await s.messages.insertFanOut(fanOut(13, 2000), recipients, { maxQueueDepth: 100, idempotency: idem, now: 2000 }), { kind: 'duplicate', stored: 2 });
      assert.equal((await harness().payloads()), before + 1);
      await s.messages.insertFanOut(fanOut(14, 90_000), recipients, { maxQueueDepth: 100, now: 90_000 });
      assert.equal((await harness().payloads()), before + 2);
      await s.messages.expire(50_000, 0);
      assert.equal((await harness().payloads()), before + 1, 'expiry frees the payload of the expired rows');
      assert.equal((await s.messages.page(dc.ref, 0, 10, 0))[0]?.content[0], 14);
      await s.accounts.register({ ...registration('+15550100003', 'unused'), now: 95_000 });
      assert.equal((await harness().payloads()), before + 1, "the other device still holds it");
      await s.accounts.register({ ...registration('+15550100004', 'unused'), now: 95_000 });
      assert.equal((await harness().payloads()), before, 'deleting the last device that held it frees it');
    });

    it('groups: apply writes state and notices in one transaction; a refusal writes nothing', async () => {
      const members = [ACCOUNT_C, ACCOUNT_D].sort();
      const created = await s.groups.apply(GROUP as GroupId, (current) => {
        assert.equal(current, undefined);
        const next = group(members);
        return { kind: 'write', next, notices: [{ accounts: members as AccountId[], envelope: { ...fanOut(20), type: 9 } }], result: 'ok' };
      });
      assert.equal(created.result, 'ok');
      assert.equal(created.envelopes.length, 2, 'one notice per device of each account');
      assert.deepEqual((await s.groups.get(GROUP as GroupId))?.members.map((m) => m.accountId), members);
      assert.deepEqual(await s.groups.groupsOf(ACCOUNT_C as AccountId), [GROUP]);
      const devices = await s.groups.devices(GROUP as GroupId);
      assert.deepEqual(devices.map((d) => d.accountId), members, 'sorted by account id');
      await assert.rejects(
        s.groups.apply(GROUP as GroupId, () => {
          throw new Error('refused');
        }),
        /refused/,
      );
      const removed = await s.groups.apply(GROUP as GroupId, (current) => {
        assert.equal(current?.revision, 0);
        return { kind: 'write', next: group([members[0] as string], 1), notices: [], result: undefined };
      });
      assert.equal(removed.envelopes.length, 0);
      assert.deepEqual((await s.groups.get(GROUP as GroupId))?.members.length, 1);
      assert.deepEqual(await s.groups.groupsOf(members[1] as AccountId), []);
      const unchanged = await s.groups.apply(GROUP as GroupId, (current) => ({ kind: 'unchanged', result: current?.revision }));
      assert.equal(unchanged.result, 1);
    });

    it('groups: send checks, then queues once for every device but the sender; deleting the group drops its members', async () => {
      const [sender] = (await s.groups.devices(GROUP as GroupId));
      assert.ok(sender !== undefined);
      await s.groups.apply(GROUP as GroupId, (current) => ({ kind: 'write', next: group([sender.accountId, ACCOUNT_A], (current?.revision ?? 0) + 1), notices: [], result: 0 }));
      const send = (verify: () => void) =>
        s.groups.send({ groupId: GROUP as GroupId, senderRef: sender.ref, envelope: fanOut(30), options: { maxQueueDepth: 100, now: 1000 }, authorize: () => undefined, verify });
      const before = await s.messages.depth(a.device.ref);
      await assert.rejects(send(() => { throw new Error('digest'); }), /digest/);
      assert.equal(await s.messages.depth(a.device.ref), before, 'nothing stored');
      const sent = await send(() => undefined);
      assert.deepEqual(sent.kind === 'stored' ? sent.envelopes.map((e) => e.ref) : [], [a.device.ref]);
      const missing = await s.groups.send({ groupId: 'f'.repeat(32) as GroupId, senderRef: sender.ref, envelope: fanOut(31), options: { maxQueueDepth: 100, now: 1000 }, authorize: () => undefined, verify: () => undefined });
      assert.equal(missing.kind, 'not-found');
      await s.groups.apply(GROUP as GroupId, () => ({ kind: 'write', next: undefined, notices: [], result: 0 }));
      assert.equal(await s.groups.get(GROUP as GroupId), undefined);
      assert.deepEqual(await s.groups.groupsOf(ACCOUNT_A as AccountId), []);
    });

    it('checks verification codes: ok consumes, wrong counts, max attempts and expiry delete', async () => {
      const n = '+15550100005' as PhoneNumber;
      await s.verification.put({ number: n, codeHash: bytes(32, 1), expiresAt: 100, attempts: 0 });
      assert.equal(await s.verification.check(n, bytes(32, 2), 50, 3), 'wrong');
      assert.equal(await s.verification.check(n, bytes(32, 1), 50, 3), 'ok');
      assert.equal(await s.verification.check(n, bytes(32, 1), 50, 3), 'none', 'consumed');
      await s.verification.put({ number: n, codeHash: bytes(32, 1), expiresAt: 100, attempts: 0 });
      for (let i = 0; i < 3; i++) assert.equal(await s.verification.check(n, bytes(32, 2), 50, 3), 'wrong');
      assert.equal(await s.verification.check(n, bytes(32, 1), 50, 3), 'none', 'gone after 3 wrong attempts');
      await s.verification.put({ number: n, codeHash: bytes(32, 1), expiresAt: 100, attempts: 0 });
      assert.equal(await s.verification.check(n, bytes(32, 1), 100, 3), 'none', 'expired');
    });

    it('stores presence settings and the latest last-seen time', async () => {
      const id = ACCOUNT_A as AccountId;
      assert.deepEqual(await s.presence.get(id), { visibility: 'everyone', allowed: new Set(), lastSeen: 0 });
      await s.presence.setSettings(id, 'allowed', [ACCOUNT_B as AccountId, ACCOUNT_B as AccountId]);
      await s.presence.setLastSeen(id, 500);
      await s.presence.setLastSeen(id, 400);
      assert.deepEqual(await s.presence.get(id), { visibility: 'allowed', allowed: new Set([ACCOUNT_B]), lastSeen: 500 });
    });

    it('devices: reserves the lowest free id, links once per code, caps companions, removes with keys and queue', async () => {
      const e = await s.accounts.register(registration('+15550100005', ACCOUNT_E));
      const id = ACCOUNT_E as AccountId;
      const accountKey = bytes(33, 5);
      assert.deepEqual(plain(e.device.identityKey), accountKey, 'device 1 carries the account key');
      const code = (n: number) => bytes(32, 100 + n);
      assert.deepEqual(await s.devices.reserve(id, code(1), 600, 2, 0), { kind: 'reserved', deviceId: 2 });
      assert.deepEqual(await s.devices.reserve(id, code(2), 600, 2, 0), { kind: 'reserved', deviceId: 3 });
      assert.deepEqual(await s.devices.reserve(id, code(3), 600, 2, 0), { kind: 'full' }, 'pending codes count');
      assert.deepEqual(await s.devices.pendingCode(code(1), 10), { accountId: id, deviceId: 2, expiresAt: 600 });
      assert.equal(await s.devices.pendingCode(code(1), 600), undefined, 'expired');
      const link = (n: number, deviceId: number, extra: Partial<NewLinkedDevice> = {}): NewLinkedDevice => ({
        codeHash: code(n), accountId: id, deviceId: deviceId as DeviceId, accountKey, identityKey: bytes(33, 40 + n), identity: bytes(80, n),
        registrationId: 7, passwordHash: bytes(32, n), name: new Uint8Array(), signedPreKey: key(1), kyberLastResortKey: key(1000), maxCompanions: 2, now: 10, ...extra,
      });
      assert.deepEqual(await s.devices.link(link(1, 3)), { kind: 'invalid-code' }, 'the code reserved another id');
      assert.deepEqual(await s.devices.link(link(1, 2, { accountKey: bytes(33, 6) })), { kind: 'invalid-code' }, 'the account key changed');
      const results = await Promise.all([s.devices.link(link(1, 2)), s.devices.link(link(1, 2))]);
      assert.deepEqual(results.map((r) => r.kind).sort(), ['invalid-code', 'linked'], 'one code, one device, even in one batch');
      const linked = await s.accounts.device(id, 2 as DeviceId);
      assert.deepEqual(plain(linked?.identityKey), bytes(33, 41));
      assert.deepEqual(plain(linked?.identity), bytes(80, 1));
      assert.equal(linked?.listed, false, 'not listed until the list names it');
      assert.equal((await s.keys.status(linked?.ref)).signedPreKeyUploadedAt, 10);
      assert.equal((await s.devices.link(link(2, 3, { now: 700 }))).kind, 'invalid-code', 'expired code');

      // The list: versions increase, named devices must exist with that key, the flags follow.
      const list = (version: number, devices: [number, Uint8Array][], extra: Partial<NewDeviceList> = {}): NewDeviceList => ({
        version, signedList: bytes(10, version), devices: new Map(devices.map(([d, k]) => [d as DeviceId, k])), accountKey, now: 20, ...extra,
      });
      assert.deepEqual(await s.devices.putDeviceList(id, list(1, [[2, bytes(33, 99)]])), { kind: 'mismatch' }, 'wrong key');
      assert.deepEqual(await s.devices.putDeviceList(id, list(1, [[3, bytes(33, 41)]])), { kind: 'mismatch' }, 'no such device');
      assert.deepEqual(await s.devices.putDeviceList(id, list(1, [[2, bytes(33, 41)]], { accountKey: bytes(33, 6) })), { kind: 'mismatch' }, 'another account key');
      assert.equal(await s.devices.deviceList(id), undefined, 'refused lists stored nothing');
      assert.deepEqual(await s.devices.putDeviceList(id, list(3, [[2, bytes(33, 41)]])), { kind: 'stored' });
      assert.equal((await s.accounts.device(id, 2 as DeviceId))?.listed, true);
      assert.deepEqual(await s.devices.putDeviceList(id, list(3, [])), { kind: 'stale-version', current: 3 });
      assert.deepEqual(plain(await s.devices.deviceList(id)), { version: 3, signedList: bytes(10, 3), updatedAt: 20 });
      assert.deepEqual(await s.devices.putDeviceList(id, list(4, [])), { kind: 'stored' });
      assert.equal((await s.accounts.device(id, 2 as DeviceId))?.listed, false);

      const ref = linked?.ref;
      await s.messages.insert([envelope(ref, 1)], { maxQueueDepth: 100, now: 1000 });
      assert.equal(await s.devices.remove(id, 1 as DeviceId), undefined, 'never device 1');
      assert.equal(await s.devices.remove(id, 2 as DeviceId), ref);
      assert.equal(await s.devices.remove(id, 2 as DeviceId), undefined);
      assert.equal(await s.accounts.device(id, 2 as DeviceId), undefined);
      assert.equal(await s.messages.depth(ref), 0, 'queue gone');
      assert.equal((await s.keys.status(ref)).signedPreKeyUploadedAt, 0, 'keys gone');
      assert.deepEqual(await s.devices.reserve(id, code(4), 900, 2, 10), { kind: 'reserved', deviceId: 2 }, 'the id is free again');
      assert.equal(await s.devices.expire(900), 3, 'the used code and the two others, all expired by then');

      // Re-registration drops companions, codes and the list.
      await s.devices.reserve(id, code(5), 5000, 4, 10);
      await s.accounts.register({ ...registration('+15550100005', 'unused'), identityKey: bytes(33, 8) });
      assert.equal(await s.devices.deviceList(id), undefined);
      assert.equal(await s.devices.pendingCode(code(5), 10), undefined);
    });

    it('provisioning messages: replaced by a new put, taken once, expire', async () => {
      const linkId = 'ab'.repeat(16);
      assert.equal(await s.provisioning.take(linkId, 0), undefined);
      await s.provisioning.put(linkId, bytes(10, 1), 100);
      await s.provisioning.put(linkId, bytes(10, 2), 100);
      const [first, second] = await Promise.all([s.provisioning.take(linkId, 50), s.provisioning.take(linkId, 50)]);
      assert.deepEqual(plain([first, second].filter((b) => b !== undefined)), [bytes(10, 2)], 'taken exactly once');
      await s.provisioning.put(linkId, bytes(10, 3), 100);
      assert.equal(await s.provisioning.take(linkId, 100), undefined, 'expired');
      await s.provisioning.put(linkId, bytes(10, 4), 100);
      assert.equal(await s.provisioning.expire(100), 1);
      assert.equal(await s.provisioning.take(linkId, 0), undefined);
    });

    it('blob index: quota per uploader checked on add, re-adding restarts expiry, expire returns ids', async () => {
      const acct = ACCOUNT_A as AccountId;
      const blob = (n: number, size: number, at = 1000) => ({ id: String(n).padStart(64, '0'), accountId: acct, size, createdAt: at });
      assert.deepEqual(await s.blobs.add(blob(1, 600), 1000), { kind: 'added' });
      assert.deepEqual(await s.blobs.add(blob(2, 500), 1000), { kind: 'quota' });
      assert.equal(await s.blobs.get(blob(2, 500).id, 0), undefined);
      assert.deepEqual(await s.blobs.add({ ...blob(1, 600), accountId: ACCOUNT_B as AccountId, createdAt: 5000 }, 1000), { kind: 'exists', record: blob(1, 600, 5000) });
      assert.equal(await s.blobs.usage(acct, 0), 600);
      assert.deepEqual(await s.blobs.get(blob(1, 600).id, 5000), blob(1, 600, 5000));
      assert.equal(await s.blobs.get(blob(1, 600).id, 5001), undefined, 'older than notBefore');
      assert.deepEqual(await s.blobs.expire(5000), [], 'its expiry restarted');
      assert.deepEqual(await s.blobs.expire(5001), [blob(1, 600).id]);
      assert.equal(await s.blobs.usage(acct, 0), 0);
    });

    it('two instances register one number at once: one account with one device 1', async () => {
      const peer = await harness().peer();
      const [first, second] = await Promise.all([
        s.accounts.register(registration('+15550100020', account(20), 2000)),
        peer.accounts.register({ ...registration('+15550100020', account(21), 2000), identityKey: bytes(33, 21) }),
      ]);
      assert.equal(first.account.id, second.account.id, 'the number keeps one account id');
      assert.deepEqual([first.reregistered, second.reregistered].sort(), [false, true]);
      const winner = first.reregistered ? first : second;
      const loser = first.reregistered ? second : first;
      assert.deepEqual(winner.removedDevices, [loser.device.ref]);
      const devices = await peer.accounts.devices(first.account.id);
      assert.deepEqual(devices.map((d) => d.ref), [winner.device.ref]);
      assert.deepEqual(plain((await s.accounts.byId(first.account.id))?.identityKey), plain(winner.account.identityKey));
    });

    it('two instances claim one-time keys at once: every key is handed out exactly once', async () => {
      const peer = await harness().peer();
      const f = await s.accounts.register(registration('+15550100021', account(22)));
      const ref = f.device.ref;
      const ids = Array.from({ length: 40 }, (_, i) => 100 + i);
      await s.keys.setKeys(ref, { preKeys: ids.map(key), kyberPreKeys: ids.map((id) => key(id + 1000)) }, 100, 1000);
      const claims = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? s : peer).keys.claim([ref])));
      const pre = claims.map(([c]) => c?.preKey?.id);
      assert.deepEqual(sortIds(pre.filter((id) => id !== undefined)), ids, 'each one-time key once, none lost');
      assert.equal(pre.filter((id) => id === undefined).length, 20);
      const kyber = claims.map(([c]) => c?.kyberPreKey?.id);
      assert.deepEqual(sortIds(kyber.filter((id) => id !== 1000)), ids.map((id) => id + 1000), 'each one-time Kyber key once');
      assert.equal(kyber.filter((id) => id === 1000).length, 20, 'then the last-resort key');
      assert.deepEqual(await peer.keys.status(ref), { preKeys: 0, kyberPreKeys: 0, signedPreKeyUploadedAt: 1000 });
    });

    it('two instances insert into one queue at once: seqs unique, page order is seq order, sends keep their order', async () => {
      const peer = await harness().peer();
      const g = await s.accounts.register(registration('+15550100022', account(23)));
      const ref = g.device.ref;
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? s : peer).messages.insert([envelope(ref, 2 * i), envelope(ref, 2 * i + 1)], { maxQueueDepth: 1000, now: 1000 })),
      );
      const seqs = storedSeqs(results);
      assert.equal(seqs.length, 80);
      assert.equal(new Set(seqs).size, 80, 'no seq twice');
      for (const r of results) {
        assert.ok(r.kind === 'stored' && (r.envelopes[0]?.seq ?? 0) < (r.envelopes[1]?.seq ?? 0), "a send's envelopes in its order");
      }
      const page = await s.messages.page(ref, 0, 1000, 0);
      assert.deepEqual(page.map((e) => e.seq), ascending(seqs));
      const contentBySeq = new Map(results.flatMap((r) => (r.kind === 'stored' ? r.envelopes.map((e) => [e.seq, e.content[0]] as const) : [])));
      assert.ok(page.every((e) => e.content[0] === contentBySeq.get(e.seq)), 'each seq holds the envelope it was returned for');
      const cursor = page[39]?.seq ?? 0;
      assert.deepEqual((await peer.messages.page(ref, cursor, 1000, 0)).map((e) => e.seq), ascending(seqs).slice(40), 'a cursor sees exactly the later ones');
      assert.equal(await peer.messages.depth(ref), 80);
    });

    it('two instances: the queue limit and an idempotency key hold under concurrent sends', async () => {
      const peer = await harness().peer();
      const h = await s.accounts.register(registration('+15550100023', account(24)));
      const ref = h.device.ref;
      const limited = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? s : peer).messages.insert([envelope(ref, i)], { maxQueueDepth: 5, now: 1000 })));
      assert.equal(limited.filter((r) => r.kind === 'stored').length, 5);
      assert.equal(limited.filter((r) => r.kind === 'queue-full').length, 15);
      assert.equal(await s.messages.depth(ref), 5);
      const idempotency = { scope: `${account(24)}.1`, key: bytes(16, 77) };
      const sends = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? s : peer).messages.insert([envelope(ref, 50), envelope(ref, 51)], { maxQueueDepth: 100, idempotency, now: 1000 })),
      );
      assert.equal(sends.filter((r) => r.kind === 'stored').length, 1, 'one send stores');
      assert.deepEqual(sends.filter((r) => r.kind !== 'stored'), Array.from({ length: 9 }, () => ({ kind: 'duplicate', stored: 2 })));
      assert.equal(await s.messages.depth(ref), 7);
      const fanOutKey = { scope: `${account(24)}.1`, key: bytes(16, 78) };
      const recipients = [{ ref, deviceId: 1 as DeviceId, guid: bytes(16, 1) }];
      const fanOuts = await Promise.all([s, peer, s, peer].map((st) => st.messages.insertFanOut(fanOut(79), recipients, { maxQueueDepth: 100, idempotency: fanOutKey, now: 1000 })));
      assert.deepEqual(fanOuts.map((r) => r.kind).sort(), ['duplicate', 'duplicate', 'duplicate', 'stored']);
      assert.equal(await s.messages.depth(ref), 8);
    });

    it('two instances fan out to overlapping devices at once: every row stored, queues in order, payloads freed by the acks', async () => {
      const peer = await harness().peer();
      const devices = [];
      for (let i = 0; i < 3; i++) devices.push((await s.accounts.register(registration(`+1555010003${i}`, account(30 + i)))).device);
      const [x, y, z] = devices as [RegistrationResult['device'], RegistrationResult['device'], RegistrationResult['device']];
      const sets = [[x, y], [z, y], [y, z, x], [z, x]];
      const before = await harness().payloads();
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) => {
          const set = sets[i % sets.length] ?? [];
          const recipients = set.map((d, j) => ({ ref: d.ref, deviceId: d.deviceId, guid: bytes(16, i * 4 + j) }));
          return (i % 2 === 0 ? s : peer).messages.insertFanOut(fanOut(i), recipients, { maxQueueDepth: 1000, now: 1000 });
        }),
      );
      assert.ok(results.every((r) => r.kind === 'stored'));
      assert.equal(await harness().payloads(), before + 24, 'one payload per fan-out');
      const acks: Promise<void>[] = [];
      for (const d of devices) {
        const expected: StoredEnvelope[] = results.flatMap((r) => (r.kind === 'stored' ? r.envelopes.filter((e) => e.ref === d.ref) : []));
        const page = await peer.messages.page(d.ref, 0, 1000, 0);
        assert.deepEqual(page.map((e) => e.seq), ascending(expected.map((e) => e.seq)), 'every copy queued once, in seq order');
        assert.ok(page.every((e) => e.content.length === 300 && e.content[0] === expected.find((x2) => x2.seq === e.seq)?.content[0]));
        assert.equal(await s.messages.depth(d.ref), page.length);
        page.forEach((e, i) => acks.push((i % 2 === 0 ? s : peer).messages.remove(d.ref, e.seq)));
      }
      await Promise.all(acks);
      assert.equal(await harness().payloads(), before, 'the last ack of each fan-out freed its payload');
      assert.deepEqual(await Promise.all(devices.map((d) => s.messages.depth(d.ref))), [0, 0, 0]);
    });

    it('re-registration racing with sends and acks from two instances: every send is stored or refused, nothing is left behind', async () => {
      const peer = await harness().peer();
      const first = await s.accounts.register(registration('+15550100035', account(35)));
      const old = first.device.ref;
      const queued = await s.messages.insert([1, 2, 3, 4, 5, 6].map((n) => envelope(old, n)), { maxQueueDepth: 1000, now: 1000 });
      const seqs = storedSeqs([queued]);
      const payloadsBefore = await harness().payloads();
      const [sends, , again] = await Promise.all([
        Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? peer : s).messages.insert([envelope(old, 10 + i)], { maxQueueDepth: 1000, now: 1000 }))),
        Promise.all(seqs.map((seq, i) => (i % 2 === 0 ? s : peer).messages.remove(old, seq))),
        peer.accounts.register({ ...registration('+15550100035', 'unused'), now: 3000 }),
      ]);
      assert.ok(sends.every((r) => r.kind === 'stored' || r.kind === 'device-gone'), 'stored before the re-registration, or refused after it');
      assert.deepEqual(again.removedDevices, [old]);
      assert.equal(await s.messages.depth(old), 0);
      assert.deepEqual(await s.messages.page(old, 0, 100, 0), []);
      assert.equal(await harness().payloads(), payloadsBefore);
      assert.equal((await s.messages.insert([envelope(again.device.ref, 1)], { maxQueueDepth: 1000, now: 3000 })).kind, 'stored', 'the new device takes envelopes');
      assert.equal(await s.messages.depth(again.device.ref), 1);
    });

    it('expires a large backlog in full and keeps what is newer', async () => {
      const l = await s.accounts.register(registration('+15550100040', account(40)));
      const ref = l.device.ref;
      for (let batch = 0; batch < 12; batch++) {
        const result = await s.messages.insert(Array.from({ length: 1000 }, (_, i) => envelope(ref, batch * 1000 + i, 2000)), { maxQueueDepth: 20_000, now: 2000 });
        assert.equal(result.kind, 'stored');
      }
      await s.messages.insert([envelope(ref, 1, 500_000), envelope(ref, 2, 500_000), envelope(ref, 3, 500_000)], { maxQueueDepth: 20_000, now: 500_000 });
      assert.equal(await s.messages.depth(ref), 12_003);
      const total = await s.messages.totalDepth();
      const newer = 3;
      assert.equal(await s.messages.expire(100_000, 0), total - newer);
      assert.equal(await s.messages.depth(ref), 3);
      assert.equal(await s.messages.totalDepth(), 3);
      assert.deepEqual((await s.messages.page(ref, 0, 10, 0)).map((e) => e.content[0]), [1, 2, 3]);
    });

    it('blob quota holds under concurrent adds and upload reservations from two instances', async () => {
      const peer = await harness().peer();
      const blob = (acct: string, n: number, size: number) => ({ id: `${n}`.padStart(64, 'b'), accountId: acct as AccountId, size, createdAt: 1000 });
      const adds = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? s : peer).blobs.add(blob(account(50), i, 100), 500)));
      assert.deepEqual(adds.map((r) => r.kind).sort(), [...Array<string>(5).fill('added'), ...Array<string>(5).fill('quota')]);
      assert.equal(await peer.blobs.usage(account(50) as AccountId, 0), 500);
      const same = await Promise.all([s.blobs.add(blob(account(51), 99, 100), 1000), peer.blobs.add(blob(account(51), 99, 100), 1000)]);
      assert.deepEqual(same.map((r) => r.kind).sort(), ['added', 'exists']);
      assert.equal(await s.blobs.usage(account(51) as AccountId, 0), 100);
      const uploads = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? s : peer).blobs.createUpload({ id: `${i}`.padStart(32, 'c'), blobId: undefined, accountId: account(52) as AccountId, length: 100, updatedAt: 1000 }, 450, 0),
        ),
      );
      assert.equal(uploads.filter(Boolean).length, 4);
      assert.equal(await s.blobs.usage(account(52) as AccountId, 0), 400);
      const done = uploads.findIndex(Boolean);
      assert.deepEqual(await peer.blobs.completeUpload(`${done}`.padStart(32, 'c'), blob(account(52), 1000 + done, 100)), { kind: 'added' });
      assert.equal(await s.blobs.usage(account(52) as AccountId, 0), 400, 'completing moves the reservation to the blob');
    });

    it('backups: replacing pins the new blob and unpins the old, a slot keeps its count and lock, concurrent wrong proofs stop at the limit', async () => {
      const backups = harness().backups();
      const id = ACCOUNT_A as AccountId;
      const blobId = (n: number) => `${n}`.padStart(64, 'e');
      for (const n of [1, 2]) assert.equal((await s.blobs.add({ id: blobId(n), accountId: id, size: 10, createdAt: 1000 }, 1 << 30)).kind, 'added');
      const kdf = { algorithm: 'argon2id' as const, memoryKiB: 65536, iterations: 3, parallelism: 1 };
      const backup = (n: number, slotId: string): StoredBackup => ({
        accountId: id, blobId: blobId(n), size: 10, createdAt: 2000 + n, uploadedAt: 3000 + n, formatVersion: 1,
        password: { slotId, salt: bytes(16, n), kdf, verifier: bytes(32, 9), share: bytes(32, 8), failedAttempts: 0, lockedAt: undefined },
      });
      assert.equal(await backups.get(id), undefined);
      assert.deepEqual(await backups.put(backup(1, 'a'.repeat(32)), 5000), { replacedBlobId: undefined });
      assert.equal((await s.blobs.get(blobId(1), 0))?.createdAt, PINNED_BLOB_TIME, 'the current backup never expires');
      assert.deepEqual(await backups.recordFailure(id, 'a'.repeat(32), 5, 1), { attemptsLeft: 4, locked: false });
      assert.deepEqual(await backups.put(backup(2, 'a'.repeat(32)), 5000), { replacedBlobId: blobId(1) });
      assert.equal((await s.blobs.get(blobId(1), 0))?.createdAt, 5000, 'the replaced blob expires again');
      const current = await backups.get(id);
      assert.deepEqual(plain(current), plain({ ...backup(2, 'a'.repeat(32)), password: { ...backup(2, 'a'.repeat(32)).password, failedAttempts: 1 } }), 'the same slot keeps its count');
      const peerBackups = harness().backups();
      const attempts = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? backups : peerBackups).recordFailure(id, 'a'.repeat(32), 5, 7000)));
      assert.equal(attempts.filter((r) => !r.locked).length, 3, 'attempts 2 to 4 are counted, the 5th locks');
      assert.deepEqual(sortIds(attempts.filter((r) => !r.locked).map((r) => r.attemptsLeft)), [1, 2, 3]);
      const locked = await backups.get(id);
      assert.deepEqual([locked?.password?.share, locked?.password?.failedAttempts, locked?.password?.lockedAt], [undefined, 5, 7000]);
      await backups.put(backup(2, 'a'.repeat(32)), 5000);
      assert.equal((await backups.get(id))?.password?.share, undefined, 'a locked slot stays locked');
      await backups.put(backup(2, 'b'.repeat(32)), 5000);
      assert.deepEqual(plain((await backups.get(id))?.password?.share), bytes(32, 8), 'a new slot starts afresh');
      await backups.resetFailures(id, 'b'.repeat(32));
      assert.equal(await backups.delete(id, 6000), blobId(2));
      assert.equal((await s.blobs.get(blobId(2), 0))?.createdAt, 6000);
      assert.equal(await backups.get(id), undefined);
      assert.equal(await backups.delete(id, 6000), undefined);
    });

    it('sends made at once to one queue are stored in the order they were made; acks batched with sends delete', async () => {
      const ref = (await s.accounts.register(registration('+15550100060', account(60)))).device.ref;
      // All queued in one tick: a batching backend takes them in one or a few transactions.
      const first = await Promise.all(Array.from({ length: 60 }, (_, i) => s.messages.insert([envelope(ref, i)], { maxQueueDepth: 1000, now: 1000 })));
      const seqs = storedSeqs(first);
      assert.equal(seqs.length, 60);
      assert.ok(seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] ?? 0)), 'seqs follow the order of the calls');
      assert.deepEqual((await s.messages.page(ref, 0, 100, 0)).map((e) => e.content[0]), Array.from({ length: 60 }, (_, i) => i));
      // Acks of the even ones and ten more sends, all at once.
      const [, more] = await Promise.all([
        Promise.all(seqs.filter((_, i) => i % 2 === 0).map((seq) => s.messages.remove(ref, seq))),
        Promise.all(Array.from({ length: 10 }, (_, i) => s.messages.insert([envelope(ref, 100 + i)], { maxQueueDepth: 1000, now: 1000 }))),
      ]);
      const moreSeqs = storedSeqs(more);
      assert.ok(moreSeqs.every((seq, i) => seq > (i === 0 ? (seqs[59] ?? 0) : (moreSeqs[i - 1] ?? 0))), 'later sends come later, in call order');
      const page = await s.messages.page(ref, 0, 100, 0);
      assert.deepEqual(page.map((e) => e.content[0]), [...Array.from({ length: 30 }, (_, i) => 2 * i + 1), ...Array.from({ length: 10 }, (_, i) => 100 + i)]);
      assert.equal(await s.messages.depth(ref), 40);
    });

    it('a send the database refuses fails alone: the sends and acks made with it are stored, its key stays unused', async () => {
      const ref = (await s.accounts.register(registration('+15550100061', account(61)))).device.ref;
      const queued = await s.messages.insert([envelope(ref, 1)], { maxQueueDepth: 100, now: 1000 });
      const idempotency = { scope: `${account(61)}.1`, key: bytes(16, 61) };
      // NaN is no timestamp: the database refuses the row (a NOT NULL or a BIGINT), whatever the backend.
      const bad: NewEnvelope = { ...envelope(ref, 3), timestamp: Number.NaN };
      const outcomes = await Promise.allSettled([
        s.messages.insert([envelope(ref, 2)], { maxQueueDepth: 100, now: 1000 }),
        s.messages.insert([bad], { maxQueueDepth: 100, idempotency, now: 1000 }),
        s.messages.remove(ref, storedSeqs([queued])[0] ?? 0),
        s.messages.insert([envelope(ref, 4)], { maxQueueDepth: 100, now: 1000 }),
        s.messages.insertFanOut(fanOut(5), [{ ref, deviceId: 1 as DeviceId, guid: bytes(16, 5) }], { maxQueueDepth: 100, now: 1000 }),
      ]);
      assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
      assert.deepEqual(outcomes.map((o) => (o.status === 'fulfilled' ? (o.value?.kind ?? 'removed') : 'error')), ['stored', 'error', 'removed', 'stored', 'stored']);
      assert.deepEqual((await s.messages.page(ref, 0, 100, 0)).map((e) => e.content[0]), [2, 4, 5]);
      assert.equal(await s.messages.depth(ref), 3);
      const retried = await s.messages.insert([envelope(ref, 6)], { maxQueueDepth: 100, idempotency, now: 1000 });
      assert.equal(retried.kind, 'stored', 'the refused send did not consume its idempotency key');
    });

    it('close() commits the sends and acks still queued, and they survive the reopen', async () => {
      const ref = (await s.accounts.register(registration('+15550100062', account(62)))).device.ref;
      const queued = storedSeqs([await s.messages.insert([envelope(ref, 1), envelope(ref, 2), envelope(ref, 3)], { maxQueueDepth: 100, now: 1000 })]);
      const sends = Array.from({ length: 20 }, (_, i) => s.messages.insert([envelope(ref, 10 + i)], { maxQueueDepth: 100, now: 1000 }));
      const acks = [queued[0] ?? 0, queued[2] ?? 0].map((seq) => s.messages.remove(ref, seq));
      // Closed in the same tick: nothing has been committed yet.
      s = await harness().reopen();
      const results = await Promise.all(sends);
      await Promise.all(acks);
      assert.ok(results.every((r) => r.kind === 'stored'));
      assert.deepEqual((await s.messages.page(ref, 0, 100, 0)).map((e) => e.content[0]), [2, ...Array.from({ length: 20 }, (_, i) => 10 + i)]);
      assert.equal(await s.messages.depth(ref), 21);
    });

    it('what was acknowledged survives a reopen', async () => {
      const ref = (await s.accounts.device(account(40) as AccountId, 1 as DeviceId))?.ref;
      assert.ok(ref !== undefined);
      const stored = await s.messages.insert([envelope(ref, 9, 600_000)], { maxQueueDepth: 100, now: 600_000 });
      assert.equal(stored.kind, 'stored');
      s = await harness().reopen();
      assert.equal((await s.accounts.byNumber('+15550100040' as PhoneNumber))?.id, account(40));
      assert.deepEqual((await s.messages.page(ref, 0, 10, 0)).map((e) => e.content[0]), [1, 2, 3, 9]);
      assert.equal(await s.messages.depth(ref), 4);
      assert.equal(await s.blobs.usage(account(50) as AccountId, 0), 500);
    });
  });
}
