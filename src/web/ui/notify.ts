/** Notifications while the tab is open but hidden (the Notifications API); Web Push covers a closed tab. */
import type { MessageRecord } from '../../client/index.js';
import type { ChatSummary, Session } from '../model/session.js';
import { preview } from './format.js';

export function notificationsAllowed(): boolean {
  return 'Notification' in window && Notification.permission === 'granted';
}

export async function askForNotifications(): Promise<NotificationPermission | 'unsupported'> {
  if (!('Notification' in window)) return 'unsupported';
  return Notification.requestPermission();
}

export function notifyIncoming(session: Session, m: MessageRecord, chat: ChatSummary | undefined): void {
  if (!notificationsAllowed() || document.visibilityState === 'visible') return;
  const title = chat?.title ?? session.title(m.conversationId);
  const body = m.viewOnce ? 'View-once message' : preview(m, (id) => session.nameOf(id as never));
  const n = new Notification(title, { body, tag: m.conversationId, icon: '/icon.svg' });
  n.onclick = () => {
    window.focus();
    location.hash = `#/chat/${encodeURIComponent(m.conversationId)}`;
    n.close();
  };
}
