/**
 * Backups in the web app (issue #10, docs/backups.md "In the web app"): what the Settings → Backups screen and
 * the restore offer after registration show and do, over the SDK's {@link BackupManager} (`client.backups`).
 *
 * - One run at a time (a backup, an export to a file or a restore), with its progress, observable by screens.
 * - Automatic backups: off, daily or weekly, kept in the profile's store (the manager's policy, so it survives
 *   reloads); while the app is open, a backup runs once the last one is older than the period (checked when
 *   the session opens and then on a timer); a failed run is tried again after a minute, doubling up to an hour.
 * - Export to a file: a fresh backup written into a Blob (Chromium moves large Blobs to disk) for a download;
 *   it is not uploaded.
 */
import {
  ClientError,
  ClientErrorCode,
  formatRecoveryKey,
  generateRecoveryKey,
  type BackupProgress,
  type BackupResult,
  type BackupSink,
  type BackupStatus,
  type Client,
  type RestoredBackup,
} from '../../client/index.js';
import { WebCryptoProvider } from '../../protocol/webcrypto-provider.js';
import { errorInWords } from './errors.js';

/** The automatic backup choices of the screen. */
export type AutoBackup = 'off' | 'daily' | 'weekly';

const DAY_MS = 24 * 3600_000;
/** The interval of each choice. */
export const AUTO_BACKUP_MS: Readonly<Record<AutoBackup, number>> = { off: 0, daily: DAY_MS, weekly: 7 * DAY_MS };

/** The choice an interval stands for (an interval set elsewhere, e.g. by the CLI, counts as the nearest). */
export function autoBackupOf(everyMs: number | undefined): AutoBackup {
  if (everyMs === undefined || everyMs <= 0) return 'off';
  return everyMs < 3 * DAY_MS ? 'daily' : 'weekly';
}

/** What runs now. */
export interface BackupRun {
  readonly kind: 'backup' | 'export' | 'restore';
  readonly progress: BackupProgress | undefined;
}

/** Longest single timer (setTimeout's limit is 2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const FIRST_RETRY_MS = 60_000;
const LAST_RETRY_MS = 3600_000;

type Listener = () => void;

/** Options of {@link WebBackups}. */
export interface WebBackupsOptions {
  readonly now?: (() => number) | undefined;
  /** Told of an automatic backup that failed (the screen shows the last error too). */
  readonly onAutomaticError?: ((message: string) => void) | undefined;
}

/** The backup state and actions of one signed-in session. */
export class WebBackups {
  readonly #client: Client;
  readonly #now: () => number;
  readonly #o: WebBackupsOptions;
  #listeners = new Set<Listener>();
  #status: BackupStatus | undefined;
  #run: BackupRun | undefined;
  #error: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #retryMs = FIRST_RETRY_MS;
  #started = false;
  #stopped = false;

  constructor(client: Client, options: WebBackupsOptions = {}) {
    this.#client = client;
    this.#now = options.now ?? Date.now;
    this.#o = options;
  }

  // ---- observation

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The last status read ({@link refresh}); undefined before the first. */
  get status(): BackupStatus | undefined {
    return this.#status;
  }

  get running(): BackupRun | undefined {
    return this.#run;
  }

  /** The last failure in words (cleared when the next run starts). */
  get error(): string | undefined {
    return this.#error;
  }

  /** Only the primary device makes backups (the server accepts them from device 1 only). */
  get available(): boolean {
    return this.#client.isPrimary;
  }

  /** Reads this device's set-up and the server's copy again. */
  async refresh(signal?: AbortSignal): Promise<BackupStatus> {
    this.#status = await this.#client.backups.status(signal);
    this.#notify();
    return this.#status;
  }

  // ---- set-up

  /** A new recovery key, formatted in groups of four, to show and confirm before {@link useRecoveryKey}. */
  newRecoveryKey(): string {
    return formatRecoveryKey(generateRecoveryKey(new WebCryptoProvider()));
  }

  /**
   * Protects backups with this recovery key only (a password set up before is dropped: the next backup has
   * only the key's slot). Keeps the schedule and the media choice.
   */
  async useRecoveryKey(recoveryKey: string, includeMedia: boolean): Promise<void> {
    const s = this.#status ?? (await this.refresh());
    await this.#client.backups.setUp({ recoveryKey, includeMedia, everyMs: s.everyMs ?? 0, replace: true });
    await this.refresh();
  }

  /** Protects backups with this password only (Argon2id: takes about a second). */
  async usePassword(password: string, includeMedia: boolean): Promise<void> {
    const s = this.#status ?? (await this.refresh());
    await this.#client.backups.setUp({ password, includeMedia, everyMs: s.everyMs ?? 0, replace: true });
    await this.refresh();
  }

  /** Whether files (photos, videos, documents) travel inside the backups. */
  async setIncludeMedia(includeMedia: boolean): Promise<void> {
    await this.#client.backups.setPolicy({ includeMedia });
    await this.refresh();
  }

  /** Turns automatic backups off or on (kept in the profile's store), and arms the timer for the new choice. */
  async setAutomatic(choice: AutoBackup): Promise<void> {
    await this.#client.backups.setPolicy({ everyMs: AUTO_BACKUP_MS[choice] });
    await this.refresh();
    if (this.#started) this.#arm();
  }

  // ---- runs

  /** Makes a backup now and uploads it as the account's current backup. */
  backUpNow(): Promise<BackupResult> {
    return this.#exclusive('backup', async (onProgress) => {
      const r = await this.#client.backups.create({ upload: true, onProgress });
      this.#retryMs = FIRST_RETRY_MS;
      return r;
    });
  }

  /** Makes a backup into a Blob (an offline copy to download; not uploaded). */
  exportToFile(): Promise<{ blob: Blob; result: BackupResult }> {
    return this.#exclusive('export', async (onProgress) => {
      const sink = new BlobSink();
      const result = await this.#client.backups.create({ upload: false, output: sink, onProgress });
      return { blob: sink.blob(), result };
    });
  }

  /** Deletes the account's backup on the server (this device's set-up stays). */
  async deleteFromServer(): Promise<boolean> {
    const deleted = await this.#client.backups.deleteFromServer();
    await this.refresh();
    return deleted;
  }

  /**
   * Restores the server's backup, or `file` (an exported copy), with a recovery key or a password. Nothing is
   * imported unless the whole backup checks out (wrong key, tampered or cut file: an error, nothing changed).
   */
  restore(o: { recoveryKey?: string | undefined; password?: string | undefined; file?: Blob | undefined }): Promise<RestoredBackup> {
    return this.#exclusive('restore', (onProgress) =>
      this.#client.backups.restore({ recoveryKey: o.recoveryKey, password: o.password, source: o.file && blobSource(o.file), onProgress }),
    );
  }

  async #exclusive<T>(kind: BackupRun['kind'], work: (onProgress: (p: BackupProgress) => void) => Promise<T>): Promise<T> {
    if (this.#run) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup or restore is running already', { retryable: true });
    this.#run = { kind, progress: undefined };
    this.#error = undefined;
    this.#notify();
    try {
      return await work((progress) => {
        this.#run = { kind, progress };
        this.#notify();
      });
    } catch (err) {
      this.#error = backupErrorInWords(err);
      throw err;
    } finally {
      this.#run = undefined;
      this.#notify();
      if (kind !== 'restore') this.refresh().catch(() => undefined);
    }
  }

  // ---- automatic backups

  /** Starts the automatic backups of this session (a due one runs now). */
  start(): void {
    if (this.#started || !this.available) return;
    this.#started = true;
    this.#arm();
  }

  /** Stops the timer (a run in progress finishes). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs?: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const schedule = (ms: number): void => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => this.#tick(), Math.min(MAX_TIMER_MS, Math.max(0, ms)));
    };
    if (delayMs !== undefined) return schedule(delayMs);
    this.#client.backups
      .nextDue()
      .then((due) => {
        if (due !== undefined) schedule(due - this.#now());
      })
      .catch(() => schedule(this.#retryMs));
  }

  #tick(): void {
    this.#timer = undefined;
    const work = async (): Promise<void> => {
      const due = await this.#client.backups.nextDue();
      if (due === undefined) return;
      if (due > this.#now()) return this.#arm();
      // The user is making one by hand, or restoring: look again in a minute.
      if (this.#run) return this.#arm(FIRST_RETRY_MS);
      await this.backUpNow();
      this.#arm();
    };
    work().catch((err: unknown) => {
      if (this.#stopped) return;
      this.#o.onAutomaticError?.(`Automatic backup failed: ${backupErrorInWords(err)}`);
      this.#arm(this.#retryMs);
      this.#retryMs = Math.min(LAST_RETRY_MS, this.#retryMs * 2);
    });
  }

  #notify(): void {
    for (const l of this.#listeners) l();
  }
}

/** A backup failure in words. */
export function backupErrorInWords(err: unknown): string {
  if (err instanceof ClientError) {
    switch (err.code) {
      case ClientErrorCode.WrongBackupKey:
        return `${errorInWords(err)} Nothing was restored.`;
      case ClientErrorCode.BackupLocked:
        return 'Too many wrong passwords: the server no longer helps open this backup with a password. Only its recovery key opens it now.';
      case ClientErrorCode.BadBackup:
        return `This is not a Parley backup, or it was cut short or changed (${err.message}). Nothing was restored.`;
      case ClientErrorCode.NoBackup:
        return 'The server has no backup for this account (or not with that password any more).';
    }
  }
  return errorInWords(err);
}

/** How strong a password looks, roughly, for the hint under the field. */
export interface PasswordStrength {
  /** 0 too short, 1 weak, 2 fair, 3 strong. */
  readonly score: 0 | 1 | 2 | 3;
  readonly words: string;
}

/**
 * A rough strength estimate (length and character variety, with repeated and sequential characters counted
 * once): a hint, not a guarantee. The server's attempt counter limits guessing by others; the operator can
 * guess offline at Argon2id speed, so the hint asks for a long password.
 */
export function passwordStrength(password: string): PasswordStrength {
  const p = password.normalize('NFKC');
  const chars = [...p];
  if (chars.length < 8) return { score: 0, words: 'Too short: at least 8 characters.' };
  let pool = 0;
  if (/[a-z]/.test(p)) pool += 26;
  if (/[A-Z]/.test(p)) pool += 26;
  if (/[0-9]/.test(p)) pool += 10;
  if (/[^a-zA-Z0-9]/.test(p)) pool += 33;
  // Characters that repeat or continue a run of the previous one add little.
  let effective = 1;
  for (let i = 1; i < chars.length; i++) {
    const a = (chars[i - 1] as string).codePointAt(0) ?? 0;
    const b = (chars[i] as string).codePointAt(0) ?? 0;
    if (Math.abs(a - b) > 1) effective++;
  }
  const bits = effective * Math.log2(Math.max(pool, 10));
  if (bits < 40) return { score: 1, words: 'Weak: easy to guess. Use a longer password, e.g. several unrelated words.' };
  if (bits < 90) return { score: 2, words: 'Fair. A longer one (several unrelated words) is safer against the server’s operator.' };
  return { score: 3, words: 'Strong.' };
}

/** A progress report in words ("Uploading… 40%"), and its fraction when known. */
export function progressInWords(p: BackupProgress | undefined, kind: BackupRun['kind']): { text: string; fraction: number | undefined } {
  if (!p) return { text: kind === 'restore' ? 'Opening the backup…' : 'Preparing…', fraction: undefined };
  const fraction = p.total !== undefined && p.total > 0 ? Math.min(1, p.done / p.total) : undefined;
  const pct = fraction === undefined ? '' : ` ${Math.round(fraction * 100)}%`;
  switch (p.phase) {
    case 'export':
      return { text: `Reading conversations… ${p.done}${p.total === undefined ? '' : ` of ${p.total}`}`, fraction };
    case 'upload':
      return { text: `Uploading…${pct}`, fraction };
    case 'download':
      return { text: `Downloading…${pct}`, fraction };
    case 'verify':
      return { text: `Checking…${pct}`, fraction };
    case 'import':
      return { text: `Importing messages…${pct}`, fraction };
  }
}

/** `n` things, with the plural when needed ("1 file", "2 files"). */
export function countOf(n: number, word: string): string {
  return `${n.toLocaleString('en')} ${word}${n === 1 ? '' : 's'}`;
}

/** Size in words. */
export function sizeInWords(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** A file name for an exported backup. */
export function exportFileName(at: number): string {
  return `parley-backup-${new Date(at).toISOString().slice(0, 10)}.parleybackup`;
}

/** Collects a backup's bytes into a Blob, folding every 4 MiB so the browser can move the parts to disk. */
class BlobSink implements BackupSink {
  #blob = new Blob([], { type: 'application/octet-stream' });
  #pending: Array<Uint8Array<ArrayBuffer>> = [];
  #pendingBytes = 0;

  async write(chunk: Uint8Array): Promise<void> {
    this.#pending.push(new Uint8Array(chunk));
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes >= 4 << 20) this.#fold();
  }

  blob(): Blob {
    this.#fold();
    return this.#blob;
  }

  #fold(): void {
    this.#blob = new Blob([this.#blob, ...this.#pending], { type: 'application/octet-stream' });
    this.#pending = [];
    this.#pendingBytes = 0;
  }
}

/** The bytes of a Blob (a chosen file), a MiB at a time. */
async function* blobSource(blob: Blob): AsyncGenerator<Uint8Array, void, undefined> {
  const step = 1024 * 1024;
  for (let at = 0; at < blob.size; at += step) yield new Uint8Array(await blob.slice(at, at + step).arrayBuffer());
}
