/**
 * What the terminal client prints for each incoming event: one JSON object per line with `--json` (the
 * fixed scripting interface: every object has at least `id`, `from`, `timestamp`, `type` and `body`), or a
 * readable line. The daemon sends the same objects as its `message` notifications.
 */
import type { Client } from '../client/client.js';
import type { ClientEvents, Sender } from '../client/events.js';
import { messageId } from '../client/ids.js';

/** One printed event. */
export interface EventLine {
  /** The id of the message this event is (`<sender account>:<sender timestamp>`). */
  readonly id: string;
  /** The sender's phone number once confirmed by the server's directory, else its claim, else null. */
  readonly from: string | null;
  readonly fromAccountId: string;
  /** Whether `from` was confirmed by the server's directory. */
  readonly fromVerified: boolean;
  /** The sender's timestamp, ms. */
  readonly timestamp: number;
  /** text, timer, reaction, edit, delete, receipt, typing, undecryptable, identity-changed. */
  readonly type: string;
  /** The text (for a reaction the emoji; empty when there is none). */
  readonly body: string;
  readonly [key: string]: unknown;
}

function base(from: Sender, timestamp: number, type: string, body: string): EventLine {
  return {
    id: messageId(from.accountId, timestamp),
    from: from.number ?? null,
    fromAccountId: from.accountId,
    fromVerified: from.numberVerified,
    timestamp,
    type,
    body,
  };
}

/** Calls `onLine` for every incoming event of `client`; returns a function that stops. */
export function subscribeEvents(client: Client, onLine: (line: EventLine, event: keyof ClientEvents) => void): () => void {
  const offs = [
    client.on('message', ({ from, message: m }) =>
      onLine(
        {
          ...base(from, m.timestamp, 'text', m.body),
          serverTimestamp: m.serverTimestamp ?? null,
          quote: m.quote ? { id: messageId(m.quote.authorId, m.quote.timestamp), timestamp: m.quote.timestamp, text: m.quote.text } : null,
          viewOnce: m.viewOnce,
          expireTimer: m.expireTimer,
        },
        'message',
      ),
    ),
    client.on('timer', ({ from, expireTimer, timestamp }) => onLine({ ...base(from, timestamp, 'timer', ''), expireTimer }, 'timer')),
    client.on('reaction', ({ from, targetId, emoji, remove, timestamp }) => onLine({ ...base(from, timestamp, 'reaction', emoji), targetId, remove }, 'reaction')),
    client.on('edit', ({ from, targetId, body, timestamp }) => onLine({ ...base(from, timestamp, 'edit', body), targetId }, 'edit')),
    client.on('delete', ({ from, targetId, timestamp }) => onLine({ ...base(from, timestamp, 'delete', ''), targetId }, 'delete')),
    client.on('receipt', ({ from, kind, timestamps, timestamp, updated }) =>
      onLine({ ...base(from, timestamp, 'receipt', ''), receipt: kind, timestamps, messages: updated.map((m) => ({ id: m.id, status: m.status })) }, 'receipt'),
    ),
    client.on('typing', ({ from, started, timestamp }) => onLine({ ...base(from, timestamp, 'typing', ''), started }, 'typing')),
    client.on('decryptionFailed', ({ from, timestamp, code, retryRequested }) =>
      onLine({ ...base(from, timestamp, 'undecryptable', ''), code, retryRequested }, 'decryptionFailed'),
    ),
    client.on('identityChanged', ({ accountId, number, status, changedAt }) =>
      onLine(
        {
          id: `identity:${accountId}:${changedAt}`,
          from: number ?? null,
          fromAccountId: accountId,
          fromVerified: number !== undefined,
          timestamp: changedAt,
          type: 'identity-changed',
          body: '',
          status,
        },
        'identityChanged',
      ),
    ),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/** A readable rendering of an event line. */
export function humanLine(l: EventLine): string {
  const who = l.from ?? l.fromAccountId;
  const when = new Date(l.timestamp).toISOString();
  switch (l.type) {
    case 'text':
      return `${when} ${who}: ${l.body}${l.viewOnce ? ' (view once)' : ''}`;
    case 'timer':
      return `${when} ${who} set disappearing messages to ${String(l.expireTimer)} s`;
    case 'reaction':
      return `${when} ${who} ${l.remove ? 'removed the reaction' : 'reacted'} ${l.body} to ${String(l.targetId)}`;
    case 'edit':
      return `${when} ${who} edited ${String(l.targetId)}: ${l.body}`;
    case 'delete':
      return `${when} ${who} deleted ${String(l.targetId)}`;
    case 'receipt':
      return `${when} ${who}: ${String(l.receipt)} receipt for ${(l.timestamps as number[]).length} message(s)`;
    case 'typing':
      return `${when} ${who} ${l.started ? 'is typing' : 'stopped typing'}`;
    case 'undecryptable':
      return `${when} ${who}: a message could not be decrypted (${String(l.code)}); asked the sender to send it again`;
    case 'identity-changed':
      return `${when} the safety number with ${who} changed${l.status === 'verification-required' ? ': verify it before sending again' : ''}`;
    default:
      return `${when} ${who}: ${l.type}`;
  }
}
