// Attachments between two accounts against the REAL server (in process): a ~3 MB round trip, verification
// failures, uploads that lose their connection or their process and resume, downloads that resume from the
// staged bytes, forwarding without uploading, automatic downloads by size, invalid pointers, and blob_ids.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import { ClientError } from '../../../src/client/errors.ts';
import { AttachmentPointerSchema } from '../../../src/client/gen/content_pb.ts';
import { messageId, type MessageId } from '../../../src/client/ids.ts';
import { encryptedMediaSize } from '../../../src/client/media/crypto.ts';
import { attachmentFromPointer, MAX_ATTACHMENT_BYTES } from '../../../src/client/media/pointers.ts';
import type { AttachmentEvent } from '../../../src/client/events.ts';
import type { TestServer } from '../../support/server-harness.ts';
import { bytesOf, CHUNK, mediaDevice, settle, sha256, sourceOf, startMediaServer, type MediaDevice } from './media-support.ts';
import { sqliteStorage } from '../../../src/server/app.ts';

const isCode = (code: string) => (err: unknown) => ClientError.is(err) && err.code === code;

describe('attachments between two accounts (real server)', () => {
  let t: TestServer;
  let alice: MediaDevice;
  let bob: MediaDevice;
  let carol: MediaDevice;

  before(async () => {
    t = await startMediaServer();
    alice = await mediaDevice(t, 1);
    bob = await mediaDevice(t, 2);
    carol = await mediaDevice(t, 3);
  });

  after(async () => {
    for (const d of [alice, bob, carol]) await d.client.close();
    await t.close();
  });

  const bobsCopy = async (id: MessageId) => {
    const m = await bob.client.message(id);
    assert.ok(m, 'Bob has the message');
    return m;
  };

  it('sends a ~3 MB document in chunks; the recipient downloads, verifies and saves the same bytes', async () => {
    const data = bytesOf(3_000_123, 1);
    alice.tap.clear();
    const progress: number[] = [];
    const m = await alice.client.sendAttachment(
      bob.number,
      { source: sourceOf(data), contentType: 'application/pdf', fileName: 'reports/q3.pdf' },
      { caption: 'the report', onProgress: (p) => progress.push(p.transferred) },
    );
    const total = encryptedMediaSize(data.length);
    const sent = m.attachments[0];
    assert.ok(sent);
    assert.equal(m.body, 'the report');
    assert.equal(sent.state, 'saved');
    assert.ok(sent.path !== undefined, 'the sender keeps its copy');
    assert.deepEqual(alice.media.bytes(sent.path), data);
    assert.equal(sent.fileName, 'q3.pdf', 'no directories travel');
    assert.equal(sent.blobId, Buffer.from(sent.encryptedSha256).toString('hex'));
    assert.equal(progress.at(-1), total);
    const patches = alice.tap.of('PATCH');
    assert.equal(patches.length, Math.ceil(total / CHUNK));
    assert.ok(patches.every((p) => p.status === 204 || p.status === 200));
    assert.equal(patches.at(-1)?.headers['upload-blob-id'], sent.blobId, 'the last chunk names the blob');
    assert.equal(alice.tap.of('POST')[0]?.headers['upload-blob-id'], undefined, 'the upload starts without a blob id');

    await settle([alice.client, bob.client]);
    const got = await bobsCopy(m.id);
    const a = got.attachments[0];
    assert.ok(a && a.path !== undefined);
    assert.equal(a.state, 'saved');
    assert.equal(got.body, 'the report');
    assert.equal(a.contentType, 'application/pdf');
    assert.equal(a.size, data.length);
    const saved = bob.media.bytes(a.path);
    assert.ok(saved);
    assert.equal(sha256(saved), sha256(data));
    assert.deepEqual(saved, data);
    assert.deepEqual(bob.media.stagedBlobIds(), [], 'staging removed');
    // Asking again returns the saved record without a request.
    bob.tap.clear();
    assert.deepEqual(await bob.client.downloadAttachment(m.id), a);
    assert.equal(bob.tap.calls.length, 0);
  });

  it('refuses a blob with a flipped byte: CLIENT_BAD_MEDIA, nothing saved, staging removed, recorded failed', async () => {
    await bob.reopen({ autoDownloadBytes: 0 });
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(200_000, 2)), contentType: 'image/jpeg' });
    await settle([alice.client, bob.client]);
    const pending = (await bobsCopy(m.id)).attachments[0];
    assert.equal(pending?.state, 'pending');
    const file = path.join(t.dataDir, 'blobs', pending.blobId);
    const bytes = readFileSync(file);
    bytes[100_000] = (bytes[100_000] as number) ^ 0x01;
    writeFileSync(file, bytes);

    const before = bob.media.savedLocations().length;
    const events: AttachmentEvent[] = [];
    const off = bob.client.on('attachment', (e) => events.push(e));
    await assert.rejects(bob.client.downloadAttachment(m.id), isCode('CLIENT_BAD_MEDIA'));
    off();
    const a = (await bobsCopy(m.id)).attachments[0];
    assert.equal(a?.state, 'failed');
    assert.equal(a?.error, 'CLIENT_BAD_MEDIA');
    assert.equal(a?.path, undefined);
    assert.equal(bob.media.savedLocations().length, before, 'nothing committed');
    assert.deepEqual(bob.media.stagedBlobIds(), [], 'staging removed');
    assert.deepEqual(events.map((e) => [e.messageId, e.index, e.attachment.state]), [[m.id, 0, 'failed']]);
  });

  it('resumes an upload whose connection dropped mid-chunk: every byte reaches the server once', async () => {
    const data = bytesOf(300_000, 3);
    alice.tap.clear();
    alice.tap.cutPatch(CHUNK / 2 + 7);
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(data), contentType: 'application/octet-stream' });
    const total = encryptedMediaSize(data.length);
    const patches = alice.tap.of('PATCH');
    const cutAt = patches.findIndex((p) => p.headers['x-test-cut'] !== undefined);
    assert.ok(cutAt >= 0);
    const cut = patches[cutAt] as (typeof patches)[number];
    assert.equal(cut.status, 0, 'the cut request got no answer');
    const c = Number(cut.headers['upload-offset']);
    const later = patches.slice(cutAt + 1).filter((p) => p.status === 204 || p.status === 200);
    const resumedAt = Number(later[0]?.headers['upload-offset']);
    assert.ok(resumedAt >= c && resumedAt <= c + CHUNK / 2 + 7, `resumed at ${resumedAt}, cut at ${c}`);
    assert.ok(alice.tap.of('HEAD').length >= 1, 'asked the server for its offset');
    // Accepted chunks are contiguous from the resume point to the end, and with the kept bytes add up to the file.
    let at = resumedAt;
    for (const p of later) {
      assert.equal(Number(p.headers['upload-offset']), at);
      at += p.bodyBytes;
    }
    assert.equal(at, total);
    const before = patches.slice(0, cutAt).filter((p) => p.status === 204);
    assert.equal(before.reduce((n, p) => n + p.bodyBytes, 0), c);

    await settle([alice.client, bob.client]);
    await bob.client.downloadAttachment(m.id);
    const a = (await bobsCopy(m.id)).attachments[0];
    assert.deepEqual(bob.media.bytes(a?.path ?? ''), data);
  });

  it('resumes an upload after a crash: a new client over the same store continues under the same key and upload', async () => {
    const data = bytesOf(600_000, 4);
    const resumeKey = 'file:/videos/holiday.mp4:600000:1700000000';
    const controller = new AbortController();
    await assert.rejects(
      alice.client.sendAttachment(
        bob.number,
        { source: sourceOf(data, resumeKey), contentType: 'video/mp4', width: 640, height: 360, durationMs: 1_500 },
        { signal: controller.signal, onProgress: (p) => p.transferred >= 3 * CHUNK && controller.abort() },
      ),
      isCode('CLIENT_ABORTED'),
    );
    const job = await alice.store.transaction((tx) => tx.uploads.get(resumeKey));
    assert.ok(job?.uploadId !== undefined && job.completed === undefined);
    assert.equal(job.type, 'video');

    alice.tap.clear();
    await alice.reopen();
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(data, resumeKey), contentType: 'video/mp4', width: 640, height: 360, durationMs: 1_500 });
    assert.equal(alice.tap.of('POST').length, 0, 'no new upload');
    const head = alice.tap.of('HEAD')[0];
    assert.equal(head?.path, `/v1/blobs/uploads/${job.uploadId}`);
    const offset = Number(head?.responseHeaders['upload-offset']);
    assert.ok(offset >= 3 * CHUNK, `the server had ${offset} bytes`);
    assert.equal(Number(alice.tap.of('PATCH')[0]?.headers['upload-offset']), offset, 'sending resumed at the server offset');
    assert.equal(alice.tap.of('PATCH').reduce((n, p) => n + p.bodyBytes, 0), encryptedMediaSize(data.length) - offset);
    const a = m.attachments[0];
    assert.deepEqual(a?.mediaKey, job.mediaKey, 'same media key');
    assert.equal(await alice.store.transaction((tx) => tx.uploads.get(resumeKey)), undefined, 'the job is forgotten once sent');

    await settle([alice.client, bob.client]);
    await bob.client.downloadAttachment(m.id);
    const got = (await bobsCopy(m.id)).attachments[0];
    assert.equal(got?.type, 'video');
    assert.equal(got?.width, 640);
    assert.equal(got?.durationMs, 1_500);
    assert.deepEqual(bob.media.bytes(got?.path ?? ''), data);
  });

  it('resumes a download from the staged bytes (Range), within a call and after a failed one', async () => {
    const data = bytesOf(400_000, 5);
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(data), contentType: 'audio/ogg', voiceNote: true });
    await settle([alice.client, bob.client]);
    const total = encryptedMediaSize(data.length);

    // Cut within a call: the same call continues from what arrived.
    bob.tap.clear();
    bob.tap.cutDownload(100_000);
    const a = await bob.client.downloadAttachment(m.id);
    const gets = bob.tap.of('GET');
    assert.deepEqual(gets.map((g) => g.headers.range), [undefined, 'bytes=100000-']);
    assert.equal(Number(gets[1]?.responseHeaders['content-length']), total - 100_000);
    assert.equal(a.voiceNote, true);
    assert.deepEqual(bob.media.bytes(a.path ?? ''), data);

    // A call that gives up keeps its staged bytes; the next one (a new client) continues from them.
    const m2 = await alice.client.sendAttachment(bob.number, { source: sourceOf(data.slice(0, 300_000)), contentType: 'audio/ogg' });
    await settle([alice.client, bob.client]);
    await bob.reopen({ autoDownloadBytes: 0, mediaTransfer: { maxAttempts: 1, backoff: { baseMs: 1, maxMs: 2 } } });
    bob.tap.clear();
    bob.tap.cutDownload(70_000);
    await assert.rejects(bob.client.downloadAttachment(m2.id), isCode('CLIENT_CONNECTION_CLOSED'));
    const failed = (await bobsCopy(m2.id)).attachments[0];
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.error, 'CLIENT_CONNECTION_CLOSED');
    assert.equal(bob.media.stagedSize(failed.blobId), 70_000);
    await bob.reopen({ autoDownloadBytes: 0 });
    bob.tap.clear();
    const saved = await bob.client.downloadAttachment(m2.id);
    assert.deepEqual(bob.tap.of('GET').map((g) => g.headers.range), ['bytes=70000-']);
    assert.deepEqual(bob.media.bytes(saved.path ?? ''), data.slice(0, 300_000));
    assert.deepEqual(bob.media.stagedBlobIds(), []);
  });

  it('joins a download in flight instead of starting a second', async () => {
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(150_000, 6)), contentType: 'image/png' });
    await settle([alice.client, bob.client]);
    bob.tap.clear();
    const [x, y] = await Promise.all([bob.client.downloadAttachment(m.id), bob.client.downloadAttachment(m.id, { index: 0 })]);
    assert.deepEqual(x, y);
    assert.equal(bob.tap.of('GET').length, 1);
    await assert.rejects(bob.client.downloadAttachment(m.id, { index: 1 }), isCode('CLIENT_INVALID_ARGUMENT'));
  });

  it('forwards a file the server still has without uploading it', async () => {
    const data = bytesOf(250_000, 7);
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(data), contentType: 'application/zip', fileName: 'a.zip' }, { caption: 'zip' });
    await settle([alice.client, bob.client]);
    await bob.client.downloadAttachment(m.id);
    bob.tap.clear();
    const f = await bob.client.forwardAttachments(m.id, carol.number);
    assert.equal(f.body, 'zip');
    assert.equal(bob.tap.of('PATCH').length, 0, 'no bytes uploaded');
    const posts = bob.tap.of('POST', '/v1/blobs/uploads');
    assert.equal(posts.length, 1);
    assert.equal(posts[0]?.status, 200);
    assert.equal(posts[0]?.headers['upload-blob-id'], m.attachments[0]?.blobId);
    await settle([bob.client, carol.client]);
    const got = await carol.client.message(f.id);
    const a = got?.attachments[0];
    assert.equal(a?.state, 'saved');
    assert.equal(a?.fileName, 'a.zip');
    assert.deepEqual(carol.media.bytes(a?.path ?? ''), data);
  });

  it('downloads automatically only what is within autoDownloadBytes', async () => {
    await bob.reopen({ autoDownloadBytes: 100_000 });
    const events: AttachmentEvent[] = [];
    const off = bob.client.on('attachment', (e) => events.push(e));
    const small = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(60_000, 8)), contentType: 'image/jpeg' });
    const large = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(160_000, 9)), contentType: 'image/jpeg' });
    await settle([alice.client, bob.client]);
    off();
    assert.equal((await bobsCopy(small.id)).attachments[0]?.state, 'saved');
    assert.equal((await bobsCopy(large.id)).attachments[0]?.state, 'pending');
    assert.deepEqual(events.map((e) => e.messageId), [small.id]);
    await bob.reopen({ autoDownloadBytes: 0 });
  });

  it('marks an invalid pointer failed (CLIENT_BAD_MEDIA) and keeps the message and its valid attachments', async () => {
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(40_000, 10)), contentType: 'image/jpeg' });
    const good = m.attachments[0];
    assert.ok(good);
    const wrongHash = good.encryptedSha256.slice();
    wrongHash[0] = (wrongHash[0] as number) ^ 1;
    // A message whose second pointer does not match its blob id, forwarded (by id, nothing uploaded) to Bob.
    const id = messageId(alice.client.accountId, m.timestamp - 1);
    await alice.store.transaction((tx) => tx.messages.put({ ...m, id, body: 'two files', attachments: [good, { ...good, encryptedSha256: wrongHash }] }));
    const f = await alice.client.forwardAttachments(id, bob.number);
    await settle([alice.client, bob.client]);
    const got = await bobsCopy(f.id);
    assert.equal(got.body, 'two files');
    assert.equal(got.attachments.length, 2);
    assert.equal(got.attachments[1]?.state, 'failed');
    assert.equal(got.attachments[1]?.error, 'CLIENT_BAD_MEDIA');
    assert.equal(got.attachments[1]?.blobId, '');
    await assert.rejects(bob.client.downloadAttachment(f.id, { index: 1 }), isCode('CLIENT_BAD_MEDIA'));
    assert.equal((await bob.client.downloadAttachment(f.id, { index: 0 })).state, 'saved');
  });

  it('deleting for everyone removes the attachments and the saved files', async () => {
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(30_000, 11)), contentType: 'image/jpeg' });
    await settle([alice.client, bob.client]);
    const a = await bob.client.downloadAttachment(m.id);
    assert.ok(a.path !== undefined && bob.media.bytes(a.path) !== undefined);
    await alice.client.edit(m.id, 'caption added');
    await settle([alice.client, bob.client]);
    assert.equal((await bobsCopy(m.id)).attachments[0]?.state, 'saved', 'an edit keeps the attachments');
    await alice.client.deleteForEveryone(m.id);
    await settle([alice.client, bob.client]);
    const gone = await bobsCopy(m.id);
    assert.equal(gone.deleted, true);
    assert.deepEqual(gone.attachments, []);
    assert.equal(bob.media.bytes(a.path), undefined, 'the saved file is removed');
  });

  it('opening a view-once file shows it once: the attachment and its saved file are erased', async () => {
    const data = bytesOf(20_000, 12);
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(data), contentType: 'image/jpeg' }, { viewOnce: true });
    await settle([alice.client, bob.client]);
    const a = await bob.client.downloadAttachment(m.id);
    assert.ok(a.path !== undefined);
    assert.deepEqual(bob.media.bytes(a.path), data, 'readable before it is opened');
    const shown = await bob.client.markViewed(m.id);
    assert.equal(shown.attachments[0]?.path, a.path, 'resolves with the message as it was');
    const after = await bobsCopy(m.id);
    assert.equal(after.status, 'viewed');
    assert.deepEqual(after.attachments, [], 'no key, thumbnail or location left');
    assert.equal(bob.media.bytes(a.path), undefined, 'the saved file is removed');
    assert.deepEqual((await bob.client.markViewed(m.id)).attachments, [], 'the second time there is nothing to show');
    await assert.rejects(bob.client.downloadAttachment(m.id), isCode('CLIENT_INVALID_ARGUMENT'));
  });

  it('needs a media folder to download, and checks what it sends', async () => {
    await assert.rejects(
      alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(10, 1)), contentType: 'not a mime type' }),
      isCode('CLIENT_INVALID_ARGUMENT'),
    );
    await assert.rejects(
      alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(10, 1)), contentType: 'image/jpeg', thumbnail: { bytes: new Uint8Array(8 * 1024 + 1) } }),
      isCode('CLIENT_INVALID_ARGUMENT'),
    );
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(10, 1)), contentType: 'text/plain' });
    await settle([alice.client, bob.client]);
    await bob.reopen({ media: undefined });
    await assert.rejects(bob.client.downloadAttachment(m.id), isCode('CLIENT_INVALID_ARGUMENT'));
    await bob.reopen({ autoDownloadBytes: 0 });
  });
});

describe('attachment pointers', () => {
  const valid = () => {
    const encryptedSha256 = new Uint8Array(32).fill(0xab);
    return create(AttachmentPointerSchema, {
      type: 1,
      blobId: 'ab'.repeat(32),
      mediaKey: new Uint8Array(32).fill(1),
      plaintextSha256: new Uint8Array(32).fill(2),
      encryptedSha256,
      size: 1234n,
      contentType: 'image/jpeg',
      fileName: '../../etc/passwd',
      thumbnail: new Uint8Array(100),
      uploadedAt: 99n,
    });
  };

  it('takes a valid pointer as pending, without directories in the file name', () => {
    const a = attachmentFromPointer(valid());
    assert.equal(a.state, 'pending');
    assert.equal(a.type, 'image');
    assert.equal(a.fileName, 'passwd');
    assert.equal(a.size, 1234);
    assert.equal(a.error, undefined);
  });

  for (const [what, change] of [
    ['a blob id that is not the encrypted hash', { blobId: 'cd'.repeat(32) }],
    ['a malformed blob id', { blobId: 'AB'.repeat(32) }],
    ['a short media key', { mediaKey: new Uint8Array(31) }],
    ['a short plaintext hash', { plaintextSha256: new Uint8Array(31) }],
    ['a file above 2 GiB', { size: BigInt(MAX_ATTACHMENT_BYTES) + 1n }],
    ['a thumbnail above 8 KiB', { thumbnail: new Uint8Array(8 * 1024 + 1) }],
    ['a content type above 255 characters', { contentType: `image/${'x'.repeat(250)}` }],
    ['an unknown type', { type: 9 }],
  ] as const) {
    it(`marks ${what} failed with CLIENT_BAD_MEDIA and no blob id`, () => {
      const a = attachmentFromPointer({ ...valid(), ...change } as ReturnType<typeof valid>);
      assert.equal(a.state, 'failed');
      assert.equal(a.error, 'CLIENT_BAD_MEDIA');
      assert.equal(a.blobId, '');
    });
  }
});

describe('blob_ids and retention "fetched" (real server)', () => {
  it('names the blob in the send request: the recipient device must fetch it, and its report clears that', async () => {
    const t = await startMediaServer({ blobRetention: 'fetched' });
    const alice = await mediaDevice(t, 1);
    const bob = await mediaDevice(t, 2, { autoDownloadBytes: 0 });
    try {
      const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(bytesOf(20_000, 12)), contentType: 'image/jpeg' });
      await settle([alice.client, bob.client]);
      const blobId = m.attachments[0]?.blobId as string;
      const pending = (): number => {
        const db = new Database(sqliteStorage(t.server.app).file, { readonly: true, fileMustExist: true });
        try {
          return (db.prepare('SELECT count(*) AS n FROM blob_fetches WHERE blob_id = ?').get(blobId) as { n: number }).n;
        } finally {
          db.close();
        }
      };
      assert.equal(pending(), 1, "Bob's device is to fetch it");
      bob.tap.clear();
      await bob.client.downloadAttachment(m.id);
      assert.deepEqual(bob.tap.of('POST').map((c) => [c.path, c.status]), [[`/v1/blobs/${blobId}/fetched`, 204]]);
      assert.equal(pending(), 0);
    } finally {
      await alice.client.close();
      await bob.client.close();
      await t.close();
    }
  });
});
