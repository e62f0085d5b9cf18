/**
 * Automatic backups while `parley daemon` runs: when the profile's backup policy has an interval (`parley
 * backup schedule --every 24h`, or `parley daemon --backup-every 24h`), a backup is made once the last one is
 * that old, then again every interval. A failed run is tried again after a while (at most an hour, at least a
 * minute); the timer never keeps the process alive on its own.
 */
import type { BackupResult } from '../../client/backup/manager.js';
import type { Client } from '../../client/client.js';

export interface BackupScheduleOptions {
  /** Sets the interval first (ms; 0 turns automatic backups off). */
  readonly everyMs?: number | undefined;
  readonly now?: (() => number) | undefined;
  readonly onBackup?: ((result: BackupResult) => void) | undefined;
  readonly onError?: ((error: unknown) => void) | undefined;
}

/** Longest single timer (setTimeout's limit is 2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Starts the schedule; resolves with a function that stops it (and waits for a run in progress). */
export async function startBackupSchedule(client: Client, o: BackupScheduleOptions = {}): Promise<() => Promise<void>> {
  const now = o.now ?? Date.now;
  if (o.everyMs !== undefined) await client.backups.setPolicy({ everyMs: o.everyMs });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  let retryMs = 60_000;
  const arm = async (): Promise<void> => {
    if (stopped) return;
    const due = await client.backups.nextDue();
    if (due === undefined || stopped) return;
    timer = setTimeout(tick, Math.min(MAX_TIMER_MS, Math.max(0, due - now())));
    timer.unref?.();
  };
  const retry = (): void => {
    if (stopped) return;
    timer = setTimeout(tick, retryMs);
    timer.unref?.();
    retryMs = Math.min(3600_000, retryMs * 2);
  };
  const tick = (): void => {
    timer = undefined;
    running = (async () => {
      try {
        const due = await client.backups.nextDue();
        if (due === undefined) return;
        if (due <= now()) {
          o.onBackup?.(await client.createBackup());
          retryMs = 60_000;
        }
        await arm();
      } catch (err) {
        o.onError?.(err);
        retry();
      }
    })();
  };
  await arm();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
