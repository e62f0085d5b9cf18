import type { ProvisioningStore } from '../stores.js';
import type { PostgresDatabase } from './database.js';
import { sql } from './sql.js';

/** {@link ProvisioningStore} on PostgreSQL: one row per link id, taken with `DELETE ... RETURNING` (one node gets it). */
export class PostgresProvisioningStore implements ProvisioningStore {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  async put(linkId: string, body: Uint8Array, expiresAt: number): Promise<void> {
    await this.#db.read.run(sql`INSERT INTO provisioning_envelopes (link_id, body, expires_at) VALUES (${linkId}, ${body}, ${expiresAt})
                                ON CONFLICT (link_id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at`);
  }

  async take(linkId: string, now: number): Promise<Uint8Array | undefined> {
    const row = await this.#db.read.get<{ body: Uint8Array; expires_at: number }>(sql`DELETE FROM provisioning_envelopes WHERE link_id = ${linkId} RETURNING body, expires_at`);
    return row === undefined || row.expires_at <= now ? undefined : row.body;
  }

  expire(now: number): Promise<number> {
    return this.#db.read.run(sql`DELETE FROM provisioning_envelopes WHERE expires_at <= ${now}`);
  }
}
