/**
 * Media in the terminal client: where a profile keeps files, how an attachment appears in a JSON line, and a
 * progress bar for large transfers (on a terminal only, on stderr, so stdout stays machine-readable).
 */
import path from 'node:path';
import { toHex } from '../protocol/index.js';
import type { TransferProgress } from '../client/media/types.js';
import type { AttachmentRecord } from '../client/store/types.js';
import type { Io } from './io.js';

/** The profile's media folder: received files, staged downloads, prepared (compressed) outgoing files. */
export function mediaDir(profile: string): string {
  return path.join(profile, 'media');
}

/** Where compressed outgoing files wait until they are sent (kept for a resumed send). */
export function outgoingDir(profile: string): string {
  return path.join(mediaDir(profile), '.outgoing');
}

/** An attachment as the JSON lines show it (`attachment` and `attachments[]` of a message line). */
export interface AttachmentLine {
  /** Where the verified plaintext is saved, or null before (or without) a successful download. */
  readonly path: string | null;
  readonly contentType: string;
  /** Plaintext bytes. */
  readonly size: number;
  /** Lowercase hex SHA-256 of the plaintext. */
  readonly sha256: string;
  readonly fileName: string | null;
  readonly type: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly durationMs: number | null;
  readonly voiceNote: boolean;
  /** Whether the message carried a preview thumbnail. */
  readonly thumbnail: boolean;
  readonly blobId: string;
  /** pending, saved or failed. */
  readonly state: string;
  /** The error code of a failed download. */
  readonly error: string | null;
}

export function attachmentLine(a: AttachmentRecord): AttachmentLine {
  return {
    path: a.path ?? null,
    contentType: a.contentType,
    size: a.size,
    sha256: toHex(a.plaintextSha256),
    fileName: a.fileName ?? null,
    type: a.type,
    width: a.width ?? null,
    height: a.height ?? null,
    durationMs: a.durationMs ?? null,
    voiceNote: a.voiceNote,
    thumbnail: a.thumbnail !== undefined && a.thumbnail.length > 0,
    blobId: a.blobId,
    state: a.state,
    error: a.error ?? null,
  };
}

/** The `attachment` (first) and `attachments` fields of a message line; none for a message without files. */
export function attachmentFields(attachments: readonly AttachmentRecord[]): { attachment?: AttachmentLine; attachments?: AttachmentLine[] } {
  const lines = attachments.map(attachmentLine);
  const first = lines[0];
  return first === undefined ? {} : { attachment: first, attachments: lines };
}

/** "photo.jpg (image/jpeg, 1.2 MB)" */
export function describeFile(a: AttachmentLine): string {
  return `${a.fileName ?? a.type} (${a.contentType}, ${formatBytes(a.size)})`;
}

/** "photo.jpg (image/jpeg, 1.2 MB) saved to <path>" */
export function describeAttachment(a: AttachmentLine): string {
  const what = describeFile(a);
  if (a.path !== null) return `${what} saved to ${a.path}`;
  return a.state === 'failed' ? `${what} could not be downloaded (${a.error ?? 'error'})` : `${what} not downloaded yet`;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i] as string}`;
}

/** Transfers smaller than this get no progress bar. */
const BAR_MIN_BYTES = 4 * 1024 * 1024;
const BAR_WIDTH = 24;
const REDRAW_MS = 100;

/** A progress bar on stderr. */
export interface ProgressBar {
  /** Pass as a transfer's `onProgress`. */
  readonly update: (p: TransferProgress) => void;
  /** Ends the bar's line (if one was drawn). */
  done(): void;
}

/**
 * A progress bar for transfers labelled `label`, drawn on stderr when it is a terminal and the transfer is
 * large; otherwise it draws nothing. Redraws at most ten times a second.
 */
export function progressBar(io: Io, label: string, now: () => number = Date.now): ProgressBar {
  const tty = (io.stderr as NodeJS.WritableStream & { isTTY?: boolean }).isTTY === true;
  const started = now();
  let drawn = false;
  let last = 0;
  return {
    update(p) {
      if (!tty || p.total < BAR_MIN_BYTES) return;
      const t = now();
      if (t - last < REDRAW_MS && p.transferred < p.total) return;
      last = t;
      const fraction = p.total === 0 ? 1 : Math.min(1, p.transferred / p.total);
      const filled = Math.round(fraction * BAR_WIDTH);
      const seconds = Math.max((t - started) / 1000, 0.001);
      const rate = `${formatBytes(p.transferred / seconds)}/s`;
      io.stderr.write(
        `\r${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${formatBytes(p.transferred)} / ${formatBytes(p.total)} ${rate}  `,
      );
      drawn = true;
    },
    done() {
      if (drawn) io.stderr.write('\n');
      drawn = false;
    },
  };
}
