/** The signed-in layout: the chats list beside the open conversation (one at a time on a phone). */
import { useEffect, useState } from 'preact/hooks';
import { ConnectionState, isAccountId, isGroupId, type ConversationId } from '../../client/index.js';
import type { Session } from '../model/session.js';
import { CallScreen } from './call-screen.js';
import { ChatList } from './chat-list.js';
import { Conversation } from './conversation.js';
import { useBrowserOnline, useHashRoute, useSession } from './hooks.js';
import { notifyIncoming } from './notify.js';
import { Settings } from './settings.js';

export function Messenger(props: { session: Session; onLoggedOut: () => void }): preact.JSX.Element {
  const { session } = props;
  useSession(session);
  const [hash, go] = useHashRoute();
  const [settings, setSettings] = useState(false);
  const match = /^#\/chat\/(.+)$/.exec(hash);
  const raw = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
  const open: ConversationId | undefined = raw !== undefined && (isGroupId(raw) || isAccountId(raw)) ? raw : undefined;

  useEffect(() => {
    session.setOpenChat(open);
  }, [open, session]);
  useEffect(() => {
    session.onIncoming = (m, chat) => notifyIncoming(session, m, chat);
    const visible = (): void => {
      if (document.visibilityState === 'visible' && open) session.markRead(open);
    };
    document.addEventListener('visibilitychange', visible);
    return () => document.removeEventListener('visibilitychange', visible);
  }, [session, open]);

  return (
    <div class={open ? 'messenger has-chat' : 'messenger'}>
      <ConnectionBanner session={session} />
      <aside class="sidebar" aria-label="Chats">
        <ChatList session={session} selected={open} onOpen={(id) => go(`#/chat/${encodeURIComponent(id)}`)} onSettings={() => setSettings(true)} />
      </aside>
      <main class="pane">
        {open ? (
          <Conversation key={open} session={session} id={open} onBack={() => go('#/')} />
        ) : (
          <div class="empty-pane">
            <h2>Parley</h2>
            <p>Pick a chat, or start one. Messages are end-to-end encrypted.</p>
          </div>
        )}
      </main>
      <CallScreen session={session} />
      {settings && <Settings session={session} onClose={() => setSettings(false)} onLoggedOut={props.onLoggedOut} />}
      <div class="toasts" aria-live="polite">
        {session.toasts.map((t) => (
          <div key={t.id} class={t.error ? 'toast error' : 'toast'} role={t.error ? 'alert' : 'status'}>
            <span>{t.text}</span>
            <button class="icon" aria-label="Dismiss" onClick={() => session.dismiss(t.id)}>
              ✕
            </button>
          </div>
        ))}
      </div>
    </div>
  );
}

/** Offline and reconnecting states, in words, above everything. */
function ConnectionBanner(props: { session: Session }): preact.JSX.Element | null {
  const browserOnline = useBrowserOnline();
  const c = props.session.connection;
  const [, tick] = useState(0);
  useEffect(() => {
    if (c?.state !== ConnectionState.Reconnecting) return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [c]);
  let text: string | undefined;
  if (!browserOnline) text = 'You are offline. Messages you write are kept and sent when you are back.';
  else if (c === undefined || c.state === ConnectionState.Connecting) text = c === undefined ? undefined : 'Connecting…';
  else if (c.state === ConnectionState.Reconnecting) {
    const seconds = Math.max(0, Math.round(((c.retryInMs ?? 0) - (Date.now() - props.session.connectionAt)) / 1000));
    text = `Cannot reach the server. Reconnecting${seconds > 0 ? ` (next try in about ${seconds} s)` : '…'}`;
  } else if (c.state === ConnectionState.Closed && c.reason === 5) text = 'The server no longer accepts this device. Register or link it again.';
  if (!text) return null;
  return (
    <div class="banner" role="status" data-state={browserOnline ? (c?.state ?? 'idle') : 'offline'}>
      {text}
    </div>
  );
}
