/** An open conversation: header (presence, typing, timer, safety number, group info), the message list, the composer. */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { isGroupId, type ConversationId, type MessageRecord } from '../../client/index.js';
import { errorInWords } from '../model/errors.js';
import type { ChatNotice, Session } from '../model/session.js';
import { Bubble, ViewOnceContent, type BubbleActions } from './bubble.js';
import { CallBanner, CallButtons } from './call-screen.js';
import { Composer, sendFiles } from './composer.js';
import { dayLabel, lastSeen, sameDay, TIMER_CHOICES, timerLabel } from './format.js';
import { GroupInfo, MessageInfo } from './group-info.js';
import { useSession } from './hooks.js';
import { Modal } from './modal.js';
import { SafetyNumberView } from './safety-number.js';
import { useVirtualList } from './virtual.js';

/** Messages read at first, and added each time the user scrolls to the top of what is loaded. */
const FIRST_PAGE = 80;
const PAGE = 300;

type Row =
  | { readonly kind: 'day'; readonly key: string; readonly label: string }
  | { readonly kind: 'message'; readonly key: string; readonly m: MessageRecord }
  | { readonly kind: 'notice'; readonly key: string; readonly n: ChatNotice };

export function Conversation(props: { session: Session; id: ConversationId; onBack: () => void }): preact.JSX.Element {
  const { session, id } = props;
  useSession(session);
  const group = isGroupId(id);
  // The newest messages are re-read whenever the conversation changes; older pages are read once, as the user
  // scrolls up (a page at a time from the store's index, however long the chat).
  const [recent, setRecent] = useState<MessageRecord[] | undefined>();
  const [older, setOlder] = useState<MessageRecord[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [quote, setQuote] = useState<MessageRecord | undefined>();
  const [editing, setEditing] = useState<MessageRecord | undefined>();
  const [panel, setPanel] = useState<'safety' | 'group' | 'timer' | undefined>();
  const [info, setInfo] = useState<MessageRecord | undefined>();
  const [opened, setOpened] = useState<MessageRecord | undefined>();
  const [dropping, setDropping] = useState(false);
  const version = session.version(id);
  const notices = session.notices(id);

  useEffect(() => {
    let live = true;
    // Enough to cover what arrived since the last read (the window only slides forward).
    const limit = Math.max(FIRST_PAGE, (recent?.length ?? 0) + 20);
    session
      .messages(id, limit)
      .then((list) => {
        if (!live) return;
        setRecent(list);
        if (recent === undefined) setHasMore(list.length >= limit);
      })
      .catch((err: unknown) => live && session.toast(errorInWords(err), true));
    return () => {
      live = false;
    };
  }, [id, version]);

  const messages = useMemo(() => {
    if (recent === undefined) return undefined;
    const first = recent[0];
    if (older.length === 0 || first === undefined) return recent;
    const ids = new Set(recent.map((m) => m.id));
    return [...older.filter((m) => !ids.has(m.id) && (m.timestamp < first.timestamp || (m.timestamp === first.timestamp && m.id < first.id))), ...recent];
  }, [recent, older]);

  // Distance from the bottom of the list when older messages were asked for: kept once they are in, so the
  // messages in view stay in view (and the user can scroll on upwards).
  const keepBottom = useRef<number | undefined>(undefined);
  const loadOlder = (): void => {
    const oldest = messages?.[0];
    if (!oldest || loading || !hasMore) return;
    keepBottom.current = list.virtualizer.getTotalSize() - (scroller.current?.scrollTop ?? 0);
    setLoading(true);
    session
      .olderMessages(id, oldest, PAGE)
      .then((page) => {
        setOlder((o) => [...page, ...o]);
        setHasMore(page.length >= PAGE);
      })
      .catch((err: unknown) => session.toast(errorInWords(err), true))
      .finally(() => setLoading(false));
  };

  const rows = useMemo(() => buildRows(messages ?? [], notices), [messages, notices.length]);
  const scroller = useRef<HTMLDivElement>(null);
  const list = useVirtualList({
    count: rows.length,
    key: (i) => rows[i]?.key ?? String(i),
    estimate: (i) => (rows[i]?.kind === 'message' ? 64 : 36),
    scroller: () => scroller.current,
  });

  useLayoutEffect(() => {
    if (keepBottom.current === undefined) return;
    const target = list.virtualizer.getTotalSize() - keepBottom.current;
    keepBottom.current = undefined;
    list.virtualizer.scrollToOffset(Math.max(0, target));
  }, [rows.length]);

  // Open at the newest message.
  const first = useRef(true);
  useEffect(() => {
    if (!first.current || rows.length === 0) return;
    first.current = false;
    list.virtualizer.scrollToIndex(rows.length - 1, { align: 'end' });
  }, [rows.length]);

  const onScroll = (): void => {
    const el = scroller.current;
    if (!el || loading || !hasMore || first.current) return;
    if (el.scrollTop < 600) loadOlder();
  };

  const actions: BubbleActions = {
    reply: (m) => {
      setEditing(undefined);
      setQuote(m);
    },
    edit: (m) => {
      setQuote(undefined);
      setEditing(m);
    },
    info: (m) => setInfo(m),
    viewOnce: (m) => {
      session
        .openViewOnce(m.id)
        .then(setOpened)
        .catch((err: unknown) => session.toast(errorInWords(err), true));
    },
  };

  const g = group ? session.group(id) : undefined;
  const timer = session.timer(id);

  return (
    <section
      class={dropping ? 'conversation dropping' : 'conversation'}
      aria-label={`Conversation with ${session.title(id)}`}
      onDragOver={(e) => {
        if (!e.dataTransfer?.types.includes('Files')) return;
        e.preventDefault();
        setDropping(true);
      }}
      onDragLeave={() => setDropping(false)}
      onDrop={(e) => {
        const files = Array.from(e.dataTransfer?.files ?? []);
        setDropping(false);
        if (files.length === 0) return;
        e.preventDefault();
        sendFiles(session, id, files, '', quote);
        setQuote(undefined);
      }}
    >
      <header class="bar conv-bar">
        <button class="icon back" aria-label="Back to chats" onClick={props.onBack}>
          ←
        </button>
        <div class="conv-title">
          <h2>{session.title(id)}</h2>
          <Subtitle session={session} id={id} />
        </div>
        <div class="actions">
          <CallButtons session={session} id={id} />
          <button class="icon" aria-label={`Disappearing messages: ${timer === 0 ? 'off' : timerLabel(timer)}`} title="Disappearing messages" onClick={() => setPanel('timer')}>
            ⏱{timer > 0 ? <small>{timerLabel(timer)}</small> : null}
          </button>
          {group ? (
            <button class="icon" aria-label="Group info" title="Group info" onClick={() => setPanel('group')}>
              ⓘ
            </button>
          ) : (
            <button class="icon" aria-label="Safety number" title="Safety number" onClick={() => setPanel('safety')}>
              🛡
            </button>
          )}
        </div>
      </header>
      <CallBanner session={session} id={id} />
      <div class="messages" ref={scroller} onScroll={onScroll} role="log" aria-label="Messages" aria-live="polite" tabIndex={0}>
        {hasMore && <div class="loading-more">{loading ? 'Loading earlier messages…' : ''}</div>}
        <div class="messages-inner" style={{ height: `${list.totalSize}px` }}>
          {list.items.map((item) => {
            const row = rows[item.index];
            if (!row) return null;
            return (
              <div key={item.key} class="vrow" data-index={item.index} ref={list.virtualizer.measureElement} style={{ transform: `translateY(${item.start}px)` }}>
                {row.kind === 'day' ? (
                  <div class="day" role="separator">
                    <span>{row.label}</span>
                  </div>
                ) : row.kind === 'notice' ? (
                  <div class={`system notice ${row.n.kind}`} role="note">
                    {row.n.text}{' '}
                    {!group && row.n.kind === 'identity' && (
                      <button class="link" onClick={() => setPanel('safety')}>
                        View safety number
                      </button>
                    )}
                  </div>
                ) : (
                  <Bubble session={session} m={row.m} group={group} actions={actions} />
                )}
              </div>
            );
          })}
        </div>
        {messages !== undefined && messages.length === 0 && <p class="hint empty">No messages yet. Say hello: it is end-to-end encrypted.</p>}
      </div>
      <Composer
        session={session}
        id={id}
        quote={quote}
        editing={editing}
        disabled={g !== undefined && !g.active ? 'You are no longer a member of this group.' : undefined}
        onDone={() => {
          setQuote(undefined);
          setEditing(undefined);
        }}
      />
      {panel === 'safety' && !group && <SafetyNumberView session={session} accountId={id} onClose={() => setPanel(undefined)} />}
      {panel === 'group' && group && <GroupInfo session={session} id={id} onClose={() => setPanel(undefined)} />}
      {panel === 'timer' && (
        <Modal title="Disappearing messages" onClose={() => setPanel(undefined)}>
          <p class="hint">New messages in this chat disappear for everyone after the time you choose.</p>
          <div class="choices" role="radiogroup" aria-label="Timer">
            {TIMER_CHOICES.map(([s, label]) => (
              <button
                key={s}
                role="radio"
                aria-checked={s === timer}
                onClick={() => {
                  setPanel(undefined);
                  if (s !== timer) session.setTimer(id, s);
                }}
              >
                {label}
              </button>
            ))}
          </div>
        </Modal>
      )}
      {info && g && <MessageInfo session={session} group={g} m={info} onClose={() => setInfo(undefined)} />}
      {opened && (
        <Modal
          title="View-once message"
          onClose={() => {
            session.closeViewOnce(opened);
            setOpened(undefined);
          }}
        >
          <ViewOnceContent session={session} m={opened} />
          <p class="hint">It is erased from this device when you close this.</p>
        </Modal>
      )}
    </section>
  );
}

function buildRows(messages: readonly MessageRecord[], notices: readonly ChatNotice[]): Row[] {
  const rows: Row[] = [];
  let n = 0;
  let prev: number | undefined;
  const sorted = [...notices].sort((a, b) => a.at - b.at);
  const pushDay = (t: number): void => {
    if (prev === undefined || !sameDay(prev, t)) rows.push({ kind: 'day', key: `day-${new Date(t).toDateString()}`, label: dayLabel(t) });
    prev = t;
  };
  for (const m of messages) {
    const t = m.direction === 'incoming' ? m.receivedAt : m.timestamp;
    while (n < sorted.length && (sorted[n] as ChatNotice).at <= t) {
      const notice = sorted[n++] as ChatNotice;
      if (messages[0] !== undefined && notice.at < messages[0].receivedAt) continue; // older than what is loaded
      pushDay(notice.at);
      rows.push({ kind: 'notice', key: `notice-${notice.id}`, n: notice });
    }
    pushDay(m.timestamp);
    rows.push({ kind: 'message', key: m.id, m });
  }
  for (; n < sorted.length; n++) {
    const notice = sorted[n] as ChatNotice;
    pushDay(notice.at);
    rows.push({ kind: 'notice', key: `notice-${notice.id}`, n: notice });
  }
  return rows;
}

/** Typing, online / last seen (1:1), or the members (groups). */
function Subtitle(props: { session: Session; id: ConversationId }): preact.JSX.Element {
  const { session, id } = props;
  const typing = session.typing(id);
  const [presence, setPresence] = useState<string>('');
  useEffect(() => {
    if (isGroupId(id)) return;
    let live = true;
    const poll = (): void => {
      if (!session.online) return;
      session.client.api
        .presence(id)
        .then((p) => {
          if (!live) return;
          setPresence(!p.visible ? '' : p.online ? 'online' : lastSeen(Number(p.lastSeen)));
        })
        .catch(() => live && setPresence(''));
    };
    poll();
    const t = setInterval(poll, 20_000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [id, session.online]);
  let text = presence;
  if (typing.length > 0) text = isGroupId(id) ? `${typing.map((a) => session.nameOf(a)).join(', ')} typing…` : 'typing…';
  else if (isGroupId(id)) {
    const g = session.group(id);
    text = g ? g.members.map((m) => (m.self ? 'You' : (m.number ?? session.nameOf(m.accountId)))).join(', ') : '';
  }
  return (
    <p class="subtitle" aria-live="polite" data-presence={presence}>
      {text}
    </p>
  );
}
