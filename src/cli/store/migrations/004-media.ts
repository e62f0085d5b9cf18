/**
 * Migration 4: media (issue #6). A message's attachments (pointers, and where this device keeps each file)
 * are one JSON column of the message, in the profile's record encoding (json-codec.ts: bytes kept), `[]` for
 * the messages written before. Uploads that can resume after a crash are rows by resume key, the record whole.
 */
import type { Migration } from './index.js';

export const migration004: Migration = {
  version: 4,
  name: 'media',
  up: `
    ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE upload_jobs (
      resume_key TEXT PRIMARY KEY,
      created_at INTEGER NOT NULL,
      format INTEGER NOT NULL,
      data TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX upload_jobs_created ON upload_jobs (created_at);
  `,
};
