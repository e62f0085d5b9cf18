// Schema migrations: one test per migration (what it creates, on top of the ones before it), and the
// runner's rules (idempotent, version table, refuses a newer database, numbering without gaps).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { currentVersion, latestVersion, migrate } from '../../../src/server/storage/sqlite/migrate.ts';
import { MIGRATIONS } from '../../../src/server/storage/sqlite/migrations/index.ts';
import { sql, SqlHandle } from '../../../src/server/storage/sqlite/sql.ts';

function memoryDb(): SqlHandle {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  return new SqlHandle(db);
}

function tables(db: SqlHandle): string[] {
  return db.all<{ name: string }>(sql`SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name`).map((r) => r.name);
}

/** Applies migrations up to `version - 1`, then `version`, and returns the tables and indexes it added. */
function added(version: number): { db: SqlHandle; names: string[] } {
  const db = memoryDb();
  migrate(db, MIGRATIONS, version - 1);
  const before = new Set(tables(db));
  assert.deepEqual(migrate(db, MIGRATIONS, version), [version]);
  assert.equal(currentVersion(db), version);
  return { db, names: tables(db).filter((n) => !before.has(n)) };
}

describe('migration 1: accounts', () => {
  it('creates accounts and devices; device refs are never reused; devices cascade with their account', () => {
    const { db, names } = added(1);
    assert.deepEqual(names.sort(), ['accounts', 'devices']);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${new Uint8Array(33)}, ${1}, ${1})`);
    const insert = () => db.get<{ ref: number }>(sql`INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at) VALUES (${'a'}, ${1}, ${1}, ${new Uint8Array(32)}, ${new Uint8Array()}, ${1}) RETURNING ref`)?.ref;
    const first = insert();
    db.run(sql`DELETE FROM devices WHERE ref = ${first ?? 0}`);
    assert.ok((insert() ?? 0) > (first ?? 0), 'AUTOINCREMENT: a deleted ref is not reused');
    assert.throws(() => insert(), /UNIQUE/, 'one device id per account');
    db.run(sql`DELETE FROM accounts WHERE id = ${'a'}`);
    assert.equal(db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM devices`)?.n, 0);
  });
});

describe('migration 2: keys', () => {
  it('creates the key tables, keyed by device, deleted with the device', () => {
    const { db, names } = added(2);
    assert.deepEqual(names.sort(), ['kyber_last_resort_keys', 'kyber_pre_keys', 'pre_keys', 'signed_pre_keys']);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${new Uint8Array(33)}, ${1}, ${1})`);
    db.run(sql`INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at) VALUES (${'a'}, ${1}, ${1}, ${new Uint8Array(32)}, ${new Uint8Array()}, ${1})`);
    db.run(sql`INSERT INTO pre_keys (device_ref, key_id, public_key) VALUES (${1}, ${5}, ${new Uint8Array(33)})`);
    assert.throws(() => db.run(sql`INSERT INTO pre_keys (device_ref, key_id, public_key) VALUES (${99}, ${5}, ${new Uint8Array(33)})`), /FOREIGN KEY/);
    db.run(sql`DELETE FROM devices`);
    assert.equal(db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM pre_keys`)?.n, 0);
  });
});

describe('migration 3: messages', () => {
  it('creates the queue with its indexes and the idempotency keys', () => {
    const { names } = added(3);
    assert.deepEqual(names.sort(), ['idempotency_keys', 'idempotency_keys_by_time', 'messages', 'messages_by_device', 'messages_by_time']);
  });
});

describe('migration 4: verification', () => {
  it('creates the verification codes table', () => {
    const { db, names } = added(4);
    assert.deepEqual(names.sort(), ['verification_codes', 'verification_codes_by_expiry']);
    db.run(sql`INSERT INTO verification_codes (number, code_hash, expires_at, attempts) VALUES (${'+1'}, ${new Uint8Array(32)}, ${1}, ${0})`);
    assert.throws(() => db.run(sql`INSERT INTO verification_codes (number, code_hash, expires_at, attempts) VALUES (${'+1'}, ${new Uint8Array(32)}, ${1}, ${0})`), /UNIQUE|PRIMARY/);
  });
});

describe('migration 5: presence', () => {
  it('creates the presence tables', () => {
    const { names } = added(5);
    assert.deepEqual(names.sort(), ['presence', 'presence_allowed']);
  });
});

describe('migration 6: groups', () => {
  it('creates groups and members (indexed by account); members go with their group', () => {
    const { db, names } = added(6);
    assert.deepEqual(names.sort(), ['group_members', 'group_members_by_account', 'groups']);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${new Uint8Array(33)}, ${1}, ${1})`);
    db.run(sql`INSERT INTO groups (id, revision, settings, attributes, invite_hash, created_at, creator) VALUES (${'g'}, ${0}, ${1}, ${new Uint8Array()}, ${null}, ${1}, ${'a'})`);
    db.run(sql`INSERT INTO group_members (group_id, account_id, admin, joined_at, joined_revision) VALUES (${'g'}, ${'a'}, ${1}, ${1}, ${0})`);
    assert.throws(() => db.run(sql`INSERT INTO group_members (group_id, account_id, admin, joined_at, joined_revision) VALUES (${'g'}, ${'nobody'}, ${0}, ${1}, ${0})`), /FOREIGN KEY/);
    db.run(sql`DELETE FROM groups WHERE id = ${'g'}`);
    assert.equal(db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM group_members`)?.n, 0);
  });
});

describe('migration 7: payloads', () => {
  it('stores fan-out content once and deletes it with its last queue row, however that row goes', () => {
    const { db, names } = added(7);
    assert.deepEqual(names, ['payloads']);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${new Uint8Array(33)}, ${1}, ${1})`);
    for (const id of [1, 2]) {
      db.run(sql`INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at) VALUES (${'a'}, ${id}, ${1}, ${new Uint8Array(32)}, ${new Uint8Array()}, ${1})`);
    }
    db.run(sql`INSERT INTO payloads (id, refs, content) VALUES (${7}, ${2}, ${new Uint8Array(10)})`);
    for (const ref of [1, 2]) {
      db.run(sql`INSERT INTO messages (device_ref, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content, payload_id, group_id)
                 VALUES (${ref}, ${new Uint8Array(16)}, ${7}, ${'a'}, ${1}, ${ref}, ${1}, ${1}, ${new Uint8Array()}, ${7}, ${'g'})`);
    }
    const refs = () => db.get<{ refs: number }>(sql`SELECT refs FROM payloads WHERE id = ${7}`)?.refs;
    db.run(sql`DELETE FROM messages WHERE device_ref = ${1}`);
    assert.equal(refs(), 1);
    db.run(sql`DELETE FROM devices WHERE ref = ${2}`);
    assert.equal(refs(), undefined, 'the cascade of a device deletion releases the payload too');
  });
});

describe('migration 8: linked devices', () => {
  it('backfills each existing device with its account identity key, adds codes, provisioning messages and device lists', () => {
    const db = memoryDb();
    migrate(db, MIGRATIONS, 7);
    const accountKey = new Uint8Array(33).fill(5);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${accountKey}, ${1}, ${1})`);
    db.run(sql`INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at) VALUES (${'a'}, ${1}, ${1}, ${new Uint8Array(32)}, ${new Uint8Array()}, ${1})`);
    const before = new Set(tables(db));
    assert.deepEqual(migrate(db, MIGRATIONS, 8), [8]);
    assert.deepEqual(
      tables(db).filter((n) => !before.has(n)).sort(),
      ['device_lists', 'provisioning_codes', 'provisioning_codes_by_account', 'provisioning_codes_by_expiry', 'provisioning_envelopes', 'provisioning_envelopes_by_expiry'],
    );
    const row = db.get<{ identity_key: Uint8Array; identity: Uint8Array | null; listed: number }>(sql`SELECT identity_key, identity, listed FROM devices`);
    assert.deepEqual([...(row?.identity_key ?? [])], [...accountKey]);
    assert.equal(row?.identity, null);
    assert.equal(row?.listed, 0);
    db.run(sql`INSERT INTO provisioning_codes (code_hash, account_id, device_id, expires_at) VALUES (${new Uint8Array(32)}, ${'a'}, ${2}, ${10})`);
    db.run(sql`INSERT INTO device_lists (account_id, version, signed_list, updated_at) VALUES (${'a'}, ${1}, ${new Uint8Array(3)}, ${1})`);
    assert.throws(() => db.run(sql`INSERT INTO provisioning_codes (code_hash, account_id, device_id, expires_at) VALUES (${new Uint8Array(31)}, ${'nobody'}, ${2}, ${10})`), /FOREIGN KEY/);
    db.run(sql`DELETE FROM accounts`);
    assert.equal(db.get<{ n: number }>(sql`SELECT (SELECT COUNT(*) FROM provisioning_codes) + (SELECT COUNT(*) FROM device_lists) AS n`)?.n, 0, 'codes and lists go with their account');
  });
});

describe('migration 9: blobs', () => {
  it('creates the blob metadata with its indexes', () => {
    const { names } = added(9);
    assert.deepEqual(names.sort(), ['blobs', 'blobs_by_account', 'blobs_by_time']);
  });
});

describe('migration 10: blob uploads', () => {
  it('creates the table of resumable uploads with its indexes', () => {
    const { names } = added(10);
    assert.deepEqual(names.sort(), ['blob_uploads', 'blob_uploads_by_account', 'blob_uploads_by_time']);
  });
});

describe('migration 11: blob fetches', () => {
  it('creates the fetch marks and pending fetches; they go with their blob and their device', () => {
    const { db, names } = added(11);
    assert.deepEqual(names.sort(), ['blob_fetch_marks', 'blob_fetch_marks_by_time', 'blob_fetches', 'blob_fetches_by_device']);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${new Uint8Array(33)}, ${1}, ${1})`);
    for (const deviceId of [1, 2]) {
      db.run(sql`INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at) VALUES (${'a'}, ${deviceId}, ${1}, ${new Uint8Array(32)}, ${new Uint8Array()}, ${1})`);
    }
    const count = (table: 'blob_fetches' | 'blob_fetch_marks') =>
      db.get<{ n: number }>(table === 'blob_fetches' ? sql`SELECT COUNT(*) AS n FROM blob_fetches` : sql`SELECT COUNT(*) AS n FROM blob_fetch_marks`)?.n;
    for (const blob of ['b1', 'b2']) {
      db.run(sql`INSERT INTO blobs (id, account_id, size, created_at) VALUES (${blob}, ${'a'}, ${10}, ${1})`);
      db.run(sql`INSERT INTO blob_fetch_marks (blob_id, last_registered_at) VALUES (${blob}, ${1})`);
      for (const ref of [1, 2]) db.run(sql`INSERT INTO blob_fetches (blob_id, device_ref, registered_at) VALUES (${blob}, ${ref}, ${1})`);
    }
    assert.throws(() => db.run(sql`INSERT INTO blob_fetches (blob_id, device_ref, registered_at) VALUES (${'nope'}, ${1}, ${1})`), /FOREIGN KEY/);
    db.run(sql`DELETE FROM devices WHERE ref = ${2}`);
    assert.equal(count('blob_fetches'), 2, "a removed device's pending fetches go with it");
    db.run(sql`DELETE FROM blobs WHERE id = ${'b1'}`);
    assert.equal(count('blob_fetches'), 1, 'pending fetches go with their blob');
    assert.equal(count('blob_fetch_marks'), 1, 'marks go with their blob');
  });
});

describe('migration 12: blob uploads without id', () => {
  it('keeps the uploads and their indexes and lets the blob id be unknown', () => {
    const db = memoryDb();
    migrate(db, MIGRATIONS, 11);
    db.run(sql`INSERT INTO blob_uploads (id, blob_id, account_id, length, updated_at) VALUES (${'u1'}, ${'b'}, ${'a'}, ${5}, ${7})`);
    assert.throws(() => db.run(sql`INSERT INTO blob_uploads (id, blob_id, account_id, length, updated_at) VALUES (${'u2'}, ${null}, ${'a'}, ${5}, ${7})`), /NOT NULL/);
    const before = tables(db);
    assert.deepEqual(migrate(db, MIGRATIONS, 12), [12]);
    assert.deepEqual(tables(db), before, 'same tables and indexes');
    db.run(sql`INSERT INTO blob_uploads (id, blob_id, account_id, length, updated_at) VALUES (${'u2'}, ${null}, ${'a'}, ${5}, ${7})`);
    const rows = db.all<{ id: string; blob_id: string | null; length: number; updated_at: number }>(sql`SELECT id, blob_id, length, updated_at FROM blob_uploads ORDER BY id`);
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ id: 'u1', blob_id: 'b', length: 5, updated_at: 7 }, { id: 'u2', blob_id: null, length: 5, updated_at: 7 }]);
  });
});

describe('migration 13: backups', () => {
  it('creates backups, one row per account, deleted with the account (so re-registration, which keeps the account, keeps it)', () => {
    const { db, names } = added(13);
    assert.deepEqual(names, ['backups']);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${new Uint8Array(33)}, ${1}, ${1})`);
    const insert = (account: string): unknown =>
      db.run(sql`INSERT INTO backups (account_id, blob_id, size, created_at, uploaded_at, format_version) VALUES (${account}, ${'b'}, ${1}, ${1}, ${1}, ${1})`);
    insert('a');
    assert.throws(() => insert('a'), /UNIQUE|PRIMARY/);
    assert.throws(() => insert('x'), /FOREIGN KEY/);
    db.run(sql`DELETE FROM accounts`);
    assert.equal(db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM backups`)?.n, 0);
  });
});

describe('migration 14: push', () => {
  it('creates push_subscriptions (one per device, deleted with the device) and the one-row push_vapid', () => {
    const { db, names } = added(14);
    assert.deepEqual(names.sort(), ['push_subscriptions', 'push_vapid']);
    db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at) VALUES (${'a'}, ${'+1'}, ${new Uint8Array(33)}, ${1}, ${1})`);
    const ref = db.get<{ ref: number }>(sql`INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at) VALUES (${'a'}, ${1}, ${1}, ${new Uint8Array(32)}, ${new Uint8Array()}, ${1}) RETURNING ref`)?.ref ?? 0;
    const insert = (device: number): unknown =>
      db.run(sql`INSERT INTO push_subscriptions (device_ref, account_id, endpoint, p256dh, auth, updated_at) VALUES (${device}, ${'a'}, ${'https://p.test/1'}, ${new Uint8Array(65)}, ${new Uint8Array(16)}, ${1})`);
    insert(ref);
    assert.throws(() => insert(ref), /UNIQUE|PRIMARY/);
    assert.throws(() => insert(ref + 1), /FOREIGN KEY/);
    db.run(sql`DELETE FROM devices`);
    assert.equal(db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM push_subscriptions`)?.n, 0);
    db.run(sql`INSERT INTO push_vapid (id, public_key, private_key, created_at) VALUES (${1}, ${'p'}, ${'k'}, ${1})`);
    assert.throws(() => db.run(sql`INSERT INTO push_vapid (id, public_key, private_key, created_at) VALUES (${2}, ${'p'}, ${'k'}, ${1})`), /CHECK/);
  });
});

describe('migration runner', () => {
  it('covers every migration with a test above', () => {
    assert.equal(latestVersion(), 14, 'a new migration needs its own describe block in this file');
  });

  it('applies everything once and records each version', () => {
    const db = memoryDb();
    assert.deepEqual(migrate(db), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert.deepEqual(migrate(db), [], 'a second run applies nothing');
    const rows = db.all<{ version: number; name: string }>(sql`SELECT version, name FROM schema_migrations ORDER BY version`);
    assert.deepEqual(rows.map((r) => `${r.version}:${r.name}`), ['1:accounts', '2:keys', '3:messages', '4:verification', '5:presence', '6:groups', '7:payloads', '8:linked-devices', '9:blobs', '10:blob-uploads', '11:blob-fetches', '12:blob-uploads-without-id', '13:backups', '14:push']);
  });

  it('refuses a database newer than the server', () => {
    const db = memoryDb();
    migrate(db);
    db.run(sql`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${99}, ${'future'}, ${0})`);
    assert.throws(() => migrate(db), /newer than this server/);
  });

  it('refuses gaps in the numbering', () => {
    const db = memoryDb();
    assert.throws(() => migrate(db, [MIGRATIONS[0], MIGRATIONS[2]].filter((m) => m !== undefined)), /without gaps/);
  });

  it('rolls a failing migration back entirely', () => {
    const db = memoryDb();
    const broken = { version: 1, name: 'broken', up: (raw: Database.Database) => raw.exec('CREATE TABLE half (x INTEGER); CREATE TABLE half (x INTEGER);') };
    assert.throws(() => migrate(db, [broken]));
    assert.equal(currentVersion(db), 0);
    assert.deepEqual(tables(db), ['schema_migrations']);
  });
});
