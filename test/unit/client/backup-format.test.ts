// The backup file format (src/client/backup): a round trip through the in-memory store and media files, and
// every way a file can be wrong (truncated anywhere, a flipped byte in the header or a frame, frames swapped,
// bytes appended, the wrong key, another account's backup) refused with a typed error and nothing imported.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import type { AccountId, E164, GroupId, MessageId } from '../../../src/client/ids.ts';
import { InMemoryMediaFiles } from '../../../src/client/media/memory-files.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { AccountRecord, AttachmentRecord, ClientStore, GroupRecord, MessageRecord } from '../../../src/client/store/types.ts';
import { writeBackup, type BackupProtection } from '../../../src/client/backup/export.ts';
import { readBackup } from '../../../src/client/backup/import.ts';
import { formatRecoveryKey, generateRecoveryKey, parseRecoveryKey } from '../../../src/client/backup/keys.ts';
import { recoveryProtection, recoveryUnlocker } from '../../../src/client/backup/protect.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { provider } from '../../support/provider.ts';

const ALICE = '11111111-1111-4111-8111-111111111111' as AccountId;
const BOB = '22222222-2222-4222-8222-222222222222' as AccountId;
const GROUP = '0123456789abcdef0123456789abcdef' as GroupId;

function account(accountId: AccountId, fill: number): AccountRecord {
  return {
    serverUrl: 'http://127.0.0.1:1',
    number: '+15550100001' as E164,
    accountId,
    deviceId: 1,
    password: 'secret',
    registrationId: 7,
    identityPublicKey: new Uint8Array(33).fill(fill),
    identityPrivateKey: new Uint8Array(32).fill(fill),
    registeredAt: 1,
  };
}

function message(i: number, fields: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: `${BOB}:${1000 + i}` as MessageId,
    conversationId: BOB,
    senderId: BOB,
    direction: 'incoming',
    timestamp: 1000 + i,
    serverTimestamp: 2000 + i,
    receivedAt: 3000 + i,
    kind: 'text',
    // Random-looking text so that gzip leaves several frames of 1 KiB.
    body: `message ${i} ${Array.from({ length: 8 }, (_, k) => ((i * 7919 + k * 104729) % 1_000_003).toString(36)).join(' ')}`,
    quote: undefined,
    reactions: i === 0 ? [{ authorId: ALICE, emoji: '👍', timestamp: 5 }] : [],
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
    ...fields,
  };
}

const group: GroupRecord = {
  id: GROUP,
  masterKey: new Uint8Array(32).fill(3),
  revision: 2,
  name: 'Family',
  description: '',
  avatar: undefined,
  avatarContentType: undefined,
  encryptedAttributes: new Uint8Array([1, 2, 3]),
  members: [
    { accountId: ALICE, admin: true, joinedAt: 1, joinedRevision: 0 },
    { accountId: BOB, admin: false, joinedAt: 1, joinedRevision: 0 },
  ],
  settings: { adminsManageMembers: true, adminsEditInfo: true, adminsSend: false },
  creatorId: ALICE,
  inviteLinkEnabled: false,
  inviteLinkPassword: undefined,
  expireTimer: 0,
  active: true,
  distributionId: 'd3b07384-d113-4ec6-a7a6-8a2e2b3c5f10',
  senderKeySharedWith: [`${BOB}.1.99`],
  createdAt: 1,
  updatedAt: 2,
};

const photo = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31 + (i >> 8)) & 0xff);

async function source(): Promise<{ store: ClientStore; media: InMemoryMediaFiles }> {
  const store = new InMemoryClientStore();
  const media = new InMemoryMediaFiles();
  const w = await media.output('beach.jpg', 'image/jpeg');
  await w.write(photo);
  const location = await w.commit();
  const attachment: AttachmentRecord = {
    type: 'image',
    blobId: 'ab'.repeat(32),
    mediaKey: new Uint8Array(32).fill(9),
    plaintextSha256: sha256(photo),
    encryptedSha256: new Uint8Array(32).fill(0xab),
    size: photo.length,
    contentType: 'image/jpeg',
    fileName: 'beach.jpg',
    width: 10,
    height: 20,
    durationMs: undefined,
    voiceNote: false,
    thumbnail: new Uint8Array([1, 2]),
    uploadedAt: 5,
    state: 'saved',
    path: location,
    error: undefined,
  };
  await store.transaction(async (tx) => {
    await tx.account.put(account(ALICE, 1));
    await tx.contacts.put({ accountId: BOB, number: '+15550100002' as E164, numberVerified: true, expireTimer: 0, createdAt: 1, updatedAt: 1 });
    await tx.identities.put({ accountId: BOB, identityKey: new Uint8Array(33).fill(5), status: 'verified', firstSeenAt: 1, changedAt: undefined });
    await tx.groups.put(group);
    for (let i = 0; i < 60; i++) await tx.messages.put(message(i));
    await tx.messages.put(message(100, { body: 'the beach', attachments: [attachment] }));
    await tx.messages.put(message(101, { id: `${ALICE}:5000` as MessageId, conversationId: GROUP, senderId: ALICE, direction: 'outgoing', status: 'delivered', body: 'hi group' }));
    await tx.settings.put('prefs.theme', 'dark');
    await tx.sessions.put(BOB, 1, new Uint8Array([1, 2, 3]));
  });
  return { store, media };
}

async function freshProfile(accountId = ALICE): Promise<{ store: InMemoryClientStore; media: InMemoryMediaFiles }> {
  const store = new InMemoryClientStore();
  await store.transaction((tx) => tx.account.put(account(accountId, 2)));
  return { store, media: new InMemoryMediaFiles() };
}

async function makeBackup(protection: BackupProtection): Promise<Uint8Array> {
  const { store, media } = await source();
  const parts: Uint8Array[] = [];
  const written = await writeBackup(
    { crypto: provider, store, media, includeMedia: true, settingsKeys: ['prefs.theme', 'prefs.absent'], protection, frameBytes: 1024 },
    { write: async (c) => void parts.push(c.slice()) },
  );
  const file = new Uint8Array(written.size);
  let at = 0;
  for (const p of parts) {
    file.set(p, at);
    at += p.length;
  }
  assert.equal(Buffer.from(sha256(file)).toString('hex'), written.sha256);
  assert.equal(written.counts.messages, 62);
  assert.equal(written.counts.files, 1);
  return file;
}

async function* chunks(bytes: Uint8Array, size = 777): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const KEY = generateRecoveryKey(provider);
let file: Uint8Array;

/** Offsets of the frames in a file (header length from its prefix). */
function frameOffsets(f: Uint8Array): number[] {
  const view = new DataView(f.buffer, f.byteOffset);
  let at = 8 + 1 + 4 + view.getUint32(9);
  const out: number[] = [];
  while (at < f.length) {
    out.push(at);
    at += 1 + 4 + 16 + view.getUint32(at + 1) + 32;
  }
  return out;
}

async function expectRefused(bytes: Uint8Array, code: string, key = KEY): Promise<void> {
  const fresh = await freshProfile();
  await assert.rejects(
    readBackup({ crypto: provider, store: fresh.store, media: fresh.media, unlock: recoveryUnlocker(provider, key) }, chunks(bytes)),
    (err: unknown) => ClientError.is(err) && err.code === code,
  );
  const after = await fresh.store.transaction(async (tx) => ({ contacts: await tx.contacts.list(), messages: await tx.messages.list(BOB), groups: await tx.groups.list() }));
  assert.deepEqual(after, { contacts: [], messages: [], groups: [] }, 'nothing imported');
  assert.deepEqual(fresh.media.savedLocations(), [], 'no file left behind');
}

describe('backup format', () => {
  it('recovery keys are 64 digits, shown in groups of 4, parsed with spaces', () => {
    assert.match(KEY, /^[0-9]{64}$/);
    assert.notEqual(generateRecoveryKey(provider), KEY);
    const shown = formatRecoveryKey(KEY);
    assert.equal(shown.split(' ').length, 16);
    assert.equal(parseRecoveryKey(shown), KEY);
    assert.throws(() => parseRecoveryKey(KEY.slice(1)), (e: unknown) => ClientError.is(e, ClientErrorCode.InvalidArgument));
  });

  it('round trip: contacts, identities, groups without sender keys, messages, media files and settings come back', async () => {
    file = await makeBackup({ recovery: await recoveryProtection(provider, KEY) });
    assert.ok(frameOffsets(file).length >= 3, 'several frames');
    const fresh = await freshProfile();
    const progress: string[] = [];
    const restored = await readBackup(
      { crypto: provider, store: fresh.store, media: fresh.media, unlock: recoveryUnlocker(provider, formatRecoveryKey(KEY)), onProgress: (p) => progress.push(p.phase) },
      chunks(file),
    );
    assert.equal(restored.imported.messages, 62);
    assert.equal(restored.imported.files, 1);
    assert.ok(progress.includes('import'));
    const { store } = await source();
    const [want, got] = await Promise.all(
      [store, fresh.store].map((s) =>
        s.transaction(async (tx) => ({
          account: (await tx.account.get())?.accountId,
          contacts: await tx.contacts.list(),
          identity: await tx.identities.get(BOB),
          messages: (await tx.messages.list(BOB)).map((m) => ({ ...m, attachments: m.attachments.map((a) => ({ ...a, path: undefined })) })),
          group: await tx.messages.list(GROUP),
          theme: await tx.settings.get('prefs.theme'),
        })),
      ),
    );
    assert.deepEqual(got, want);
    const g = await fresh.store.transaction((tx) => tx.groups.get(GROUP));
    assert.deepEqual(g, { ...group, distributionId: undefined, senderKeySharedWith: [] });
    // No session, no identity key of the old device.
    const own = await fresh.store.transaction(async (tx) => ({ account: await tx.account.get(), sessions: await tx.sessions.devices(BOB) }));
    assert.deepEqual(own.account?.identityPrivateKey, new Uint8Array(32).fill(2));
    assert.deepEqual(own.sessions, []);
    const [withFile] = (await fresh.store.transaction((tx) => tx.messages.list(BOB))).filter((m) => m.attachments.length > 0);
    const a = withFile?.attachments[0];
    assert.equal(a?.state, 'saved');
    assert.deepEqual(fresh.media.bytes(a?.path ?? ''), photo);
  });

  it('a second restore into the same profile adds nothing and keeps one copy of each file', async () => {
    const fresh = await freshProfile();
    const unlock = recoveryUnlocker(provider, KEY);
    await readBackup({ crypto: provider, store: fresh.store, media: fresh.media, unlock }, chunks(file));
    const again = await readBackup({ crypto: provider, store: fresh.store, media: fresh.media, unlock }, chunks(file));
    assert.equal(again.imported.messages, 0);
    assert.equal(fresh.media.savedLocations().length, 1);
  });

  it('the wrong recovery key: CLIENT_WRONG_BACKUP_KEY', async () => {
    await expectRefused(file, ClientErrorCode.WrongBackupKey, generateRecoveryKey(provider));
  });

  it('truncated anywhere (header, frame boundary, inside a frame, the last byte): CLIENT_BAD_BACKUP', async () => {
    const offsets = frameOffsets(file);
    for (const cut of [0, 5, 20, offsets[0] as number, (offsets[1] as number) + 10, offsets[offsets.length - 1] as number, file.length - 1]) {
      await expectRefused(file.subarray(0, cut), ClientErrorCode.BadBackup);
    }
  });

  it('a flipped byte in the header, in a frame, or in a MAC: CLIENT_BAD_BACKUP (or the wrong key for a slot)', async () => {
    const offsets = frameOffsets(file);
    const headerLength = (offsets[0] as number) - 13;
    const headerText = new TextDecoder().decode(file.subarray(13, offsets[0]));
    // The frame salt in the header (hex): still valid JSON, other bytes.
    const saltAt = 13 + headerText.indexOf('"salt":"') + 8;
    for (const at of [saltAt, (offsets[1] as number) + 30, (offsets[2] as number) - 1, file.length - 1]) {
      const bad = file.slice();
      bad[at] = (bad[at] as number) ^ (at === saltAt ? 0x01 : 0x80);
      await expectRefused(bad, ClientErrorCode.BadBackup);
    }
    assert.ok(headerLength > 0);
    const bad = file.slice();
    bad[0] = 0x51;
    await expectRefused(bad, ClientErrorCode.BadBackup);
  });

  it('frames swapped, a frame repeated, bytes appended: CLIENT_BAD_BACKUP', async () => {
    const [f0, f1, f2] = frameOffsets(file) as [number, number, number];
    const swapped = new Uint8Array([...file.subarray(0, f0), ...file.subarray(f1, f2), ...file.subarray(f0, f1), ...file.subarray(f2)]);
    await expectRefused(swapped, ClientErrorCode.BadBackup);
    const repeated = new Uint8Array([...file.subarray(0, f1), ...file.subarray(f0, f1), ...file.subarray(f1)]);
    await expectRefused(repeated, ClientErrorCode.BadBackup);
    await expectRefused(new Uint8Array([...file, 0]), ClientErrorCode.BadBackup);
  });

  it('a frame from another backup under the same key slot is refused', async () => {
    const other = await makeBackup({ recovery: await recoveryProtection(provider, KEY) });
    const [a0, a1] = frameOffsets(file) as [number, number];
    const [b0, b1] = frameOffsets(other) as [number, number];
    await expectRefused(new Uint8Array([...file.subarray(0, a0), ...other.subarray(b0, b1), ...file.subarray(a1)]), ClientErrorCode.BadBackup);
  });

  it('another account\'s backup is refused before anything is imported', async () => {
    const fresh = await freshProfile(BOB);
    await assert.rejects(
      readBackup({ crypto: provider, store: fresh.store, media: fresh.media, unlock: recoveryUnlocker(provider, KEY) }, chunks(file)),
      (err: unknown) => ClientError.is(err, ClientErrorCode.InvalidArgument),
    );
    assert.deepEqual(await fresh.store.transaction((tx) => tx.messages.list(BOB)), []);
    assert.deepEqual(fresh.media.savedLocations(), []);
  });
});
