/**
 * `parley send-file <phone> <path> [--caption TEXT] [--original] [--voice-note]` (or `--group <groupId>`):
 * compresses the file (images with sharp, videos and voice notes with ffmpeg; documents as they are),
 * encrypts it under a fresh key while uploading it, then sends the message that carries the key. Exits 0
 * once the server accepted the message for every device. Killed half-way, the same command resumes the
 * upload where it stopped.
 *
 * `parley download <message-id> [--index N]`: fetches (again) a received attachment into the media folder.
 *
 * `parley view <message-id> --out PATH`: a view-once file (which `receive` leaves on the server): fetched,
 * written to PATH (a directory when the message has several files), then the message is marked viewed, which
 * erases it from the profile and tells the sender. A terminal cannot tell when a file was looked at, so the
 * file leaves Parley for a place the user chose, and Parley keeps nothing.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { suggestedName } from '../../client/media/download.js';
import type { Client } from '../../client/client.js';
import type { MessageId } from '../../client/ids.js';
import type { MessageRecord } from '../../client/store/types.js';
import { prepareFile } from '../../node/media/prepare.js';
import { explainGroupErrors, groupIdArg, isGroupArg } from '../groups.js';
import type { Io, Printer } from '../io.js';
import { attachmentFields, attachmentLine, describeAttachment, describeFile, outgoingDir, progressBar } from '../media.js';
import { withClient } from './send.js';

export async function sendFileCommand(
  args: { to: string; group: boolean; file: string; caption: string | undefined; original: boolean; voiceNote: boolean; viewOnce: boolean; profile: string },
  io: Io,
  out: Printer,
): Promise<number> {
  const group = args.group || isGroupArg(args.to);
  const to = group ? groupIdArg(args.to) : args.to;
  return withClient(
    args.profile,
    async (client) => {
      const prepared = await prepareFile(args.file, { original: args.original, voiceNote: args.voiceNote, workDir: outgoingDir(args.profile) });
      const bar = progressBar(io, 'uploading');
      let m: MessageRecord;
      try {
        const send = (): Promise<MessageRecord> => client.sendAttachment(to, prepared.input, { caption: args.caption, viewOnce: args.viewOnce, onProgress: bar.update });
        m = group ? await explainGroupErrors('send', send) : await send();
      } finally {
        bar.done();
      }
      // Sent: the compressed copy is no longer needed for a resumed upload (the user's own file is never touched).
      await prepared.cleanup();
      const fields = attachmentFields(m.attachments);
      out.result(
        {
          id: m.id,
          to,
          ...(group ? { groupId: to } : { toAccountId: m.conversationId }),
          timestamp: m.timestamp,
          status: m.status,
          ...fields,
        },
        `Sent ${fields.attachment ? describeFile(fields.attachment) : 'the file'} to ${group ? `group ${to}` : to} (${m.id}).`,
      );
      return 0;
    },
    5_000,
    out,
  );
}

export async function downloadCommand(args: { id: string; index: number | undefined; profile: string }, io: Io, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const message = await client.message(args.id as MessageId);
    if (!message) throw new RangeError(`no message ${args.id} in this profile`);
    if (message.attachments.length === 0) throw new RangeError(`message ${args.id} has no attachment`);
    const indexes = args.index === undefined ? message.attachments.map((_, i) => i) : [args.index];
    for (const index of indexes) {
      if (index >= message.attachments.length) throw new RangeError(`message ${args.id} has ${message.attachments.length} attachment(s); --index ${index} is out of range`);
    }
    for (const index of indexes) {
      const bar = progressBar(io, 'downloading');
      try {
        const a = attachmentLine(await client.downloadAttachment(message.id, { index, onProgress: bar.update }));
        out.result({ id: message.id, index, attachment: a }, describeAttachment(a));
      } finally {
        bar.done();
      }
    }
    return 0;
  });
}

export async function viewCommand(args: { id: string; out: string; profile: string }, io: Io, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const files = await viewOnceFiles(client, args.id as MessageId, args.out, io);
    out.result({ id: args.id, viewed: true, files }, `Viewed ${args.id}: ${files.join(', ')} (erased from this profile; the sender sees it viewed).`);
    return 0;
  });
}

/**
 * Writes the files of the view-once message `id` to `out` (a directory when there are several, each under its
 * own name), then marks the message viewed; resolves with where they went. Refuses a message that is not a
 * view-once one sent to this account, one viewed already, and an `out` that exists; on any failure the
 * message stays unviewed. With `io`, a progress bar per download on a terminal.
 */
export async function viewOnceFiles(client: Client, id: MessageId, out: string, io?: Io): Promise<string[]> {
  const message = await client.message(id);
  if (!message) throw new RangeError(`no message ${id} in this profile`);
  if (message.direction !== 'incoming' || !message.viewOnce) throw new RangeError(`message ${id} is not a view-once message sent to this account`);
  if (message.status === 'viewed') throw new RangeError(`message ${id} was viewed already: a view-once file can be seen once`);
  if (message.attachments.length === 0) throw new RangeError(`message ${id} has no file (parley receive shows view-once text)`);
  const several = message.attachments.length > 1;
  if (several) await mkdir(out, { recursive: true });
  const targets = message.attachments.map((a, i) => (several ? path.join(out, `${i + 1}-${suggestedName(a)}`) : out));
  for (const [index, target] of targets.entries()) {
    const bar = io ? progressBar(io, 'downloading') : undefined;
    try {
      const a = await client.downloadAttachment(message.id, { index, onProgress: bar?.update });
      if (a.path === undefined) throw new RangeError(`message ${id}: file ${index + 1} could not be saved`);
      // Never over an existing file.
      await copyFile(a.path, target, constants.COPYFILE_EXCL);
    } finally {
      bar?.done();
    }
  }
  await client.markViewed(message.id);
  return targets;
}
