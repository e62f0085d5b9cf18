/** The SQLite backend: every store on one database in the data folder. */
import type { Storage } from '../stores.js';
import { SqliteAccountStore } from './account-store.js';
import { SqliteBackupStore } from './backup-store.js';
import { SqliteBlobIndex } from './blob-index.js';
import type { Checkpointer } from './checkpointer.js';
import { openDatabase } from './database.js';
import { GroupCommitWriter } from './group-commit.js';
import { SqliteGroupStore } from './group-store.js';
import { SqliteDeviceStore } from './device-store.js';
import { SqliteKeyStore } from './key-store.js';
import { SqliteMessageStore } from './message-store.js';
import { SqlitePresenceStore } from './presence-store.js';
import { SqliteProvisioningStore } from './provisioning-store.js';
import { SqlitePushStore } from './push-store.js';
import { SqliteVerificationStore } from './verification-store.js';
import { WalSync } from './wal-sync.js';

/** The SQLite {@link Storage}, plus the path of its file (tests inspect it). */
export interface SqliteStorage extends Storage {
  readonly file: string;
  readonly writer: GroupCommitWriter;
  readonly checkpointer: Checkpointer;
}

/** Opens (creating and migrating when needed) the database in `dataDir`. */
export function openSqliteStorage(dataDir: string): SqliteStorage {
  const connections = openDatabase(dataDir);
  const walSync = new WalSync(connections.file);
  const checkpointer = connections.checkpointer;
  const writer = new GroupCommitWriter(connections.writer, walSync, { run: () => checkpointer.now(), intervalMs: 500 });
  const messages = new SqliteMessageStore(connections.reader, writer);
  const accounts = new SqliteAccountStore(connections.reader, writer, (refs) => messages.forgetDevices(refs));
  return {
    file: connections.file,
    writer,
    checkpointer: connections.checkpointer,
    accounts,
    keys: new SqliteKeyStore(connections.reader, writer),
    messages,
    verification: new SqliteVerificationStore(writer),
    presence: new SqlitePresenceStore(connections.reader, writer),
    groups: new SqliteGroupStore(connections.reader, writer, messages),
    devices: new SqliteDeviceStore(connections.reader, writer, {
      accountChanged: (id) => accounts.forget(id),
      devicesRemoved: (refs) => messages.forgetDevices(refs),
    }),
    provisioning: new SqliteProvisioningStore(writer),
    blobs: new SqliteBlobIndex(connections.reader, writer),
    backups: new SqliteBackupStore(writer),
    push: new SqlitePushStore(connections.reader, writer),
    async close(): Promise<void> {
      await writer.close();
      await walSync.close();
      await connections.close();
    },
  };
}
