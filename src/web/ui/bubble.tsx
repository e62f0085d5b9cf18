/** One message of a conversation: its bubble, ticks, reactions and actions. */
import { useEffect, useState } from 'preact/hooks';
import type { AttachmentRecord, MessageRecord, OutgoingStatus } from '../../client/index.js';
import { errorInWords } from '../model/errors.js';
import { CallRecordNote } from './call-screen.js';
import type { Session } from '../model/session.js';
import { clockTime, fileSize, groupUpdateText, STATUS_WORDS, timerLabel } from './format.js';

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'] as const;

export interface BubbleActions {
  reply(m: MessageRecord): void;
  edit(m: MessageRecord): void;
  info(m: MessageRecord): void;
  viewOnce(m: MessageRecord): void;
}

export function Bubble(props: { session: Session; m: MessageRecord; group: boolean; actions: BubbleActions }): preact.JSX.Element {
  const { session, m, group, actions } = props;
  const [picker, setPicker] = useState(false);
  const name = (id: string): string => session.nameOf(id as never);

  if (m.kind === 'group-update' || m.kind === 'timer') {
    const text = m.kind === 'timer' ? `${name(m.senderId)} ${m.expireTimer === 0 ? 'turned off disappearing messages' : `set disappearing messages to ${timerLabel(m.expireTimer)}`}` : m.groupUpdate ? groupUpdateText(m.groupUpdate, name) : 'The group changed';
    return (
      <div class="system" role="note" data-id={m.id}>
        {text}
      </div>
    );
  }
  if (m.kind === 'call') return <CallRecordNote session={session} m={m} />;
  if (m.kind === 'undecryptable') {
    return (
      <div class="system undecryptable" role="note" data-id={m.id}>
        ⚠ A message from {name(m.senderId)} could not be decrypted. Their app was asked to send it again.
      </div>
    );
  }

  const out = m.direction === 'outgoing';
  const mine = m.senderId === session.client.accountId;
  const canChange = mine && !m.deleted && m.kind === 'text';
  const reactions = groupReactions(m);
  return (
    <div class={out ? 'row out' : 'row in'} data-id={m.id}>
      <article class={m.deleted ? 'bubble deleted' : 'bubble'} tabIndex={0} aria-label={`${out ? 'You' : name(m.senderId)} at ${clockTime(m.timestamp)}`} data-status={m.status}>
        {group && !out && <div class="author">{name(m.senderId)}</div>}
        {m.quote && !m.deleted && (
          <blockquote class="quote">
            <span class="author">{name(m.quote.authorId)}</span>
            <span>{m.quote.text || 'Attachment'}</span>
          </blockquote>
        )}
        {m.deleted ? (
          <p class="body">🚫 This message was deleted</p>
        ) : m.viewOnce ? (
          <ViewOnce m={m} onOpen={() => actions.viewOnce(m)} />
        ) : (
          <>
            {m.attachments.map((a, i) => (
              <Attachment key={`${m.id}#${i}`} session={session} m={m} a={a} index={i} />
            ))}
            {m.body !== '' && <p class="body">{m.body}</p>}
          </>
        )}
        <footer class="meta">
          {m.expireTimer > 0 && (
            <span title={`Disappears after ${timerLabel(m.expireTimer)}`} aria-label="Disappearing message">
              ⏱
            </span>
          )}
          {m.editedAt !== undefined && !m.deleted && <span class="edited">edited</span>}
          <time dateTime={new Date(m.timestamp).toISOString()}>{clockTime(m.timestamp)}</time>
          {out && <Ticks status={m.status as OutgoingStatus} />}
        </footer>
        {reactions.length > 0 && (
          <ul class="reactions" aria-label="Reactions">
            {reactions.map(([emoji, count]) => (
              <li key={emoji}>
                <button class="reaction" aria-label={`${emoji} ${count}`} onClick={() => session.react(m, emoji)}>
                  {emoji}
                  {count > 1 ? ` ${count}` : ''}
                </button>
              </li>
            ))}
          </ul>
        )}
      </article>
      {!m.deleted && (
        <div class="msg-actions">
          <button class="icon" aria-label="Reply" title="Reply" onClick={() => actions.reply(m)}>
            ↩
          </button>
          <button class="icon" aria-label="React" title="React" aria-expanded={picker} onClick={() => setPicker(!picker)}>
            ☺
          </button>
          {canChange && m.attachments.length === 0 && !m.viewOnce && (
            <button class="icon" aria-label="Edit" title="Edit" onClick={() => actions.edit(m)}>
              ✎
            </button>
          )}
          {canChange && (
            <button
              class="icon"
              aria-label="Delete for everyone"
              title="Delete for everyone"
              onClick={() => {
                if (confirm('Delete this message for everyone?')) session.deleteForEveryone(m);
              }}
            >
              🗑
            </button>
          )}
          {out && group && (
            <button class="icon" aria-label="Message info" title="Message info" onClick={() => actions.info(m)}>
              ⓘ
            </button>
          )}
          {picker && (
            <div class="picker" role="menu" aria-label="Pick a reaction">
              {QUICK_REACTIONS.map((e) => (
                <button
                  key={e}
                  role="menuitem"
                  aria-label={`React ${e}`}
                  onClick={() => {
                    setPicker(false);
                    session.react(m, e);
                  }}
                >
                  {e}
                </button>
              ))}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

function groupReactions(m: MessageRecord): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const r of m.reactions) counts.set(r.emoji, (counts.get(r.emoji) ?? 0) + 1);
  return [...counts];
}

export function Ticks(props: { status: OutgoingStatus }): preact.JSX.Element {
  const s = props.status;
  const glyph = s === 'pending' ? '🕓' : s === 'failed' ? '⚠' : s === 'sent' ? '✓' : '✓✓';
  return (
    <span class={`ticks ${s}`} role="img" aria-label={STATUS_WORDS[s]} title={STATUS_WORDS[s]} data-ticks={s}>
      {glyph}
    </span>
  );
}

function ViewOnce(props: { m: MessageRecord; onOpen: () => void }): preact.JSX.Element {
  const { m } = props;
  if (m.direction === 'outgoing') return <p class="body view-once">① View-once message</p>;
  if (m.status === 'viewed') return <p class="body view-once">① Opened</p>;
  return (
    <button class="view-once-open" onClick={props.onOpen}>
      ① View once: tap to open
    </button>
  );
}

/** What a view-once message holds, shown once when it is opened (its photo or file, then its text). */
export function ViewOnceContent(props: { session: Session; m: MessageRecord }): preact.JSX.Element {
  const { session, m } = props;
  return (
    <div class="view-once-content">
      {m.attachments.map((a, i) => (
        <Attachment key={`${m.id}#${i}`} session={session} m={m} a={a} index={i} />
      ))}
      {(m.body !== '' || m.attachments.length === 0) && <p class="view-once-text">{m.body || 'This view-once message had no text.'}</p>}
    </div>
  );
}

/** An attachment: fetched and decrypted when it comes into view (the list renders only what is visible). */
function Attachment(props: { session: Session; m: MessageRecord; a: AttachmentRecord; index: number }): preact.JSX.Element {
  const { session, m, a, index } = props;
  const [url, setUrl] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [wanted, setWanted] = useState(a.type === 'image' || a.voiceNote || a.type === 'audio' || a.path !== undefined || m.direction === 'outgoing');
  const thumb = usePreview(a.thumbnail);
  // Our own file is shown from the copy kept when it was sent (recorded once the send completed).
  const ready = m.direction === 'incoming' || m.status !== 'pending';
  useEffect(() => {
    if (!wanted || m.deleted || !ready) return;
    let live = true;
    session
      .attachmentUrl(m, index)
      .then((u) => {
        if (!live) return;
        setUrl(u);
        setError(undefined);
      })
      .catch((err: unknown) => live && setError(errorInWords(err)));
    return () => {
      live = false;
    };
    // The conversation's version: our copy is recorded just after the send completes (then it is looked up again).
  }, [wanted, m.id, index, a.state, ready, url === undefined ? session.version(m.conversationId) : -1]);
  const ratio = a.width && a.height ? `${a.width} / ${a.height}` : undefined;
  if (a.type === 'image') {
    return (
      <figure class="media image" style={ratio ? { aspectRatio: ratio } : undefined}>
        {url ? (
          <a href={url} target="_blank" rel="noopener">
            <img src={url} alt={a.fileName ?? 'Photo'} data-decrypted="true" />
          </a>
        ) : thumb ? (
          <img src={thumb} alt="Photo preview" class="blurred" />
        ) : (
          <div class="media-placeholder" aria-busy={!error}>
            Photo
          </div>
        )}
        {error && <figcaption class="error">{error}</figcaption>}
      </figure>
    );
  }
  if (a.type === 'audio') {
    return (
      <div class="media audio">
        {url ? <audio controls src={url} aria-label={a.voiceNote ? 'Voice message' : (a.fileName ?? 'Audio')} onLoadedMetadata={findDuration} /> : <span aria-busy={!error}>{a.voiceNote ? 'Voice message' : 'Audio'}…</span>}
        {error && <span class="error">{error}</span>}
      </div>
    );
  }
  if (a.type === 'video' && url) return <video class="media video" controls src={url} aria-label={a.fileName ?? 'Video'} />;
  return (
    <div class="media file">
      <span aria-hidden="true">📄</span>
      <span class="file-name">{a.fileName ?? 'File'}</span>
      <span class="file-size">{fileSize(a.size)}</span>
      {url ? (
        <a href={url} download={a.fileName ?? 'file'}>
          Save
        </a>
      ) : (
        <button onClick={() => setWanted(true)} disabled={wanted && !error}>
          {wanted && !error ? 'Downloading…' : 'Download'}
        </button>
      )}
      {error && <span class="error">{error}</span>}
    </div>
  );
}

/**
 * Voice notes recorded by MediaRecorder are WebM without a duration in their header: the player shows none and
 * cannot seek until it has read to the end once. Seeking far past the end makes the browser find the end (and
 * so the duration); then it goes back to the start.
 */
function findDuration(e: Event): void {
  const el = e.currentTarget as HTMLMediaElement;
  if (Number.isFinite(el.duration)) return;
  const found = (): void => {
    if (!Number.isFinite(el.duration)) return;
    el.removeEventListener('durationchange', found);
    el.currentTime = 0;
  };
  el.addEventListener('durationchange', found);
  el.currentTime = Number.MAX_SAFE_INTEGER;
}

function usePreview(bytes: Uint8Array | undefined): string | undefined {
  const [url, setUrl] = useState<string | undefined>();
  useEffect(() => {
    if (!bytes || bytes.length === 0) return;
    const u = URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }));
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [bytes]);
  return url;
}
