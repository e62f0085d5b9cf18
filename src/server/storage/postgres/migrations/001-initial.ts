import type { PostgresMigration } from './migration.js';

/**
 * The schema of SQLite's migrations 1 to 12, for PostgreSQL. Bytes are BYTEA, times BIGINT milliseconds,
 * flags BOOLEAN. Differences, all for many nodes sharing one database:
 *
 * - `device_queues`: one row per device with the last `seq` handed out and the queue depth. An insert
 *   locks the rows of its devices (in `device_ref` order, so concurrent fan-outs cannot deadlock) and
 *   takes its seqs from there, in the transaction that inserts the envelopes: per device, seqs are unique,
 *   increasing and in commit order, so a delivery cursor can never pass an envelope that commits later
 *   (a global sequence could: a lower number may commit after a higher one). The depth makes the queue
 *   limit exact under concurrent inserts and `depth` a primary-key read. The row is created with its
 *   device and deleted with it (cascade); no row means the device is gone.
 * - `messages` is keyed by `(device_ref, seq)`: paging a queue, `depth` recounts, and acks are index
 *   range reads on the primary key, whatever the table's size; `messages_by_time` serves expiry.
 * - One statement-level trigger (`messages_deleted`, with the deleted rows as a transition table) keeps
 *   `device_queues.depth` and `payloads.refs` right for every delete (ack, expiry, the cascade of a
 *   device deletion) and deletes a payload with its last queue row, in the same transaction. Statement
 *   level: an expiry of a million rows runs it once per statement, not once per row. `payload_id` has no
 *   foreign key: the trigger maintains it, and a key would need another index on a huge table.
 * - `devices.ref` and `payloads.id` are identity columns (never reused).
 */
export const migration001: PostgresMigration = {
  version: 1,
  name: 'initial',
  up: `
    CREATE TABLE accounts (
      id TEXT PRIMARY KEY,
      number TEXT NOT NULL UNIQUE,
      identity_key BYTEA NOT NULL,
      created_at BIGINT NOT NULL,
      registered_at BIGINT NOT NULL
    );
    CREATE TABLE devices (
      ref BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      device_id INTEGER NOT NULL,
      registration_id INTEGER NOT NULL,
      password_hash BYTEA NOT NULL,
      identity_key BYTEA NOT NULL,
      identity BYTEA,
      listed BOOLEAN NOT NULL DEFAULT FALSE,
      name BYTEA NOT NULL,
      created_at BIGINT NOT NULL,
      UNIQUE (account_id, device_id)
    );

    CREATE TABLE signed_pre_keys (
      device_ref BIGINT PRIMARY KEY REFERENCES devices (ref) ON DELETE CASCADE,
      key_id BIGINT NOT NULL,
      public_key BYTEA NOT NULL,
      signature BYTEA NOT NULL,
      uploaded_at BIGINT NOT NULL
    );
    CREATE TABLE kyber_last_resort_keys (
      device_ref BIGINT PRIMARY KEY REFERENCES devices (ref) ON DELETE CASCADE,
      key_id BIGINT NOT NULL,
      public_key BYTEA NOT NULL,
      signature BYTEA NOT NULL,
      uploaded_at BIGINT NOT NULL
    );
    CREATE TABLE pre_keys (
      device_ref BIGINT NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
      key_id BIGINT NOT NULL,
      public_key BYTEA NOT NULL,
      PRIMARY KEY (device_ref, key_id)
    );
    CREATE TABLE kyber_pre_keys (
      device_ref BIGINT NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
      key_id BIGINT NOT NULL,
      public_key BYTEA NOT NULL,
      signature BYTEA NOT NULL,
      PRIMARY KEY (device_ref, key_id)
    );

    CREATE TABLE device_queues (
      device_ref BIGINT PRIMARY KEY REFERENCES devices (ref) ON DELETE CASCADE,
      last_seq BIGINT NOT NULL DEFAULT 0,
      depth INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE payloads (
      id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      refs INTEGER NOT NULL,
      content BYTEA NOT NULL
    );
    CREATE TABLE messages (
      device_ref BIGINT NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
      seq BIGINT NOT NULL,
      guid BYTEA NOT NULL,
      type INTEGER NOT NULL,
      source_account_id TEXT NOT NULL,
      source_device_id INTEGER NOT NULL,
      destination_device_id INTEGER NOT NULL,
      timestamp BIGINT NOT NULL,
      server_timestamp BIGINT NOT NULL,
      content BYTEA NOT NULL,
      payload_id BIGINT,
      group_id TEXT,
      PRIMARY KEY (device_ref, seq)
    );
    CREATE INDEX messages_by_time ON messages (server_timestamp);

    CREATE FUNCTION parley_messages_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      -- Locks in key order first (as inserts do), so that a large delete and a fan-out cannot deadlock.
      PERFORM 1 FROM device_queues WHERE device_ref IN (SELECT device_ref FROM deleted_rows) ORDER BY device_ref FOR UPDATE;
      PERFORM 1 FROM payloads WHERE id IN (SELECT payload_id FROM deleted_rows) ORDER BY id FOR UPDATE;
      UPDATE device_queues q SET depth = q.depth - d.n
        FROM (SELECT device_ref, COUNT(*)::INTEGER AS n FROM deleted_rows GROUP BY device_ref) d
        WHERE q.device_ref = d.device_ref;
      UPDATE payloads p SET refs = p.refs - d.n
        FROM (SELECT payload_id, COUNT(*)::INTEGER AS n FROM deleted_rows WHERE payload_id IS NOT NULL GROUP BY payload_id) d
        WHERE p.id = d.payload_id;
      DELETE FROM payloads
        WHERE id IN (SELECT payload_id FROM deleted_rows WHERE payload_id IS NOT NULL) AND refs <= 0;
      RETURN NULL;
    END
    $$;
    CREATE TRIGGER messages_deleted AFTER DELETE ON messages
      REFERENCING OLD TABLE AS deleted_rows
      FOR EACH STATEMENT EXECUTE FUNCTION parley_messages_deleted();

    CREATE TABLE idempotency_keys (
      scope TEXT NOT NULL,
      key BYTEA NOT NULL,
      stored INTEGER NOT NULL,
      created_at BIGINT NOT NULL,
      PRIMARY KEY (scope, key)
    );
    CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);

    CREATE TABLE verification_codes (
      number TEXT PRIMARY KEY,
      code_hash BYTEA NOT NULL,
      expires_at BIGINT NOT NULL,
      attempts INTEGER NOT NULL
    );
    CREATE INDEX verification_codes_by_expiry ON verification_codes (expires_at);

    CREATE TABLE presence (
      account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
      visibility SMALLINT NOT NULL,
      last_seen BIGINT NOT NULL
    );
    CREATE TABLE presence_allowed (
      account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      allowed_account_id TEXT NOT NULL,
      PRIMARY KEY (account_id, allowed_account_id)
    );

    CREATE TABLE groups (
      id TEXT PRIMARY KEY,
      revision INTEGER NOT NULL,
      settings INTEGER NOT NULL,
      attributes BYTEA NOT NULL,
      invite_hash BYTEA,
      created_at BIGINT NOT NULL,
      creator TEXT NOT NULL
    );
    CREATE TABLE group_members (
      group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
      account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      admin BOOLEAN NOT NULL,
      joined_at BIGINT NOT NULL,
      joined_revision INTEGER NOT NULL,
      PRIMARY KEY (group_id, account_id)
    );
    CREATE INDEX group_members_by_account ON group_members (account_id, group_id);

    CREATE TABLE provisioning_codes (
      code_hash BYTEA PRIMARY KEY,
      account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      device_id INTEGER NOT NULL,
      expires_at BIGINT NOT NULL,
      used BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX provisioning_codes_by_account ON provisioning_codes (account_id);
    CREATE INDEX provisioning_codes_by_expiry ON provisioning_codes (expires_at);
    CREATE TABLE provisioning_envelopes (
      link_id TEXT PRIMARY KEY,
      body BYTEA NOT NULL,
      expires_at BIGINT NOT NULL
    );
    CREATE INDEX provisioning_envelopes_by_expiry ON provisioning_envelopes (expires_at);
    CREATE TABLE device_lists (
      account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
      version BIGINT NOT NULL,
      signed_list BYTEA NOT NULL,
      updated_at BIGINT NOT NULL
    );

    CREATE TABLE blobs (
      id TEXT PRIMARY KEY,
      account_id TEXT NOT NULL,
      size BIGINT NOT NULL,
      created_at BIGINT NOT NULL
    );
    CREATE INDEX blobs_by_account ON blobs (account_id, created_at);
    CREATE INDEX blobs_by_time ON blobs (created_at);
    CREATE TABLE blob_uploads (
      id TEXT PRIMARY KEY,
      blob_id TEXT,
      account_id TEXT NOT NULL,
      length BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    );
    CREATE INDEX blob_uploads_by_account ON blob_uploads (account_id, blob_id);
    CREATE INDEX blob_uploads_by_time ON blob_uploads (updated_at);
    CREATE TABLE blob_fetch_marks (
      blob_id TEXT PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
      last_registered_at BIGINT NOT NULL
    );
    CREATE INDEX blob_fetch_marks_by_time ON blob_fetch_marks (last_registered_at);
    CREATE TABLE blob_fetches (
      blob_id TEXT NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
      device_ref BIGINT NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
      registered_at BIGINT NOT NULL,
      PRIMARY KEY (blob_id, device_ref)
    );
    CREATE INDEX blob_fetches_by_device ON blob_fetches (device_ref);
  `,
};
