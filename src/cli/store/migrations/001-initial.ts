/**
 * Migration 1: the first schema of the profile database. Records are stored as columns where the client
 * queries them, bytes as BLOBs; the account is a versioned JSON document.
 */
import type { Migration } from './index.js';

export const migration001: Migration = {
  version: 1,
  name: 'initial',
  up: `
    CREATE TABLE account (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      format INTEGER NOT NULL,
      data TEXT NOT NULL
    );
    CREATE TABLE settings (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE identities (
      account_id TEXT PRIMARY KEY,
      identity_key BLOB NOT NULL,
      status TEXT NOT NULL,
      first_seen_at INTEGER NOT NULL,
      changed_at INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE pre_keys (
      id INTEGER PRIMARY KEY,
      record BLOB NOT NULL
    );
    CREATE TABLE signed_pre_keys (
      id INTEGER PRIMARY KEY,
      record BLOB NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE kyber_pre_keys (
      id INTEGER PRIMARY KEY,
      record BLOB NOT NULL,
      last_resort INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
      account_id TEXT NOT NULL,
      device_id INTEGER NOT NULL,
      record BLOB NOT NULL,
      PRIMARY KEY (account_id, device_id)
    ) WITHOUT ROWID;
    CREATE TABLE contacts (
      account_id TEXT PRIMARY KEY,
      number TEXT,
      number_verified INTEGER NOT NULL,
      expire_timer INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX contacts_by_number ON contacts (number);
    CREATE TABLE messages (
      id TEXT PRIMARY KEY,
      conversation_id TEXT NOT NULL,
      sender_id TEXT NOT NULL,
      direction TEXT NOT NULL,
      timestamp INTEGER NOT NULL,
      server_timestamp INTEGER,
      received_at INTEGER NOT NULL,
      kind TEXT NOT NULL,
      body TEXT NOT NULL,
      quote TEXT,
      reactions TEXT NOT NULL,
      edited_at INTEGER,
      deleted INTEGER NOT NULL,
      view_once INTEGER NOT NULL,
      expire_timer INTEGER NOT NULL,
      expires_at INTEGER,
      status TEXT NOT NULL,
      error TEXT
    ) WITHOUT ROWID;
    CREATE INDEX messages_by_conversation ON messages (conversation_id, timestamp);
    CREATE INDEX messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE outbox (
      id TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      recipient_id TEXT NOT NULL,
      timestamp INTEGER NOT NULL,
      content BLOB NOT NULL,
      state TEXT NOT NULL,
      request BLOB,
      attempts INTEGER NOT NULL,
      message_id TEXT,
      created_at INTEGER NOT NULL,
      sent_at INTEGER,
      retries_answered INTEGER NOT NULL,
      error TEXT
    ) WITHOUT ROWID;
    CREATE INDEX outbox_by_state ON outbox (state, created_at);
    CREATE INDEX outbox_messages ON outbox (recipient_id, timestamp) WHERE kind = 'message';
    CREATE TABLE processed_envelopes (
      guid TEXT PRIMARY KEY,
      processed_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX processed_envelopes_by_time ON processed_envelopes (processed_at);
  `,
};
