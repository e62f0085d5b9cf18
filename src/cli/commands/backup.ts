/**
 * `parley backup create|restore|status|schedule` (issue #10, docs/backups.md):
 *
 * - `create [--password-file F] [--recovery-key] [--include-media] [--output FILE]`: with a flag, sets up (or
 *   replaces) how this profile's backups are protected (a new recovery key is printed once); then backs up:
 *   uploads the encrypted file and makes it the account's current backup, and with `--output` also writes the
 *   file there (an offline copy). Without a flag, the protection set up before is used.
 * - `restore [--password-file F | --recovery-key KEY] [--input FILE]` on a freshly registered profile (the
 *   same number): downloads the current backup (or reads the file), checks all of it, then imports it.
 * - `status`: this profile's set-up and schedule, and the account's current backup on the server.
 * - `schedule --every 24h|off [--include-media]`: automatic backups, run by `parley daemon`.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BackupProgress, BackupSink } from '../../client/backup/export.js';
import { formatRecoveryKey } from '../../client/backup/keys.js';
import type { BackupResult, BackupStatus } from '../../client/backup/manager.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { Io, Printer } from '../io.js';
import { formatBytes, progressBar } from '../media.js';
import { withClient } from './send.js';

/** Parses a duration: `90s`, `30m`, `24h`, `7d`, or plain seconds; `off` / `0` is 0. */
export function parseInterval(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return 0;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d)?$/.exec(t);
  if (!m) throw new RangeError(`not a duration: ${text} (say 30m, 24h, 7d or off)`);
  const unit = { s: 1_000, m: 60_000, h: 3600_000, d: 86_400_000 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  const ms = Math.round(Number(m[1]) * unit);
  if (ms < 60_000) throw new RangeError('automatic backups run at most once a minute');
  return ms;
}

/** The password in a file: its first line (a trailing newline is not part of it). */
async function readPassword(file: string): Promise<string> {
  const text = await readFile(file, 'utf8');
  return text.replace(/\r?\n$/, '').split(/\r?\n/)[0] ?? '';
}

/** A file written under a temporary name and renamed into place once complete. */
async function fileSink(target: string): Promise<BackupSink & { commit(): Promise<void>; abort(): Promise<void> }> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  const handle = await open(tmp, 'w', 0o600);
  return {
    async write(chunk) {
      await handle.write(chunk);
    },
    async commit() {
      await handle.sync();
      await handle.close();
      await rename(tmp, target);
    },
    async abort() {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
    },
  };
}

/** Progress bars: one per phase (export counts conversations, so only transfers draw). */
function progress(io: Io): { update(p: BackupProgress): void; done(): void } {
  let phase = '';
  let bar = progressBar(io, '');
  return {
    update(p) {
      if (p.phase !== 'upload' && p.phase !== 'download') return;
      if (p.phase !== phase) {
        bar.done();
        phase = p.phase;
        bar = progressBar(io, p.phase === 'upload' ? 'uploading backup' : 'downloading backup');
      }
      bar.update({ direction: p.phase, transferred: p.done, total: p.total ?? p.done });
    },
    done() {
      bar.done();
    },
  };
}

/** A backup run as the daemon's `backupCreate` answers it. */
export function backupResultJson(r: BackupResult): Record<string, unknown> {
  return { createdAt: r.createdAt, size: r.size, sha256: r.sha256, uploaded: r.uploaded, protectedBy: r.protectedBy, counts: r.counts };
}

export async function backupCreateCommand(
  args: { profile: string; passwordFile: string | undefined; recoveryKey: boolean; includeMedia: boolean; output: string | undefined; upload: boolean },
  io: Io,
  out: Printer,
): Promise<number> {
  const password = args.passwordFile === undefined ? undefined : await readPassword(args.passwordFile);
  return withClient(
    args.profile,
    async (client) => {
      let recoveryKey: string | undefined;
      if (password !== undefined || args.recoveryKey) {
        ({ recoveryKey } = await client.backups.setUp({ recoveryKey: args.recoveryKey, password, includeMedia: args.includeMedia, replace: true }));
      }
      const sink = args.output === undefined ? undefined : await fileSink(path.resolve(args.output));
      const bar = progress(io);
      let result;
      try {
        result = await client.createBackup({ upload: args.upload, output: sink, includeMedia: args.includeMedia ? true : undefined, onProgress: (p) => bar.update(p) });
        await sink?.commit();
      } catch (err) {
        await sink?.abort();
        throw err;
      } finally {
        bar.done();
      }
      const c = result.counts;
      out.result(
        {
          createdAt: result.createdAt,
          size: result.size,
          sha256: result.sha256,
          uploaded: result.uploaded,
          output: args.output === undefined ? null : path.resolve(args.output),
          protectedBy: result.protectedBy,
          counts: c,
          ...(recoveryKey === undefined ? {} : { recoveryKey }),
        },
        [
          `Backup made: ${c.messages} messages in ${c.contacts + c.groups} conversations, ${c.files} of ${c.attachments} files inside, ${formatBytes(result.size)}` +
            `${result.uploaded ? ', uploaded' : ''}${args.output === undefined ? '' : `, written to ${path.resolve(args.output)}`}.`,
          ...(recoveryKey === undefined
            ? []
            : ['', 'Your recovery key (shown only this once; write it down and keep it safe):', '', `    ${formatRecoveryKey(recoveryKey)}`, '']),
        ].join('\n'),
      );
      return 0;
    },
    1_000,
  );
}

export async function backupRestoreCommand(
  args: { profile: string; passwordFile: string | undefined; recoveryKey: string | undefined; input: string | undefined },
  io: Io,
  out: Printer,
): Promise<number> {
  if ((args.passwordFile === undefined) === (args.recoveryKey === undefined)) throw new RangeError('give --password-file FILE or --recovery-key KEY');
  const password = args.passwordFile === undefined ? undefined : await readPassword(args.passwordFile);
  return withClient(
    args.profile,
    async (client) => {
      const source = args.input === undefined ? undefined : (createReadStream(path.resolve(args.input), { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>);
      const bar = progress(io);
      let restored;
      try {
        restored = await client.restoreBackup({ recoveryKey: args.recoveryKey, password, source, onProgress: (p) => bar.update(p) });
      } finally {
        bar.done();
      }
      const n = restored.imported;
      out.result(
        { createdAt: restored.createdAt, counts: restored.counts, imported: n, includesMedia: restored.includesMedia },
        `Restored the backup of ${new Date(restored.createdAt).toISOString()}: ${n.messages} messages, ${n.contacts} contacts, ${n.groups} groups, ${n.files} files. ` +
          'Your contacts will see that your safety number changed.',
      );
      return 0;
    },
    1_000,
  );
}

/** The status as `parley backup status --json` prints it. */
export function statusJson(s: BackupStatus): Record<string, unknown> {
  const server = s.server;
  return {
    configured: s.configured,
    protectedBy: s.protectedBy,
    includeMedia: s.includeMedia,
    everyMs: s.everyMs ?? null,
    lastBackupAt: s.lastBackupAt ?? null,
    nextBackupAt: s.nextBackupAt ?? null,
    server:
      server === undefined
        ? null
        : {
            blobId: server.blobId,
            size: server.size,
            createdAt: server.createdAt,
            uploadedAt: server.uploadedAt,
            formatVersion: server.formatVersion,
            password: server.password === undefined ? null : { attemptsLeft: server.password.attemptsLeft, locked: server.password.locked },
          },
  };
}

export async function backupStatusCommand(args: { profile: string }, out: Printer): Promise<number> {
  return withClient(
    args.profile,
    async (client) => {
      const s = await client.backupStatus();
      const server = s.server;
      out.result(
        statusJson(s),
        [
          s.configured ? `Backups are set up (${s.protectedBy.join(' and ')}${s.includeMedia ? ', with files' : ''}).` : 'Backups are not set up on this device.',
          s.everyMs === undefined ? 'No automatic backups.' : `Automatic backups every ${Math.round(s.everyMs / 60_000)} min (run by parley daemon).`,
          s.lastBackupAt === undefined ? 'No backup made from this device.' : `Last backup: ${new Date(s.lastBackupAt).toISOString()}.`,
          server === undefined
            ? 'The server holds no backup for this account.'
            : `On the server: a backup of ${new Date(server.createdAt).toISOString()}, ${formatBytes(server.size)}` +
              (server.password === undefined ? '' : server.password.locked ? '; its password is locked (too many wrong tries)' : `; ${server.password.attemptsLeft} password attempts left`) +
              '.',
        ].join('\n'),
      );
      return 0;
    },
    1_000,
  );
}

export async function backupScheduleCommand(args: { profile: string; every: number; includeMedia: boolean | undefined }, out: Printer): Promise<number> {
  return withClient(
    args.profile,
    async (client) => {
      await client.backups.setPolicy({ everyMs: args.every, includeMedia: args.includeMedia }).catch((err: unknown) => {
        if (ClientError.is(err, ClientErrorCode.InvalidArgument)) throw new RangeError('set up backups first: parley backup create --password-file FILE or --recovery-key');
        throw err;
      });
      out.result({ everyMs: args.every || null }, args.every === 0 ? 'Automatic backups are off.' : `Automatic backups every ${Math.round(args.every / 60_000)} min while parley daemon runs.`);
      return 0;
    },
    1_000,
  );
}
