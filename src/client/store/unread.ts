/**
 * Which stored messages count as unread: one rule for every store implementation (their unread indexes and
 * {@link MessageStore.summaries}) and for `Client.markRead`, which clears exactly these.
 */
import type { MessageRecord } from './types.js';

/**
 * Whether a message is unread: incoming, not read (status `received`), and something the user should see
 * as new (a text or file, a call, a timer change, a message that could not be decrypted; group system
 * messages about members and names are not counted).
 *
 * SQL stores state the same rule over their columns (the CLI's `messages_unread` partial index): keep them alike.
 */
export function isUnread(m: Pick<MessageRecord, 'direction' | 'status' | 'kind'>): boolean {
  return m.direction === 'incoming' && m.status === 'received' && m.kind !== 'group-update';
}

