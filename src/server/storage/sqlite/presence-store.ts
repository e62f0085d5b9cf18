import type { AccountId } from '../../ids.js';
import type { PresenceRecord, PresenceStore, Visibility } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

const VISIBILITY_CODES: Readonly<Record<Visibility, number>> = { everyone: 0, nobody: 1, allowed: 2 };
const VISIBILITIES: readonly Visibility[] = ['everyone', 'nobody', 'allowed'];

/** {@link PresenceStore} on SQLite. An account without a row has the defaults (everyone, never seen). */
export class SqlitePresenceStore implements PresenceStore {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;

  constructor(reader: SqlHandle, writer: GroupCommitWriter) {
    this.#reader = reader;
    this.#writer = writer;
  }

  async get(id: AccountId): Promise<PresenceRecord> {
    const row = this.#reader.get<{ visibility: number; last_seen: number }>(sql`SELECT visibility, last_seen FROM presence WHERE account_id = ${id}`);
    const visibility = VISIBILITIES[row?.visibility ?? 0] ?? 'nobody';
    const allowed =
      visibility === 'allowed'
        ? new Set(this.#reader.all<{ a: string }>(sql`SELECT allowed_account_id AS a FROM presence_allowed WHERE account_id = ${id}`).map((r) => r.a as AccountId))
        : new Set<AccountId>();
    return { visibility, allowed, lastSeen: row?.last_seen ?? 0 };
  }

  setSettings(id: AccountId, visibility: Visibility, allowed: readonly AccountId[]): Promise<void> {
    return this.#writer.enqueue((db) => {
      db.run(sql`INSERT INTO presence (account_id, visibility, last_seen) VALUES (${id}, ${VISIBILITY_CODES[visibility]}, ${0})
                 ON CONFLICT (account_id) DO UPDATE SET visibility = excluded.visibility`);
      db.run(sql`DELETE FROM presence_allowed WHERE account_id = ${id}`);
      for (const a of new Set(allowed)) db.run(sql`INSERT INTO presence_allowed (account_id, allowed_account_id) VALUES (${id}, ${a})`);
    });
  }

  setLastSeen(id: AccountId, at: number): Promise<void> {
    return this.#writer.enqueue((db) => {
      db.run(sql`INSERT INTO presence (account_id, visibility, last_seen) VALUES (${id}, ${0}, ${at})
                 ON CONFLICT (account_id) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)`);
    });
  }
}
