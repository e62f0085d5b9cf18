// The SDK's backup verbs against the real server (with the backup routes, test/unit/server/backup-support.ts):
// set up with a password and a recovery key, back up (upload + an exported copy), the daemon's schedule makes
// the next one when it is due, re-register the number on a fresh store, a wrong password imports nothing and
// is counted, the right one restores everything, and the exported copy opens with the recovery key. Prints the
// Argon2id time and the backup and restore speed of 5,000 messages.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import WebSocket from 'ws';
import { Client } from '../../../src/client/client.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import type { AccountId, E164, MessageId } from '../../../src/client/ids.ts';
import { InMemoryMediaFiles } from '../../../src/client/media/memory-files.ts';
import { register } from '../../../src/client/registration.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { MessageRecord } from '../../../src/client/store/types.ts';
import type { FetchLike } from '../../../src/client/transport/http.ts';
import { DEFAULT_KDF, derivePasswordKeys } from '../../../src/client/backup/keys.ts';
import { MemoryBackupSink, type BackupResult } from '../../../src/client/backup/manager.ts';
import { startBackupSchedule } from '../../../src/cli/daemon/backup-schedule.ts';
import { startBackupServer, type BackupServer } from '../server/backup-support.ts';
import { crypto } from './support.ts';

const ALICE = '+15550100001';
const PEER = '33333333-3333-4333-8333-333333333333' as AccountId;
const LIGHT_KDF = { algorithm: 'argon2id', memoryKiB: 1024, iterations: 1, parallelism: 1 } as const;
const fetchLike = globalThis.fetch as unknown as FetchLike;

async function registered(s: BackupServer): Promise<{ client: Client; store: InMemoryClientStore; media: InMemoryMediaFiles }> {
  const store = new InMemoryClientStore();
  const media = new InMemoryMediaFiles();
  await register({ serverUrl: s.url, crypto, store, fetch: fetchLike, number: ALICE, code: '111111', keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  const client = await Client.open({ store, crypto, fetch: fetchLike, media, WebSocket: WebSocket, maintainKeys: false });
  return { client, store, media };
}

function message(i: number): MessageRecord {
  return {
    id: `${PEER}:${1_000 + i}` as MessageId,
    conversationId: PEER,
    senderId: PEER,
    direction: 'incoming',
    timestamp: 1_000 + i,
    serverTimestamp: 2_000 + i,
    receivedAt: 3_000 + i,
    kind: 'text',
    body: `message number ${i}: ${'lorem ipsum dolor sit amet '.repeat(2 + (i % 5))}`,
    quote: undefined,
    reactions: [],
    editedAt: undefined,
    deleted: false,
    viewOnce: false,
    expireTimer: 0,
    expiresAt: undefined,
    status: 'read',
    error: undefined,
    receipts: [],
    groupUpdate: undefined,
    attachments: [],
  };
}

describe('backups through the SDK', () => {
  let s: BackupServer;
  let exported: Uint8Array;
  let recoveryKey = '';
  let first: BackupResult;
  const COUNT = 5_000;

  before(async () => {
    s = await startBackupServer({ backups: { maxAttempts: 3, unlockRate: { capacity: 100, windowMs: 60_000 } } });
  });
  after(() => s.close());

  it('Argon2id with the default parameters takes about a second here', async (t) => {
    const started = performance.now();
    await derivePasswordKeys(crypto, 'a long enough password', new Uint8Array(16), DEFAULT_KDF);
    const ms = performance.now() - started;
    t.diagnostic(`Argon2id m=${DEFAULT_KDF.memoryKiB} KiB t=${DEFAULT_KDF.iterations} p=${DEFAULT_KDF.parallelism}: ${ms.toFixed(0)} ms`);
    assert.ok(ms > 50, 'not trivially cheap');
  });

  it('sets up, backs up (uploaded and exported), and the schedule makes the next backup when due', async (t) => {
    const { client, store } = await registered(s);
    await store.transaction(async (tx) => {
      await tx.contacts.put({ accountId: PEER, number: '+15550100003' as E164, numberVerified: true, expireTimer: 0, createdAt: 1, updatedAt: 1 });
      for (let i = 0; i < COUNT; i++) await tx.messages.put(message(i));
    });
    await assert.rejects(client.createBackup(), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument), 'not set up yet');
    ({ recoveryKey } = (await client.backups.setUp({ password: 'correct horse battery staple', recoveryKey: true, kdf: LIGHT_KDF })) as { recoveryKey: string });
    assert.match(recoveryKey, /^[0-9]{64}$/);
    const sink = new MemoryBackupSink();
    const phases = new Set<string>();
    const started = performance.now();
    first = await client.createBackup({ output: sink, onProgress: (p) => phases.add(p.phase) });
    const ms = performance.now() - started;
    exported = sink.bytes();
    t.diagnostic(`backup of ${COUNT} messages: ${ms.toFixed(0)} ms, ${first.size} bytes (${((COUNT / ms) * 1000).toFixed(0)} messages/s)`);
    assert.deepEqual([...phases].sort(), ['export', 'upload']);
    assert.equal(first.counts.messages, COUNT);
    assert.equal(exported.length, first.size);
    assert.equal(Buffer.from(sha256(exported)).toString('hex'), first.sha256);
    assert.deepEqual(first.protectedBy, ['recovery-key', 'password']);
    const status = await client.backupStatus();
    assert.equal(status.server?.blobId, first.sha256);
    assert.equal(status.server?.password?.attemptsLeft, 3);
    assert.equal(status.lastBackupAt, first.createdAt);
    assert.equal(status.nextBackupAt, undefined, 'no schedule yet');

    // The schedule: an hour after the last backup, a clock two hours on makes one at once.
    let backups = 0;
    const made = new Promise<BackupResult>((resolve) => {
      void startBackupSchedule(client, {
        everyMs: 3600_000,
        now: () => first.createdAt + 2 * 3600_000,
        onBackup: (r) => {
          backups++;
          resolve(r);
        },
        onError: (e) => assert.fail(String(e)),
      }).then((stop) => made.then(stop));
    });
    const second = await made;
    assert.equal(backups, 1);
    assert.notEqual(second.sha256, first.sha256);
    assert.equal((await client.backupStatus()).server?.blobId, second.sha256);
    assert.equal(await client.backups.nextDue(), second.createdAt + 3600_000);
    await client.close();
  });

  it('after re-registration: a wrong password imports nothing; the right one restores everything', async (t) => {
    const { client, store } = await registered(s);
    const status = await client.backupStatus();
    assert.equal(status.configured, false, 'the set-up stays with the old device');
    assert.ok(status.server, 'the new device sees the account\'s backup');
    await assert.rejects(client.restoreBackup({ password: 'wrong password!' }), (e: unknown) => ClientError.is(e, ClientErrorCode.WrongBackupKey) && /2 attempts left/.test(e.message));
    assert.deepEqual(await store.transaction((tx) => tx.messages.list(PEER)), []);
    const started = performance.now();
    const restored = await client.restoreBackup({ password: 'correct horse battery staple' });
    const ms = performance.now() - started;
    t.diagnostic(`restore of ${COUNT} messages: ${ms.toFixed(0)} ms (${((COUNT / ms) * 1000).toFixed(0)} messages/s)`);
    assert.equal(restored.imported.messages, COUNT);
    const messages = await store.transaction((tx) => tx.messages.list(PEER));
    assert.deepEqual(messages, Array.from({ length: COUNT }, (_, i) => message(i)));
    assert.equal((await client.backupStatus()).server?.password?.attemptsLeft, 3, 'a right password resets the count');
    await client.close();
  });

  it('the exported copy opens with the recovery key (no server share needed)', async () => {
    const { client, store } = await registered(s);
    await assert.rejects(
      client.restoreBackup({ recoveryKey: '1'.repeat(64), source: (async function* () { yield exported; })() }),
      (e: unknown) => ClientError.is(e, ClientErrorCode.WrongBackupKey),
    );
    const restored = await client.restoreBackup({ recoveryKey, source: (async function* () { yield exported; })() });
    assert.equal(restored.imported.messages, COUNT);
    assert.equal((await store.transaction((tx) => tx.messages.list(PEER))).length, COUNT);
    await client.close();
  });
});
