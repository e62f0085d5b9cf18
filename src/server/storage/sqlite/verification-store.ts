import { timingSafeEqual } from 'node:crypto';
import type { PhoneNumber } from '../../ids.js';
import type { CodeCheck, VerificationRecord, VerificationStore } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql } from './sql.js';

/** {@link VerificationStore} on SQLite. Codes are stored as SHA-256 hashes. */
export class SqliteVerificationStore implements VerificationStore {
  readonly #writer: GroupCommitWriter;

  constructor(writer: GroupCommitWriter) {
    this.#writer = writer;
  }

  put(r: VerificationRecord): Promise<void> {
    return this.#writer.enqueue((db) => {
      db.run(sql`INSERT OR REPLACE INTO verification_codes (number, code_hash, expires_at, attempts)
                 VALUES (${r.number}, ${r.codeHash}, ${r.expiresAt}, ${r.attempts})`);
    });
  }

  check(number: PhoneNumber, codeHash: Uint8Array, now: number, maxAttempts: number): Promise<CodeCheck> {
    // Read, compare and count in one write job, so concurrent guesses cannot exceed maxAttempts.
    return this.#writer.enqueue((db): CodeCheck => {
      const row = db.get<{ code_hash: Uint8Array; expires_at: number; attempts: number }>(
        sql`SELECT code_hash, expires_at, attempts FROM verification_codes WHERE number = ${number}`,
      );
      if (row === undefined) return 'none';
      if (row.expires_at <= now || row.attempts >= maxAttempts) {
        db.run(sql`DELETE FROM verification_codes WHERE number = ${number}`);
        return 'none';
      }
      const stored = Buffer.from(row.code_hash);
      const given = Buffer.from(codeHash);
      if (stored.length === given.length && timingSafeEqual(stored, given)) {
        db.run(sql`DELETE FROM verification_codes WHERE number = ${number}`);
        return 'ok';
      }
      if (row.attempts + 1 >= maxAttempts) db.run(sql`DELETE FROM verification_codes WHERE number = ${number}`);
      else db.run(sql`UPDATE verification_codes SET attempts = attempts + 1 WHERE number = ${number}`);
      return 'wrong';
    });
  }

  expire(now: number): Promise<number> {
    return this.#writer.enqueue((db) => db.run(sql`DELETE FROM verification_codes WHERE expires_at <= ${now}`).changes);
  }
}
