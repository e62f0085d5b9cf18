import type { PostgresMigration } from './migration.js';

/**
 * Web Push (issue #7; SQLite's migration 14): each device's push subscription (at most one; it goes with
 * the device) and the server's VAPID key pair (one row, `id = 1`, written by the first node that starts;
 * every other node reads it).
 */
export const migration003: PostgresMigration = {
  version: 3,
  name: 'push',
  up: `
    CREATE TABLE push_subscriptions (
      device_ref BIGINT PRIMARY KEY REFERENCES devices (ref) ON DELETE CASCADE,
      account_id TEXT NOT NULL,
      endpoint TEXT NOT NULL,
      p256dh BYTEA NOT NULL,
      auth BYTEA NOT NULL,
      updated_at BIGINT NOT NULL
    );
    CREATE TABLE push_vapid (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      public_key TEXT NOT NULL,
      private_key TEXT NOT NULL,
      created_at BIGINT NOT NULL
    );
  `,
};
