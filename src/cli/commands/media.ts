/**
 * `parley send-file <phone> <path> [--caption TEXT] [--original] [--voice-note]` (or `--group <groupId>`):
 * compresses the file (images with sharp, videos and voice notes with ffmpeg; documents as they are),
 * encrypts it under a fresh key while uploading it, then sends the message that carries the key. Exits 0
 * once the server accepted the message for every device. Killed half-way, the same command resumes the
 * upload where it stopped.
 *
 * `parley download <message-id> [--index N]`: fetches (again) a received attachment into the media folder.
 */
import type { MessageId } from '../../client/ids.js';
import type { MessageRecord } from '../../client/store/types.js';
import { prepareFile } from '../../node/media/prepare.js';
import { explainGroupErrors, groupIdArg, isGroupArg } from '../groups.js';
import type { Io, Printer } from '../io.js';
import { attachmentFields, attachmentLine, describeAttachment, describeFile, outgoingDir, progressBar } from '../media.js';
import { withClient } from './send.js';

export async function sendFileCommand(
  args: { to: string; group: boolean; file: string; caption: string | undefined; original: boolean; voiceNote: boolean; profile: string },
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
        const send = (): Promise<MessageRecord> => client.sendAttachment(to, prepared.input, { caption: args.caption, onProgress: bar.update });
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
