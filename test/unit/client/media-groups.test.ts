// Attachments in a group and across the sender's own devices, against the REAL server: a group send is one
// upload and one message that every member downloads, and the server learns (blob_ids) who is to fetch it;
// the sender's linked companion gets the pointer through the sync message and downloads the file itself.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { GroupId } from '../../../src/client/ids.ts';
import type { TestServer } from '../../support/server-harness.ts';
import { bytesOf, mediaCompanion, mediaDevice, settle, sha256, sourceOf, startMediaServer, type MediaDevice } from './media-support.ts';
import { sqliteStorage } from '../../../src/server/app.ts';

describe('attachments in a group and on linked devices (real server)', () => {
  let t: TestServer;
  let alice: MediaDevice;
  let bob: MediaDevice;
  let carol: MediaDevice;

  before(async () => {
    t = await startMediaServer({ blobRetention: 'fetched' });
    alice = await mediaDevice(t, 1);
    bob = await mediaDevice(t, 2, { autoDownloadBytes: 0 });
    carol = await mediaDevice(t, 3, { autoDownloadBytes: 0 });
  });

  after(async () => {
    for (const d of [alice, bob, carol]) await d.client.close();
    await t.close();
  });

  const pendingFetches = (blobId: string): number => {
    const db = new Database(sqliteStorage(t.server.app).file, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM blob_fetches WHERE blob_id = ?').get(blobId) as { n: number }).n;
    } finally {
      db.close();
    }
  };

  it('sends one upload to a group of three; both members download the same bytes and report them fetched', async () => {
    const view = await alice.client.createGroup('Photos', [bob.number, carol.number]);
    const groupId: GroupId = view.id;
    await settle([alice.client, bob.client, carol.client]);
    const data = bytesOf(500_000, 21);
    alice.tap.clear();
    const m = await alice.client.sendAttachment(groupId, { source: sourceOf(data), contentType: 'image/webp', width: 1600, height: 900 }, { caption: 'beach' });
    assert.equal(alice.tap.of('POST', '/v1/blobs/uploads').length, 1, 'one upload for the group');
    await settle([alice.client, bob.client, carol.client]);
    const blobId = m.attachments[0]?.blobId as string;
    assert.equal(pendingFetches(blobId), 2, 'the group send named the blob for both member devices');
    for (const member of [bob, carol]) {
      const stored = await member.client.message(m.id);
      assert.equal(stored?.conversationId, groupId);
      assert.equal(stored?.body, 'beach');
      assert.equal(stored?.attachments[0]?.state, 'pending');
      const a = await member.client.downloadAttachment(m.id);
      assert.equal(a.width, 1600);
      assert.equal(sha256(member.media.bytes(a.path ?? '') ?? new Uint8Array(0)), sha256(data));
    }
    assert.equal(pendingFetches(blobId), 0);
  });

  it("gives the sender's companion the pointer through the sync message; it downloads the file itself", async () => {
    const companion = await mediaCompanion(t, alice, 'laptop');
    try {
      await settle([alice.client, companion.client, bob.client]);
      const data = bytesOf(220_000, 22);
      const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(data), contentType: 'application/pdf', fileName: 'ticket.pdf' }, { caption: 'ticket' });
      await settle([alice.client, companion.client, bob.client]);
      const copy = await companion.client.message(m.id);
      assert.equal(copy?.direction, 'outgoing');
      assert.equal(copy?.body, 'ticket');
      const a = copy?.attachments[0];
      assert.equal(a?.state, 'saved', 'downloaded automatically');
      assert.equal(a?.fileName, 'ticket.pdf');
      assert.deepEqual(companion.media.bytes(a?.path ?? ''), data);
    } finally {
      await companion.client.close();
    }
  });
});
