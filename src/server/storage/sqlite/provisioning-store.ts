import type { ProvisioningStore } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql } from './sql.js';

/** {@link ProvisioningStore} on SQLite: one row per link id, taken (read and deleted) in one write job. */
export class SqliteProvisioningStore implements ProvisioningStore {
  readonly #writer: GroupCommitWriter;

  constructor(writer: GroupCommitWriter) {
    this.#writer = writer;
  }

  put(linkId: string, body: Uint8Array, expiresAt: number): Promise<void> {
    return this.#writer.enqueue((db) => {
      db.run(sql`INSERT INTO provisioning_envelopes (link_id, body, expires_at) VALUES (${linkId}, ${body}, ${expiresAt})
                 ON CONFLICT (link_id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at`);
    });
  }

  take(linkId: string, now: number): Promise<Uint8Array | undefined> {
    return this.#writer.enqueue((db) => {
      const row = db.get<{ body: Uint8Array; expires_at: number }>(sql`DELETE FROM provisioning_envelopes WHERE link_id = ${linkId} RETURNING body, expires_at`);
      return row === undefined || row.expires_at <= now ? undefined : row.body;
    });
  }

  expire(now: number): Promise<number> {
    return this.#writer.enqueue((db) => db.run(sql`DELETE FROM provisioning_envelopes WHERE expires_at <= ${now}`).changes);
  }
}
