// The SQLite store's media data (migration 004): a profile database written before media opens with its
// messages intact and without attachments; attachments and upload jobs written afterwards survive a reopen.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE, SqliteClientStore } from '../../../src/cli/store/sqlite-store.ts';
import { appliedVersions, migrate, MIGRATIONS } from '../../../src/cli/store/migrations/index.ts';
import { Queries, sql } from '../../../src/cli/store/sql.ts';
import type { AccountId, MessageId } from '../../../src/client/ids.ts';
import type { AttachmentRecord } from '../../../src/client/store/types.ts';

const B = '22222222-2222-4222-8222-222222222222' as AccountId;

describe('SqliteClientStore: media', () => {
  it('migrates a database of schema 3: messages keep everything and get no attachments; attachments and jobs are kept', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-media-store-'));
    try {
      const db = new Database(path.join(dir, DATABASE_FILE));
      const q = new Queries(db);
      assert.deepEqual(migrate(q, 1, MIGRATIONS, 3), [1, 2, 3]);
      q.run(sql`INSERT INTO messages (id, conversation_id, sender_id, direction, timestamp, server_timestamp, received_at, kind, body, quote, reactions,
                  edited_at, deleted, view_once, expire_timer, expires_at, status, error, receipts, group_update)
                VALUES (${`${B}:5`}, ${B}, ${B}, 'incoming', 5, 6, 7, 'text', 'from before media', NULL, '[]', NULL, 0, 0, 0, NULL, 'received', NULL, '[]', NULL)`);
      db.close();

      const attachment: AttachmentRecord = {
        type: 'audio',
        blobId: '0f'.repeat(32),
        mediaKey: new Uint8Array(32).fill(3),
        plaintextSha256: new Uint8Array(32).fill(4),
        encryptedSha256: new Uint8Array(32).fill(0x0f),
        size: 12_345,
        contentType: 'audio/ogg',
        fileName: undefined,
        width: undefined,
        height: undefined,
        durationMs: 4_000,
        voiceNote: true,
        thumbnail: undefined,
        uploadedAt: 99,
        state: 'pending',
        path: undefined,
        error: undefined,
      };
      let store = SqliteClientStore.open(dir, { now: () => 42 });
      try {
        await store.transaction(async (tx) => {
          const m = await tx.messages.get(`${B}:5` as MessageId);
          assert.equal(m?.body, 'from before media');
          assert.deepEqual(m?.attachments, []);
          if (m) await tx.messages.put({ ...m, attachments: [attachment] });
          await tx.uploads.put({ resumeKey: 'file:1', type: 'audio', mediaKey: new Uint8Array(32).fill(5), size: 12_345, uploadId: 'ab'.repeat(16), completed: undefined, createdAt: 7 });
        });
      } finally {
        await store.close();
      }
      store = SqliteClientStore.open(dir);
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual((await tx.messages.get(`${B}:5` as MessageId))?.attachments, [attachment]);
          assert.deepEqual(await tx.uploads.get('file:1'), {
            resumeKey: 'file:1',
            type: 'audio',
            mediaKey: new Uint8Array(32).fill(5),
            size: 12_345,
            uploadId: 'ab'.repeat(16),
            completed: undefined,
            createdAt: 7,
          });
        });
      } finally {
        await store.close();
      }
      const check = new Database(path.join(dir, DATABASE_FILE), { readonly: true });
      assert.deepEqual(appliedVersions(new Queries(check)), MIGRATIONS.map((m) => m.version));
      check.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
