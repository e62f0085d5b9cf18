// The backup routes against the real server (SQLite in a temporary folder, loopback HTTP): registration of a
// backup (its blob checked: stored, the account's, the declared size), metadata without verifier or share,
// the password unlock (right proof, wrong proofs counted, the share deleted at the limit, rate limited), the
// blob kept past its expiry while current and swept once replaced or deleted, metadata kept across
// and re-registration of the number. (Migration 13 is tested in migrations.test.ts.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { ATTEMPTS_LEFT_HEADER, LOCKED_HEADER } from '../../../src/server/services/backups.ts';
import { basic, register, type TestAccount } from '../../support/server-client.ts';
import { startBackupServer, type BackupServer } from './backup-support.ts';

const DAY = 24 * 3600_000;

interface Answer {
  status: number;
  code: string;
  headers: Headers;
  json: Record<string, unknown> | undefined;
}

async function call(url: string, verb: string, path: string, auth: TestAccount, body?: unknown): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method: verb,
    headers: { authorization: basic(auth), 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, code: res.headers.get('x-parley-error') ?? '', headers: res.headers, json: res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

async function putBlob(url: string, auth: TestAccount, bytes: Uint8Array): Promise<string> {
  const id = createHash('sha256').update(bytes).digest('hex');
  const res = await fetch(`${url}/v1/blobs/${id}`, { method: 'PUT', headers: { authorization: basic(auth) }, body: new Uint8Array(bytes) });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  return id;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const kdf = { algorithm: 'argon2id', memoryKiB: 7168, iterations: 5, parallelism: 1 };

function slot(authKey: Uint8Array, share: Uint8Array, slotId = hex(randomBytes(16))): Record<string, unknown> {
  return { slotId, salt: hex(randomBytes(16)), kdf, verifier: hex(createHash('sha256').update(authKey).digest()), share: hex(share) };
}

describe('backup routes', () => {
  let s: BackupServer;
  let alice: TestAccount;
  let bob: TestAccount;
  const authKey = randomBytes(32);
  const share = randomBytes(32);
  let slotId: string;
  let blob1: string;
  const file1 = randomBytes(5000);

  before(async () => {
    s = await startBackupServer({ backups: { maxAttempts: 4, unlockRate: { capacity: 1000, windowMs: 60_000 } } });
    alice = await register(s.url, '+15550100001', '111111');
    bob = await register(s.url, '+15550100002', '222222');
    blob1 = await putBlob(s.url, alice, file1);
  });
  after(() => s.close());

  it('no backup yet: 404', async () => {
    assert.equal((await call(s.url, 'GET', '/v1/backups/current', alice)).status, 404);
  });

  it('refuses a blob that is not there, another account\'s, another size, malformed fields', async () => {
    const base = { blobId: blob1, size: file1.length, createdAt: 1, formatVersion: 1 };
    assert.equal((await call(s.url, 'PUT', '/v1/backups', alice, { ...base, blobId: 'ab'.repeat(32) })).status, 404);
    assert.equal((await call(s.url, 'PUT', '/v1/backups', bob, base)).status, 403);
    assert.equal((await call(s.url, 'PUT', '/v1/backups', alice, { ...base, size: 4999 })).status, 400);
    assert.equal((await call(s.url, 'PUT', '/v1/backups', alice, { ...base, formatVersion: 2 })).status, 400);
    assert.equal((await call(s.url, 'PUT', '/v1/backups', alice, 'not json')).status, 400);
    assert.equal((await call(s.url, 'PUT', '/v1/backups', alice, { ...base, password: { ...slot(authKey, share), kdf: { ...kdf, memoryKiB: 1 << 22 } } })).status, 400);
    assert.equal((await call(s.url, 'PUT', '/v1/backups', alice, { ...base, password: { ...slot(authKey, share), share: 'abcd' } })).status, 400);
  });

  it('registers a backup with a password slot; the metadata never shows the verifier or the share', async () => {
    const password = slot(authKey, share);
    slotId = password.slotId as string;
    const put = await call(s.url, 'PUT', '/v1/backups', alice, { blobId: blob1, size: file1.length, createdAt: 123, formatVersion: 1, password });
    assert.equal(put.status, 200);
    const got = await call(s.url, 'GET', '/v1/backups/current', alice);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, { ...put.json, blobId: blob1, size: file1.length, createdAt: 123, uploadedAt: got.json?.uploadedAt, formatVersion: 1, password: { slotId, salt: password.salt, kdf, attemptsLeft: 4, locked: false } });
    const text = JSON.stringify(got.json);
    assert.ok(!text.includes(hex(share)) && !text.includes(password.verifier as string));
    // Bob sees only his own (none).
    assert.equal((await call(s.url, 'GET', '/v1/backups/current', bob)).status, 404);
  });

  it('the blob of the current backup outlives its 30-day expiry; a replaced one is swept', async () => {
    s.clock.advance(31 * DAY);
    await s.app.sweep();
    const res = await fetch(`${s.url}/v1/blobs/${blob1}`, { headers: { authorization: basic(bob) } });
    assert.equal(res.status, 200, 'another device (the new phone) can still download it');
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), new Uint8Array(file1));
    const file2 = randomBytes(3000);
    const blob2 = await putBlob(s.url, alice, file2);
    const password = slot(authKey, share, slotId);
    assert.equal((await call(s.url, 'PUT', '/v1/backups', alice, { blobId: blob2, size: file2.length, createdAt: 456, formatVersion: 1, password })).status, 200);
    await s.app.sweep();
    assert.equal((await fetch(`${s.url}/v1/blobs/${blob1}`, { headers: { authorization: basic(alice) } })).status, 404, 'the replaced blob was swept');
    s.clock.advance(40 * DAY);
    await s.app.sweep();
    assert.equal((await fetch(`${s.url}/v1/blobs/${blob2}`, { headers: { authorization: basic(alice) } })).status, 200);
    blob1 = blob2;
  });

  it('re-registering the number keeps the backup metadata for the new device; the old credentials are gone', async () => {
    const old = alice;
    alice = await register(s.url, '+15550100001', '111111');
    assert.equal(alice.reregistered, true);
    assert.equal(alice.accountId, old.accountId);
    assert.equal((await call(s.url, 'GET', '/v1/backups/current', old)).status, 401);
    const got = await call(s.url, 'GET', '/v1/backups/current', alice);
    assert.equal(got.status, 200);
    assert.equal(got.json?.blobId, blob1);
  });

  it('releases the share for the right proof only; wrong proofs count down, the last deletes the share for good', async () => {
    const right = await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: hex(authKey) });
    assert.equal(right.status, 200);
    assert.equal(right.json?.share, hex(share));
    assert.equal((await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId: hex(randomBytes(16)), proof: hex(authKey) })).status, 404);
    assert.equal((await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: 'zz' })).status, 400);
    for (const left of [3, 2, 1]) {
      const wrong = await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: hex(randomBytes(32)) });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.code, 'SERVER_FORBIDDEN');
      assert.equal(wrong.headers.get(ATTEMPTS_LEFT_HEADER), String(left));
      assert.equal(wrong.headers.get(LOCKED_HEADER), null);
    }
    // A right proof in between starts the count again.
    assert.equal((await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: hex(authKey) })).status, 200);
    for (let i = 0; i < 3; i++) await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: hex(randomBytes(32)) });
    const last = await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: hex(randomBytes(32)) });
    assert.equal(last.status, 403);
    assert.equal(last.headers.get(LOCKED_HEADER), 'true');
    const locked = await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: hex(authKey) });
    assert.equal(locked.status, 403);
    assert.equal(locked.headers.get(LOCKED_HEADER), 'true', 'even the right password is refused once locked');
    const meta = await call(s.url, 'GET', '/v1/backups/current', alice);
    assert.deepEqual((meta.json?.password as Record<string, unknown>).locked, true);
    // Registering the same slot again does not bring the share back; a new slot does.
    const file3 = randomBytes(100);
    const blob3 = await putBlob(s.url, alice, file3);
    await call(s.url, 'PUT', '/v1/backups', alice, { blobId: blob3, size: 100, createdAt: 789, formatVersion: 1, password: slot(authKey, share, slotId) });
    assert.equal((await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId, proof: hex(authKey) })).headers.get(LOCKED_HEADER), 'true');
    const fresh = slot(authKey, share);
    await call(s.url, 'PUT', '/v1/backups', alice, { blobId: blob3, size: 100, createdAt: 790, formatVersion: 1, password: fresh });
    assert.equal((await call(s.url, 'POST', '/v1/backups/current/unlock', alice, { slotId: fresh.slotId, proof: hex(authKey) })).status, 200);
    blob1 = blob3;
  });

  it('DELETE removes the metadata and lets the blob expire', async () => {
    assert.equal((await call(s.url, 'DELETE', '/v1/backups/current', alice)).status, 204);
    assert.equal((await call(s.url, 'GET', '/v1/backups/current', alice)).status, 404);
    assert.equal((await call(s.url, 'DELETE', '/v1/backups/current', alice)).status, 404);
    await s.app.sweep();
    assert.equal((await fetch(`${s.url}/v1/blobs/${blob1}`, { headers: { authorization: basic(alice) } })).status, 404);
  });
});

describe('backup unlock rate limit', () => {
  it('refuses more unlock attempts than the limit allows with 429, before counting them', async () => {
    const s = await startBackupServer({ backups: { maxAttempts: 10, unlockRate: { capacity: 3, windowMs: 60_000 } } });
    try {
      const carol = await register(s.url, '+15550100003', '333333');
      const bytes = randomBytes(64);
      const blobId = await putBlob(s.url, carol, bytes);
      const key = randomBytes(32);
      const password = slot(key, randomBytes(32));
      await call(s.url, 'PUT', '/v1/backups', carol, { blobId, size: 64, createdAt: 1, formatVersion: 1, password });
      for (let i = 0; i < 3; i++) assert.equal((await call(s.url, 'POST', '/v1/backups/current/unlock', carol, { slotId: password.slotId, proof: hex(randomBytes(32)) })).status, 403);
      const limited = await call(s.url, 'POST', '/v1/backups/current/unlock', carol, { slotId: password.slotId, proof: hex(key) });
      assert.equal(limited.status, 429);
      const meta = await call(s.url, 'GET', '/v1/backups/current', carol);
      assert.equal((meta.json?.password as Record<string, unknown>).attemptsLeft, 7);
    } finally {
      await s.close();
    }
  });
});
