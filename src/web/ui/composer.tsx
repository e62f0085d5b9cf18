/** Writing: text (reply, edit, view-once), files and photos (pick, drop, paste), voice notes, typing indicators. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AttachmentInput, AttachmentSendOptions, ConversationId, MessageRecord } from '../../client/index.js';
import { prepareFile } from '../media/prepare.js';
import { canRecord, startRecording, type Recording } from '../media/voice.js';
import { errorInWords } from '../model/errors.js';
import type { Session } from '../model/session.js';
import { preview } from './format.js';

const TYPING_REFRESH_MS = 4_000;
const TYPING_IDLE_MS = 5_000;

/** Sends files: each is prepared (images compressed) and sent as its own message (each view once when `viewOnce`). */
export function sendFiles(session: Session, id: ConversationId, files: readonly File[], caption = '', quote?: MessageRecord, viewOnce = false): void {
  files.forEach((file, i) => {
    const sent = (async () => {
      let input: AttachmentInput;
      try {
        input = await prepareFile(file);
      } catch (err) {
        throw new Error(`${file.name || 'The file'}: ${errorInWords(err)}`);
      }
      const options: AttachmentSendOptions = { caption: i === 0 ? caption || undefined : undefined, quote: i === 0 ? quote : undefined, viewOnce };
      return session.sendAttachment(id, input, options);
    })();
    session.trackSend(id, sent);
  });
}

export function Composer(props: { session: Session; id: ConversationId; quote: MessageRecord | undefined; editing: MessageRecord | undefined; disabled: string | undefined; onDone: () => void }): preact.JSX.Element {
  const { session, id, quote, editing } = props;
  const [text, setText] = useState('');
  const [viewOnce, setViewOnce] = useState(false);
  const [recording, setRecording] = useState<Recording | undefined>();
  const input = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const typing = useRef<{ sentAt: number; idle: ReturnType<typeof setTimeout> | undefined }>({ sentAt: 0, idle: undefined });

  useEffect(() => {
    if (editing) setText(editing.body);
    if (editing || quote) input.current?.focus();
  }, [editing, quote]);
  useEffect(() => () => stopTyping(), [id]);

  function stopTyping(): void {
    const t = typing.current;
    clearTimeout(t.idle);
    t.idle = undefined;
    if (t.sentAt !== 0) {
      t.sentAt = 0;
      session.sendTyping(id, false);
    }
  }

  function onInput(value: string): void {
    setText(value);
    const t = typing.current;
    if (value === '') return stopTyping();
    if (Date.now() - t.sentAt > TYPING_REFRESH_MS) {
      t.sentAt = Date.now();
      session.sendTyping(id, true);
    }
    clearTimeout(t.idle);
    t.idle = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function send(): void {
    const body = text.trim();
    if (body === '') return;
    if (editing) {
      if (body !== editing.body) session.edit(editing, body);
    } else {
      session.sendText(id, body, { quote, viewOnce });
    }
    setText('');
    setViewOnce(false);
    stopTyping();
    props.onDone();
    input.current?.focus();
  }

  async function toggleRecording(): Promise<void> {
    if (recording) {
      setRecording(undefined);
      const note = recording.stop();
      session.trackSend(
        id,
        note.then((n) => session.sendAttachment(id, n)),
      );
      return;
    }
    try {
      setRecording(await startRecording());
    } catch (err) {
      session.toast(errorInWords(err), true);
    }
  }

  if (props.disabled) return <footer class="composer disabled">{props.disabled}</footer>;
  return (
    <footer class="composer">
      {(quote || editing) && (
        <div class="composer-context">
          <span>
            {editing ? 'Editing' : `Replying to ${session.nameOf(quote?.senderId as never)}`}: <em>{preview((editing ?? quote) as MessageRecord, (a) => session.nameOf(a as never))}</em>
          </span>
          <button
            class="icon"
            aria-label={editing ? 'Cancel editing' : 'Cancel reply'}
            onClick={() => {
              if (editing) setText('');
              props.onDone();
            }}
          >
            ✕
          </button>
        </div>
      )}
      <form
        class="composer-row"
        onSubmit={(e) => {
          e.preventDefault();
          send();
        }}
      >
        <button type="button" class="icon" aria-label="Attach a file or photo" title="Attach" onClick={() => fileInput.current?.click()} disabled={!!editing}>
          📎
        </button>
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          aria-label="Choose files"
          onChange={(e) => {
            const files = Array.from(e.currentTarget.files ?? []);
            e.currentTarget.value = '';
            if (files.length > 0) sendFiles(session, id, files, text.trim(), quote, viewOnce);
            if (text.trim() !== '') setText('');
            setViewOnce(false);
            props.onDone();
          }}
        />
        <textarea
          ref={input}
          rows={1}
          aria-label="Message"
          placeholder={recording ? 'Recording…' : 'Message'}
          value={text}
          onInput={(e) => onInput(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              send();
            } else if (e.key === 'Escape' && (quote || editing)) {
              if (editing) setText('');
              props.onDone();
            }
          }}
          onPaste={(e) => {
            const files = Array.from(e.clipboardData?.files ?? []);
            if (files.length === 0) return;
            e.preventDefault();
            sendFiles(session, id, files, '', quote, viewOnce);
            setViewOnce(false);
          }}
        />
        {!editing && (
          <label class="view-once-toggle" title="View once">
            <input type="checkbox" checked={viewOnce} onChange={(e) => setViewOnce(e.currentTarget.checked)} aria-label="Send as view once" />①
          </label>
        )}
        {text.trim() === '' && !editing && canRecord() ? (
          <button type="button" class={recording ? 'icon recording' : 'icon'} aria-label={recording ? 'Stop and send voice message' : 'Record a voice message'} onClick={() => void toggleRecording()}>
            {recording ? '■' : '🎤'}
          </button>
        ) : (
          <button type="submit" class="icon send" aria-label={editing ? 'Save edit' : 'Send'} disabled={text.trim() === ''}>
            ➤
          </button>
        )}
      </form>
    </footer>
  );
}
