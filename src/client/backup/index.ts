/**
 * End-to-end encrypted backups (issue #10, docs/backups.md): {@link BackupManager} for set-up, backup, status
 * and restore; the format, key and transfer pieces for callers that compose their own.
 */
export { BackupManager, BACKUP_CONFIG_KEY, DEFAULT_BACKUP_SETTINGS_KEYS, MemoryBackupSink } from './manager.js';
export type { BackupPolicy, BackupResult, BackupSetUpOptions, BackupStatus, CreateBackupOptions, RestoreBackupOptions, BackupManagerOptions } from './manager.js';
export { writeBackup, type BackupProgress, type BackupProtection, type BackupSink, type WriteBackupOptions, type WrittenBackup } from './export.js';
export { readBackup, type BackupUnlocker, type ReadBackupOptions, type RestoredBackup } from './import.js';
export { BACKUP_FORMAT_VERSION, DEFAULT_FRAME_BYTES, type BackupHeader, type KdfParams, type KeySlot } from './format.js';
export { DEFAULT_KDF, RECOVERY_KEY_DIGITS, formatRecoveryKey, generateRecoveryKey, parseRecoveryKey } from './keys.js';
export { createPasswordSlot, passwordUnlocker, recoveryProtection, recoveryUnlocker, type PasswordSlot } from './protect.js';
export type { BackupCounts } from './records.js';
export { BackupApi, downloadFile, uploadFile, type NewServerBackup, type ServerBackup } from './transfer.js';
