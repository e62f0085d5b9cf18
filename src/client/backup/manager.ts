/**
 * Backups as a user sees them (issue #10, docs/backups.md): set up once with a recovery key and/or a
 * password, then back up (by hand or on a schedule) to the server's blob store and optionally to a file;
 * restore on a new device after re-registering the number. This is the SDK surface the terminal client and the
 * web app's settings screen sit on.
 *
 * The device keeps its backup configuration in the store (settings key {@link BACKUP_CONFIG_KEY}): the
 * wrapping keys derived from the recovery key and the password (never the recovery key or the password
 * themselves), the password slot it registers with each backup, whether files are included, the schedule,
 * and the last backup. That is what lets a scheduled backup run without asking for anything.
 */
import { fromHex, toHex, type CryptoProvider } from '../../protocol/index.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { BlobHttp } from '../media/blob-http.js';
import type { MediaFiles } from '../media/types.js';
import type { ClientStore, JsonValue } from '../store/types.js';
import { writeBackup, type BackupProgress, type BackupProtection, type BackupSink, type WrittenBackup } from './export.js';
import { BACKUP_FORMAT_VERSION, checkKdfParams, type KdfParams } from './format.js';
import { readBackup, type RestoredBackup } from './import.js';
import { DEFAULT_KDF, generateRecoveryKey, parseRecoveryKey } from './keys.js';
import { createPasswordSlot, passwordUnlocker, recoveryProtection, recoveryUnlocker } from './protect.js';
import type { BackupCounts } from './records.js';
import { downloadFile, uploadFile, type BackupApi, type ServerBackup } from './transfer.js';

/** Settings key of the device's backup configuration (never carried in a backup). */
export const BACKUP_CONFIG_KEY = 'backup.config';
/** Settings a backup carries by default (user preferences; key-management state never). */
export const DEFAULT_BACKUP_SETTINGS_KEYS: readonly string[] = ['prefs.theme', 'prefs.notifications', 'prefs.readReceipts', 'prefs.typingIndicators', 'prefs.language'];

/** How often a scheduled backup runs, and what it includes. */
export interface BackupPolicy {
  /** Milliseconds between automatic backups; undefined or 0: only by hand. */
  readonly everyMs?: number | undefined;
  readonly includeMedia?: boolean | undefined;
}

/** Options of {@link BackupManager.setUp}. */
export interface BackupSetUpOptions extends BackupPolicy {
  /**
   * `true`: make a new recovery key (returned once, never stored). A string: use this recovery key, made by
   * {@link generateRecoveryKey} (an app that shows the key and has the user confirm it before anything is saved).
   */
  readonly recoveryKey?: boolean | string | undefined;
  /** Protect with this password (Argon2id, the server's share and attempt counter). */
  readonly password?: string | undefined;
  /** Argon2id parameters (default {@link DEFAULT_KDF}). */
  readonly kdf?: KdfParams | undefined;
}

/** Options of {@link BackupManager.create}. */
export interface CreateBackupOptions {
  /** Upload to the server and make it the account's current backup (default true). */
  readonly upload?: boolean | undefined;
  /** Also write the file here (an offline copy: "export to file"). */
  readonly output?: BackupSink | undefined;
  /** Overrides the configured choice for this backup. */
  readonly includeMedia?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: BackupProgress) => void) | undefined;
}

/** What a backup run made. */
export interface BackupResult {
  readonly createdAt: number;
  readonly size: number;
  /** The blob id (hex SHA-256 of the file). */
  readonly sha256: string;
  readonly uploaded: boolean;
  readonly counts: BackupCounts;
  readonly protectedBy: readonly ('recovery-key' | 'password')[];
}

/** Options of {@link BackupManager.restore}. */
export interface RestoreBackupOptions {
  readonly recoveryKey?: string | undefined;
  readonly password?: string | undefined;
  /** Restore from these bytes (an exported file) instead of the server's current backup. */
  readonly source?: AsyncIterable<Uint8Array> | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: BackupProgress) => void) | undefined;
}

/** What {@link BackupManager.status} reports. */
export interface BackupStatus {
  /** Whether this device is set up to make backups (and with what). */
  readonly configured: boolean;
  readonly protectedBy: readonly ('recovery-key' | 'password')[];
  readonly includeMedia: boolean;
  readonly everyMs: number | undefined;
  readonly lastBackupAt: number | undefined;
  /** When the next scheduled backup is due (undefined without a schedule). */
  readonly nextBackupAt: number | undefined;
  /** The account's current backup on the server, if any. */
  readonly server: ServerBackup | undefined;
}

interface StoredConfig {
  readonly v: 1;
  readonly recovery?: { readonly salt: string; readonly wrapKey: string } | undefined;
  readonly password?: { readonly slotId: string; readonly salt: string; readonly kdf: KdfParams; readonly verifier: string; readonly share: string; readonly wrapKey: string } | undefined;
  readonly includeMedia: boolean;
  readonly everyMs?: number | undefined;
  readonly lastBackupAt?: number | undefined;
}

export interface BackupManagerOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly media?: MediaFiles | undefined;
  readonly api: BackupApi;
  readonly blobs: BlobHttp;
  readonly now?: (() => number) | undefined;
  /** Settings carried in a backup (default {@link DEFAULT_BACKUP_SETTINGS_KEYS}). */
  readonly settingsKeys?: readonly string[] | undefined;
  /** Bytes per upload PATCH (default 8 MiB). */
  readonly uploadChunkBytes?: number | undefined;
}

function readConfig(value: JsonValue | undefined): StoredConfig | undefined {
  if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const c = value as unknown as StoredConfig;
  return c.v === 1 ? c : undefined;
}

function protectedBy(c: StoredConfig | undefined): ('recovery-key' | 'password')[] {
  const out: ('recovery-key' | 'password')[] = [];
  if (c?.recovery) out.push('recovery-key');
  if (c?.password) out.push('password');
  return out;
}

/** Collects bytes in memory (an exported file in tests, a browser download). */
export class MemoryBackupSink implements BackupSink {
  readonly #parts: Uint8Array[] = [];
  async write(chunk: Uint8Array): Promise<void> {
    this.#parts.push(chunk.slice());
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export class BackupManager {
  readonly #o: BackupManagerOptions;
  readonly #now: () => number;
  #running: Promise<unknown> | undefined;

  constructor(options: BackupManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async #config(): Promise<StoredConfig | undefined> {
    return readConfig(await this.#o.store.transaction((tx) => tx.settings.get(BACKUP_CONFIG_KEY)));
  }

  async #saveConfig(c: StoredConfig): Promise<void> {
    await this.#o.store.transaction((tx) => tx.settings.put(BACKUP_CONFIG_KEY, c as unknown as JsonValue));
  }

  /**
   * Sets up (or changes) how this device's backups are protected: a new recovery key (returned: show it
   * once; or one the caller made and showed), a password (a new server slot), or both; what is not given is kept from the current set-up
   * unless `replace` says otherwise. Also sets the schedule and whether files are included.
   */
  async setUp(o: BackupSetUpOptions & { replace?: boolean }): Promise<{ recoveryKey: string | undefined }> {
    const old = o.replace === true ? undefined : await this.#config();
    let recoveryKey: string | undefined;
    let recovery = old?.recovery;
    if (o.recoveryKey === true || typeof o.recoveryKey === 'string') {
      recoveryKey = o.recoveryKey === true ? generateRecoveryKey(this.#o.crypto) : parseRecoveryKey(o.recoveryKey);
      const p = await recoveryProtection(this.#o.crypto, recoveryKey);
      recovery = { salt: toHex(p.salt), wrapKey: toHex(p.wrapKey) };
    }
    let password = old?.password;
    if (o.password !== undefined) {
      const slot = await createPasswordSlot(this.#o.crypto, o.password, checkKdfParams(o.kdf ?? DEFAULT_KDF));
      password = { slotId: slot.slotId, salt: toHex(slot.salt), kdf: slot.kdf, verifier: toHex(slot.verifier), share: toHex(slot.share), wrapKey: toHex(slot.wrapKey) };
    }
    if (!recovery && !password) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup needs a recovery key or a password');
    const everyMs = o.everyMs ?? old?.everyMs;
    if (everyMs !== undefined && (!Number.isSafeInteger(everyMs) || everyMs < 0)) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup interval is a whole number of milliseconds');
    await this.#saveConfig({ v: 1, recovery, password, includeMedia: o.includeMedia ?? old?.includeMedia ?? false, everyMs, lastBackupAt: old?.lastBackupAt });
    return { recoveryKey };
  }

  /** Changes the schedule or the media choice without touching the keys. */
  async setPolicy(policy: BackupPolicy): Promise<void> {
    const c = await this.#config();
    if (!c) throw new ClientError(ClientErrorCode.InvalidArgument, 'set up backups first (a recovery key or a password)');
    await this.#saveConfig({ ...c, everyMs: policy.everyMs ?? c.everyMs, includeMedia: policy.includeMedia ?? c.includeMedia });
  }

  /** Forgets this device's backup set-up (the server's backup stays until deleted). */
  async forget(): Promise<void> {
    await this.#o.store.transaction((tx) => tx.settings.put(BACKUP_CONFIG_KEY, null));
  }

  /**
   * Makes a backup with the configured protection: writes it (to a staging file of the media files, or in
   * memory without them), uploads it and registers it as the account's current backup, and/or writes the
   * file to `output`. One run at a time.
   */
  async create(o: CreateBackupOptions = {}): Promise<BackupResult> {
    if (this.#running) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup is being made already', { retryable: true, retryAfterMs: 10_000 });
    const run = this.#create(o);
    this.#running = run;
    try {
      return await run;
    } finally {
      this.#running = undefined;
    }
  }

  async #create(o: CreateBackupOptions): Promise<BackupResult> {
    const c = await this.#config();
    if (!c) throw new ClientError(ClientErrorCode.InvalidArgument, 'set up backups first (a recovery key or a password)');
    const protection: BackupProtection = {
      recovery: c.recovery && { salt: fromHex(c.recovery.salt), wrapKey: fromHex(c.recovery.wrapKey) },
      password: c.password && { slotId: c.password.slotId, salt: fromHex(c.password.salt), kdf: c.password.kdf, wrapKey: fromHex(c.password.wrapKey) },
    };
    const upload = o.upload ?? true;
    if (!upload && !o.output) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup goes to the server, to a file, or both');
    const staging = upload ? await this.#staging() : undefined;
    try {
      const sink: BackupSink = {
        write: async (chunk) => {
          await staging?.append(chunk);
          await o.output?.write(chunk);
        },
      };
      const written: WrittenBackup = await writeBackup(
        {
          crypto: this.#o.crypto,
          store: this.#o.store,
          media: this.#o.media,
          includeMedia: o.includeMedia ?? c.includeMedia,
          settingsKeys: this.#o.settingsKeys ?? DEFAULT_BACKUP_SETTINGS_KEYS,
          protection,
          now: this.#now,
          signal: o.signal,
          onProgress: o.onProgress,
        },
        sink,
      );
      if (staging) {
        await uploadFile(
          this.#o.blobs,
          { size: written.size, sha256: written.sha256, read: () => staging.read() },
          { chunkBytes: this.#o.uploadChunkBytes, signal: o.signal, onProgress: (done, total) => o.onProgress?.({ phase: 'upload', done, total }) },
        );
        const p = c.password;
        await this.#o.api.put(
          {
            blobId: written.sha256,
            size: written.size,
            createdAt: written.createdAt,
            formatVersion: BACKUP_FORMAT_VERSION,
            password: p && { slotId: p.slotId, salt: fromHex(p.salt), kdf: p.kdf, verifier: fromHex(p.verifier), share: fromHex(p.share) },
          },
          o.signal,
        );
      }
      // Re-read: a set-up may have changed meanwhile; only the time of the last backup is ours to write.
      const latest = (await this.#config()) ?? c;
      await this.#saveConfig({ ...latest, lastBackupAt: written.createdAt });
      return { createdAt: written.createdAt, size: written.size, sha256: written.sha256, uploaded: staging !== undefined, counts: written.counts, protectedBy: protectedBy(c) };
    } finally {
      await staging?.remove().catch(() => undefined);
    }
  }

  /** Where the file waits for its upload: a staging file of the media files, else memory. */
  async #staging(): Promise<{ append(c: Uint8Array): Promise<void>; read(): AsyncIterable<Uint8Array>; remove(): Promise<void> }> {
    if (this.#o.media) return this.#o.media.staging(`backup-${toHex(this.#o.crypto.randomBytes(16))}`);
    const sink = new MemoryBackupSink();
    return {
      append: (c) => sink.write(c),
      read: () => (async function* () {
        yield sink.bytes();
      })(),
      remove: async () => undefined,
    };
  }

  /** This device's set-up, the schedule, and the account's current backup on the server. */
  async status(signal?: AbortSignal): Promise<BackupStatus> {
    const c = await this.#config();
    const server = await this.#o.api.current(signal);
    const everyMs = c?.everyMs !== undefined && c.everyMs > 0 ? c.everyMs : undefined;
    return {
      configured: c !== undefined,
      protectedBy: protectedBy(c),
      includeMedia: c?.includeMedia ?? false,
      everyMs,
      lastBackupAt: c?.lastBackupAt,
      nextBackupAt: everyMs === undefined ? undefined : (c?.lastBackupAt ?? 0) + everyMs,
      server,
    };
  }

  /** When the next scheduled backup is due, ms (undefined: none scheduled); `now` or earlier means now. */
  async nextDue(): Promise<number | undefined> {
    const c = await this.#config();
    if (!c || c.everyMs === undefined || c.everyMs <= 0) return undefined;
    return (c.lastBackupAt ?? 0) + c.everyMs;
  }

  /** Deletes the account's backup on the server. */
  deleteFromServer(signal?: AbortSignal): Promise<boolean> {
    return this.#o.api.delete(signal);
  }

  /**
   * Restores a backup into this (freshly registered) profile: the server's current backup, or `source` (an
   * exported file). With a password, the server releases its share for the right one and counts wrong ones.
   * Everything is checked before anything is imported (import.ts).
   */
  async restore(o: RestoreBackupOptions): Promise<RestoredBackup> {
    if ((o.recoveryKey === undefined) === (o.password === undefined)) throw new ClientError(ClientErrorCode.InvalidArgument, 'restore with a recovery key or a password');
    const { crypto } = this.#o;
    const unlock =
      o.recoveryKey !== undefined
        ? recoveryUnlocker(crypto, parseRecoveryKey(o.recoveryKey))
        : passwordUnlocker(crypto, o.password as string, (slotId, authKey) => this.#o.api.unlock(slotId, authKey, o.signal));
    let source = o.source;
    if (!source) {
      const current = await this.#o.api.current(o.signal);
      if (!current) throw new ClientError(ClientErrorCode.NoBackup, 'this account has no backup on the server');
      if (current.formatVersion > BACKUP_FORMAT_VERSION) throw new ClientError(ClientErrorCode.BadBackup, 'the backup was made by a newer release');
      source = downloadFile(this.#o.blobs, current.blobId, current.size, { signal: o.signal, onProgress: (done, total) => o.onProgress?.({ phase: 'download', done, total }) });
    }
    return readBackup({ crypto, store: this.#o.store, media: this.#o.media, unlock, signal: o.signal, onProgress: o.onProgress }, source);
  }
}
