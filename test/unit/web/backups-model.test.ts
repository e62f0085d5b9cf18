// The web app's backup model (src/web/model/backups.ts) over a real Client and the real server's backup routes:
// a recovery key the app made and the user confirmed (BackupManager.setUp with a key string), back up now with
// progress, export to a Blob, the automatic backup when the last one is older than the period (injected clock),
// one run at a time, a restore from the exported file (wrong key: nothing imported), and the helpers' words.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client } from '../../../src/client/client.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import type { AccountId, E164, MessageId } from '../../../src/client/ids.ts';
import { InMemoryMediaFiles } from '../../../src/client/media/memory-files.ts';
import { register } from '../../../src/client/registration.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { MessageRecord } from '../../../src/client/store/types.ts';
import type { FetchLike } from '../../../src/client/transport/http.ts';
import { AUTO_BACKUP_MS, autoBackupOf, backupErrorInWords, countOf, passwordStrength, progressInWords, WebBackups } from '../../../src/web/model/backups.ts';
import { startBackupServer, type BackupServer } from '../server/backup-support.ts';
import { crypto } from '../client/support.ts';

const ALICE = '+15550100001';
const PEER = '33333333-3333-4333-8333-333333333333' as AccountId;
const fetchLike = globalThis.fetch as unknown as FetchLike;
const DAY = 24 * 3600_000;

async function registered(s: BackupServer): Promise<{ client: Client; store: InMemoryClientStore }> {
  const store = new InMemoryClientStore();
  await register({ serverUrl: s.url, crypto, store, fetch: fetchLike, number: ALICE, code: '111111', keyPolicy: { batchSize: 5, minOneTimeKeys: 2 } });
  const client = await Client.open({ store, crypto, fetch: fetchLike, media: new InMemoryMediaFiles(), WebSocket: WebSocket, maintainKeys: false });
  return { client, store };
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
    body: `message ${i}`,
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

/** Resolves once `check` holds (bounded). */
async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('web backups model', () => {
  let s: BackupServer;
  let key = '';
  let file: Blob;

  before(async () => {
    s = await startBackupServer();
  });
  after(() => s.close());

  it('sets up with a key the app showed, backs up with progress, exports a file, and runs the automatic backup when due', async () => {
    const { client, store } = await registered(s);
    await store.transaction(async (tx) => {
      await tx.contacts.put({ accountId: PEER, number: '+15550100003' as E164, numberVerified: true, expireTimer: 0, createdAt: 1, updatedAt: 1 });
      for (let i = 0; i < 20; i++) await tx.messages.put(message(i));
    });
    let clock = Date.now();
    const failures: string[] = [];
    const backups = new WebBackups(client, { now: () => clock, onAutomaticError: (t) => failures.push(t) });
    assert.equal((await backups.refresh()).configured, false);
    key = backups.newRecoveryKey();
    assert.match(key, /^(\d{4} ){15}\d{4}$/);
    await backups.useRecoveryKey(key, true);
    assert.deepEqual(backups.status?.protectedBy, ['recovery-key']);
    assert.equal(backups.status?.includeMedia, true);

    const phases: string[] = [];
    const off = backups.subscribe(() => {
      const p = backups.running?.progress;
      if (p && phases.at(-1) !== p.phase) phases.push(p.phase);
    });
    const first = backups.backUpNow();
    assert.equal(backups.running?.kind, 'backup');
    await assert.rejects(backups.exportToFile(), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument), 'one run at a time');
    const r = await first;
    off();
    assert.deepEqual(phases, ['export', 'upload']);
    assert.equal(r.counts.messages, 20);
    assert.equal(backups.running, undefined);
    await until(() => backups.status?.server?.blobId === r.sha256);

    const exported = await backups.exportToFile();
    file = exported.blob;
    assert.equal(file.size, exported.result.size);
    assert.equal(Buffer.from(await file.slice(0, 8).arrayBuffer()).toString('latin1'), 'PARLEYBK');
    assert.equal((await client.backupStatus()).server?.blobId, r.sha256, 'an export is not uploaded');

    // Daily: nothing is due right after a backup; a clock two days on makes one by itself.
    await backups.setAutomatic('daily');
    assert.equal(backups.status?.everyMs, DAY);
    backups.start();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await client.backupStatus()).server?.blobId, r.sha256, 'not due yet');
    clock += 2 * DAY;
    await backups.setAutomatic('daily'); // re-arms the timer with the moved clock
    await until(async () => (await client.backupStatus()).server?.blobId !== r.sha256);
    assert.deepEqual(failures, []);
    backups.stop();
    await until(() => backups.running === undefined);
    await backups.setAutomatic('off');
    assert.equal(await client.backups.nextDue(), undefined);
    await client.close();
  });

  it('restores the exported file on a re-registered profile; a wrong key imports nothing', async () => {
    const { client, store } = await registered(s);
    const backups = new WebBackups(client);
    await assert.rejects(backups.restore({ recoveryKey: '1'.repeat(64), file }), (e: unknown) => ClientError.is(e, ClientErrorCode.WrongBackupKey));
    assert.equal(backups.error, 'The recovery key does not open this backup. Nothing was restored.');
    assert.deepEqual(await store.transaction((tx) => tx.messages.list(PEER)), []);
    const cut = file.slice(0, file.size - 10);
    await assert.rejects(backups.restore({ recoveryKey: key, file: cut }), (e: unknown) => ClientError.is(e, ClientErrorCode.BadBackup));
    assert.match(backups.error ?? '', /^This is not a Parley backup, or it was cut short or changed/);
    assert.deepEqual(await store.transaction((tx) => tx.messages.list(PEER)), []);
    const restored = await backups.restore({ recoveryKey: key, file });
    assert.equal(restored.imported.messages, 20);
    assert.equal((await store.transaction((tx) => tx.messages.list(PEER))).length, 20);
    await client.close();
  });

  it('words: automatic choices, password strength, progress, counts', () => {
    assert.equal(autoBackupOf(undefined), 'off');
    assert.equal(autoBackupOf(AUTO_BACKUP_MS.daily), 'daily');
    assert.equal(autoBackupOf(AUTO_BACKUP_MS.weekly), 'weekly');
    assert.equal(autoBackupOf(3600_000), 'daily', 'an interval set by the CLI shows as the nearest choice');
    assert.equal(passwordStrength('short').score, 0);
    assert.equal(passwordStrength('aaaaaaaaaaaa').score, 1);
    assert.equal(passwordStrength('abcdefghijkl').score, 1, 'a run counts once');
    assert.equal(passwordStrength('password').score, 1);
    assert.equal(passwordStrength('Tr0ub4dor&3x').score, 2);
    assert.equal(passwordStrength('tangerine orbit cellar 42 quietly').score, 3);
    assert.deepEqual(progressInWords({ phase: 'upload', done: 40, total: 100 }, 'backup'), { text: 'Uploading… 40%', fraction: 0.4 });
    assert.deepEqual(progressInWords({ phase: 'export', done: 3, total: undefined }, 'backup'), { text: 'Reading conversations… 3', fraction: undefined });
    assert.equal(progressInWords(undefined, 'restore').text, 'Opening the backup…');
    assert.equal(countOf(1, 'file'), '1 file');
    assert.equal(countOf(1200, 'message'), '1,200 messages');
    assert.equal(backupErrorInWords(new ClientError(ClientErrorCode.BackupLocked, 'x')), 'Too many wrong passwords: the server no longer helps open this backup with a password. Only its recovery key opens it now.');
  });
});
