/**
 * What the terminal client prints for each incoming event: one JSON object per line with `--json` (the
 * fixed scripting interface: every object has at least `id`, `from`, `timestamp`, `type` and `body`), or a
 * readable line. The daemon sends the same objects as its `message` notifications.
 */
import type { Client } from '../client/client.js';
import type { ClientEvents, Sender } from '../client/events.js';
import type { GroupView } from '../client/groups/state.js';
import { isGroupId, messageId, type GroupId } from '../client/ids.js';
import type { MessageRecord } from '../client/store/types.js';
import { describeGroupUpdate, namesFor, type NameOf } from './groups.js';

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
  /** text, timer, reaction, edit, delete, receipt, typing, undecryptable, identity-changed, group-update. */
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

/** Stops a subscription; resolves once the lines of events that arrived before were delivered. */
export type StopEvents = () => Promise<void>;

/**
 * Calls `onLine` for every incoming event of `client`, in the order the events came (a group update's line
 * needs the members' numbers from the store first; the lines after it wait for it). Returns a function that
 * stops.
 */
export function subscribeEvents(client: Client, deliver: (line: EventLine, event: keyof ClientEvents) => void): StopEvents {
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;
  /** Queues a line; `make` must not reject (the group-update builder falls back to account ids). */
  const later = (make: () => Promise<EventLine>, event: keyof ClientEvents): void => {
    chain = chain.then(async () => {
      const line = await make();
      if (!stopped) deliver(line, event);
    });
  };
  const onLine = (line: EventLine, event: keyof ClientEvents): void => later(async () => line, event);
  const offs = [
    client.on('message', ({ from, message: m }) =>
      onLine(
        {
          ...base(from, m.timestamp, 'text', m.body),
          groupId: isGroupId(m.conversationId) ? m.conversationId : null,
          serverTimestamp: m.serverTimestamp ?? null,
          quote: m.quote ? { id: messageId(m.quote.authorId, m.quote.timestamp), timestamp: m.quote.timestamp, text: m.quote.text } : null,
          viewOnce: m.viewOnce,
          expireTimer: m.expireTimer,
        },
        'message',
      ),
    ),
    client.on('timer', ({ from, groupId, expireTimer, timestamp }) => onLine({ ...base(from, timestamp, 'timer', ''), groupId: groupId ?? null, expireTimer }, 'timer')),
    client.on('reaction', ({ from, groupId, targetId, emoji, remove, timestamp }) =>
      onLine({ ...base(from, timestamp, 'reaction', emoji), groupId: groupId ?? null, targetId, remove }, 'reaction'),
    ),
    client.on('edit', ({ from, groupId, targetId, body, timestamp }) => onLine({ ...base(from, timestamp, 'edit', body), groupId: groupId ?? null, targetId }, 'edit')),
    client.on('delete', ({ from, groupId, targetId, timestamp }) => onLine({ ...base(from, timestamp, 'delete', ''), groupId: groupId ?? null, targetId }, 'delete')),
    client.on('receipt', ({ from, kind, timestamps, timestamp, updated }) =>
      onLine({ ...base(from, timestamp, 'receipt', ''), receipt: kind, timestamps, messages: updated.map((m) => ({ id: m.id, status: m.status })) }, 'receipt'),
    ),
    client.on('typing', ({ from, groupId, started, timestamp }) => onLine({ ...base(from, timestamp, 'typing', ''), groupId: groupId ?? null, started }, 'typing')),
    client.on('decryptionFailed', ({ from, groupId, timestamp, code, retryRequested }) =>
      onLine({ ...base(from, timestamp, 'undecryptable', ''), groupId: groupId ?? null, code, retryRequested }, 'decryptionFailed'),
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
    client.on('groupUpdate', ({ groupId, message: m }) => later(() => groupUpdateLine(client, groupId, m), 'groupUpdate')),
  ];
  return async () => {
    for (const off of offs) off();
    await chain;
    stopped = true;
  };
}

/** The line of a group system message: `body` says what happened in words, `update` has the details. */
async function groupUpdateLine(client: Client, groupId: GroupId, m: MessageRecord): Promise<EventLine> {
  let nameOf: NameOf = (id) => id;
  let contact: { number: string | undefined; numberVerified: boolean } | undefined;
  let group: GroupView | undefined;
  try {
    group = await client.group(groupId);
    nameOf = await namesFor(client, group);
    contact = (await client.contacts()).find((c) => c.accountId === m.senderId);
  } catch {
    // the store is closing: account ids instead of numbers
  }
  const u = m.groupUpdate;
  return {
    id: m.id,
    from: contact?.number ?? null,
    fromAccountId: m.senderId,
    fromVerified: contact?.numberVerified ?? false,
    timestamp: m.timestamp,
    type: 'group-update',
    body: u ? describeGroupUpdate(u, nameOf) : '',
    groupId,
    groupName: group?.name ?? null,
    revision: u?.revision ?? null,
    update: u
      ? {
          ...u,
          name: u.name ?? null,
          added: u.added.map((id) => ({ accountId: id, number: numberOf(nameOf(id)) })),
          removed: u.removed.map((id) => ({ accountId: id, number: numberOf(nameOf(id)) })),
          promoted: u.promoted.map((id) => ({ accountId: id, number: numberOf(nameOf(id)) })),
          demoted: u.demoted.map((id) => ({ accountId: id, number: numberOf(nameOf(id)) })),
        }
      : null,
  };
}

const numberOf = (name: string): string | null => (name.startsWith('+') ? name : null);

/** A readable rendering of an event line. */
export function humanLine(l: EventLine): string {
  const who = l.from ?? l.fromAccountId;
  const when = `${new Date(l.timestamp).toISOString()}${typeof l.groupId === 'string' && l.type !== 'group-update' ? ` [group ${l.groupId}]` : ''}`;
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
    case 'group-update':
      return `${when} [group ${String(l.groupName ?? l.groupId)}] ${l.body}`;
    case 'identity-changed':
      return `${when} the safety number with ${who} changed${l.status === 'verification-required' ? ': verify it before sending again' : ''}`;
    default:
      return `${when} ${who}: ${l.type}`;
  }
}
