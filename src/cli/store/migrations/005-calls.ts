/**
 * Migration 5: calls (issue #8). A `call` message (kind `call`) records how a voice or video call went: one
 * JSON column of the message in the profile's record encoding, NULL for every other message.
 */
import type { Migration } from './index.js';

export const migration005: Migration = {
  version: 5,
  name: 'calls',
  up: `
    ALTER TABLE messages ADD COLUMN call TEXT;
  `,
};
