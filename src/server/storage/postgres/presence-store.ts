import type { AccountId } from '../../ids.js';
import type { PresenceRecord, PresenceStore, Visibility } from '../stores.js';
import type { PostgresDatabase } from './database.js';
import { sql } from './sql.js';

const VISIBILITY_CODES: Readonly<Record<Visibility, number>> = { everyone: 0, nobody: 1, allowed: 2 };
const VISIBILITIES: readonly Visibility[] = ['everyone', 'nobody', 'allowed'];

/** {@link PresenceStore} on PostgreSQL. An account without a row has the defaults (everyone, never seen). */
export class PostgresPresenceStore implements PresenceStore {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  async get(id: AccountId): Promise<PresenceRecord> {
    // One statement, one snapshot: the visibility and the list it goes with.
    const rows = await this.#db.read.all<{ visibility: number; last_seen: number; allowed: string | null }>(sql`
      SELECT p.visibility, p.last_seen, a.allowed_account_id AS allowed
      FROM presence p LEFT JOIN presence_allowed a ON a.account_id = p.account_id AND p.visibility = ${VISIBILITY_CODES.allowed}
      WHERE p.account_id = ${id}`);
    const row = rows[0];
    const visibility = VISIBILITIES[row?.visibility ?? 0] ?? 'nobody';
    const allowed = new Set(visibility === 'allowed' ? rows.flatMap((r) => (r.allowed === null ? [] : [r.allowed as AccountId])) : []);
    return { visibility, allowed, lastSeen: row?.last_seen ?? 0 };
  }

  setSettings(id: AccountId, visibility: Visibility, allowed: readonly AccountId[]): Promise<void> {
    return this.#db.transaction(async (db) => {
      // The upsert locks the account's presence row: concurrent settings of one account apply in turn.
      await db.run(sql`INSERT INTO presence (account_id, visibility, last_seen) VALUES (${id}, ${VISIBILITY_CODES[visibility]}, ${0})
                       ON CONFLICT (account_id) DO UPDATE SET visibility = excluded.visibility`);
      await db.run(sql`DELETE FROM presence_allowed WHERE account_id = ${id}`);
      const list = [...new Set(allowed)];
      if (list.length > 0) {
        await db.run(sql`INSERT INTO presence_allowed (account_id, allowed_account_id) SELECT ${id}, a FROM unnest(${list}::text[]) AS a`);
      }
    });
  }

  async setLastSeen(id: AccountId, at: number): Promise<void> {
    await this.#db.read.run(sql`INSERT INTO presence (account_id, visibility, last_seen) VALUES (${id}, ${0}, ${at})
                                ON CONFLICT (account_id) DO UPDATE SET last_seen = GREATEST(presence.last_seen, excluded.last_seen)`);
  }
}
