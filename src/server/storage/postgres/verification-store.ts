import { timingSafeEqual } from 'node:crypto';
import type { PhoneNumber } from '../../ids.js';
import type { CodeCheck, VerificationRecord, VerificationStore } from '../stores.js';
import type { PostgresDatabase } from './database.js';
import { sql } from './sql.js';

/** {@link VerificationStore} on PostgreSQL. Codes are stored as SHA-256 hashes. */
export class PostgresVerificationStore implements VerificationStore {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  async put(r: VerificationRecord): Promise<void> {
    await this.#db.read.run(sql`
      INSERT INTO verification_codes (number, code_hash, expires_at, attempts) VALUES (${r.number}, ${r.codeHash}, ${r.expiresAt}, ${r.attempts})
      ON CONFLICT (number) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = excluded.attempts`);
  }

  check(number: PhoneNumber, codeHash: Uint8Array, now: number, maxAttempts: number): Promise<CodeCheck> {
    // Read (locking the row), compare and count in one transaction: guesses sent to several nodes at once
    // are counted one after the other and cannot exceed maxAttempts.
    return this.#db.transaction(async (db): Promise<CodeCheck> => {
      const row = await db.get<{ code_hash: Uint8Array; expires_at: number; attempts: number }>(
        sql`SELECT code_hash, expires_at, attempts FROM verification_codes WHERE number = ${number} FOR UPDATE`,
      );
      if (row === undefined) return 'none';
      if (row.expires_at <= now || row.attempts >= maxAttempts) {
        await db.run(sql`DELETE FROM verification_codes WHERE number = ${number}`);
        return 'none';
      }
      const stored = Buffer.from(row.code_hash);
      const given = Buffer.from(codeHash);
      if (stored.length === given.length && timingSafeEqual(stored, given)) {
        await db.run(sql`DELETE FROM verification_codes WHERE number = ${number}`);
        return 'ok';
      }
      if (row.attempts + 1 >= maxAttempts) await db.run(sql`DELETE FROM verification_codes WHERE number = ${number}`);
      else await db.run(sql`UPDATE verification_codes SET attempts = attempts + 1 WHERE number = ${number}`);
      return 'wrong';
    });
  }

  expire(now: number): Promise<number> {
    return this.#db.read.run(sql`DELETE FROM verification_codes WHERE expires_at <= ${now}`);
  }
}
