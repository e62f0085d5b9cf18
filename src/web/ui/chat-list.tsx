/** The chats list: search, archive, pin, mute, unread counts, typing; new chats and groups start here. */
import { useState } from 'preact/hooks';
import type { ConversationId } from '../../client/index.js';
import { errorInWords } from '../model/errors.js';
import type { ChatSummary, Session } from '../model/session.js';
import { OngoingCallMark } from './call-screen.js';
import { listTime, preview } from './format.js';
import { Modal } from './modal.js';
import { NewGroup } from './group-info.js';

type Props = { session: Session; selected: ConversationId | undefined; onOpen: (id: ConversationId) => void; onSettings: () => void };

export function ChatList(props: Props): preact.JSX.Element {
  const { session } = props;
  const [query, setQuery] = useState('');
  const [archived, setArchived] = useState(false);
  const [dialog, setDialog] = useState<'chat' | 'group' | undefined>();
  const q = query.trim().toLowerCase();
  const all = session.chats;
  const visible = all.filter((c) => c.prefs.archived === archived && (q === '' || c.title.toLowerCase().includes(q) || (c.last?.body ?? '').toLowerCase().includes(q)));
  const archivedCount = all.filter((c) => c.prefs.archived).length;

  return (
    <>
      <header class="bar">
        <h1 class="me" title={session.client.number}>
          {archived ? 'Archived' : 'Chats'}
        </h1>
        <div class="actions">
          <button class="icon" aria-label="New chat" title="New chat" onClick={() => setDialog('chat')}>
            ✎
          </button>
          <button class="icon" aria-label="New group" title="New group" onClick={() => setDialog('group')}>
            ⊕
          </button>
          <button class="icon" aria-label="Settings" title="Settings" onClick={props.onSettings}>
            ⚙
          </button>
        </div>
      </header>
      <div class="search">
        <input type="search" aria-label="Search chats" placeholder="Search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
      </div>
      {(archivedCount > 0 || archived) && (
        <button class="archived-toggle" onClick={() => setArchived(!archived)}>
          {archived ? '← Back to chats' : `Archived (${archivedCount})`}
        </button>
      )}
      <ul class="chats" aria-label="Chat list">
        {visible.map((c) => (
          <ChatRow key={c.id} chat={c} session={session} selected={c.id === props.selected} onOpen={props.onOpen} />
        ))}
        {visible.length === 0 && <li class="hint empty">{q ? 'No chat matches.' : archived ? 'No archived chats.' : 'No chats yet: start one with ✎.'}</li>}
      </ul>
      {dialog === 'chat' && <NewChat session={session} onClose={() => setDialog(undefined)} onOpen={props.onOpen} />}
      {dialog === 'group' && (
        <NewGroup
          session={session}
          onClose={() => setDialog(undefined)}
          onCreated={(id) => {
            setDialog(undefined);
            props.onOpen(id);
          }}
        />
      )}
    </>
  );
}

function ChatRow(props: { chat: ChatSummary; session: Session; selected: boolean; onOpen: (id: ConversationId) => void }): preact.JSX.Element {
  const { chat: c, session } = props;
  const typing = session.typing(c.id);
  const [menu, setMenu] = useState(false);
  const toggle = (change: Parameters<Session['setPrefs']>[1]): void => {
    setMenu(false);
    session.setPrefs(c.id, change).catch((err: unknown) => session.toast(errorInWords(err), true));
  };
  const line = typing.length > 0 ? 'typing…' : c.last ? preview(c.last, (id) => session.nameOf(id as never)) : c.group ? 'Group created' : '';
  return (
    <li class={props.selected ? 'chat selected' : 'chat'} data-chat={c.id}>
      <button class="chat-open" onClick={() => props.onOpen(c.id)} aria-current={props.selected ? 'true' : undefined} aria-label={`${c.title}${c.unread > 0 ? `, ${c.unread} unread` : ''}`}>
        <span class="avatar" aria-hidden="true">
          {c.group ? '👥' : c.title.replace(/[^0-9A-Za-z]/g, '').slice(-2)}
        </span>
        <span class="chat-main">
          <span class="chat-top">
            <span class="chat-title">{c.title}</span>
            {c.last && <time class="chat-time">{listTime(c.last.timestamp)}</time>}
          </span>
          <span class="chat-bottom">
            <span class={typing.length > 0 ? 'chat-preview typing' : 'chat-preview'}>{line}</span>
            {c.group && <OngoingCallMark session={session} id={c.id} />}
            {c.prefs.muted && <span aria-label="Muted" title="Muted">🔕</span>}
            {c.prefs.pinned && <span aria-label="Pinned" title="Pinned">📌</span>}
            {c.unread > 0 && (
              <span class="unread" aria-label={`${c.unread} unread`}>
                {c.unread}
              </span>
            )}
          </span>
        </span>
      </button>
      <button class="icon chat-menu" aria-label={`Options for ${c.title}`} aria-expanded={menu} onClick={() => setMenu(!menu)}>
        ⋮
      </button>
      {menu && (
        <div class="menu" role="menu">
          <button role="menuitem" onClick={() => toggle({ pinned: !c.prefs.pinned })}>
            {c.prefs.pinned ? 'Unpin' : 'Pin'}
          </button>
          <button role="menuitem" onClick={() => toggle({ muted: !c.prefs.muted })}>
            {c.prefs.muted ? 'Unmute' : 'Mute'}
          </button>
          <button role="menuitem" onClick={() => toggle({ archived: !c.prefs.archived })}>
            {c.prefs.archived ? 'Unarchive' : 'Archive'}
          </button>
        </div>
      )}
    </li>
  );
}

function NewChat(props: { session: Session; onClose: () => void; onOpen: (id: ConversationId) => void }): preact.JSX.Element {
  const [number, setNumber] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const id = await props.session.startChat(number.trim());
      props.onClose();
      props.onOpen(id);
    } catch (err) {
      setError(errorInWords(err));
      setBusy(false);
    }
  };
  return (
    <Modal title="New chat" onClose={props.onClose}>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Phone number
          <input name="number" type="tel" placeholder="+15550100002" value={number} required onInput={(e) => setNumber(e.currentTarget.value)} />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Looking up…' : 'Start chat'}
        </button>
      </form>
    </Modal>
  );
}
