import { migration001 } from './001-accounts.js';
import { migration002 } from './002-keys.js';
import { migration003 } from './003-messages.js';
import { migration004 } from './004-verification.js';
import { migration005 } from './005-presence.js';
import { migration006 } from './006-groups.js';
import { migration007 } from './007-payloads.js';
import { migration008 } from './008-linked-devices.js';
import { migration009 } from './009-blobs.js';
import { migration010 } from './010-blob-uploads.js';
import { migration011 } from './011-blob-fetches.js';
import { migration012 } from './012-blob-uploads-without-id.js';
import { migration013 } from './013-backups.js';
import { migration014 } from './014-push.js';
import type { Migration } from './migration.js';

/** Every migration, in order. Append new ones; never edit or reorder applied ones. */
export const MIGRATIONS: readonly Migration[] = [migration001, migration002, migration003, migration004, migration005, migration006, migration007, migration008, migration009, migration010, migration011, migration012, migration013, migration014];
