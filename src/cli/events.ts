/**
 * What the terminal client prints for each incoming event: one JSON object per line with `--json` (the
 * fixed scripting interface: every object has at least `id`, `from`, `timestamp`, `type` and `body`), or a
 * readable line. The daemon sends the same objects as its `message` notifications.
 */
import type { Client } from '../client/client.js';
import type { ClientEvents, Sender } from '../client/events.js';
import type { GroupView } from '../client/groups/state.js';
import { isGroupId, messageId, type GroupId } from '../client/ids.js';
import type { AttachmentRecord, MessageRecord } from '../client/store/types.js';
import { describeGroupUpdate, namesFor, type NameOf } from './groups.js';
import type { Io } from './io.js';
import { attachmentFields, describeAttachment, progressBar, type AttachmentLine } from './media.js';

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
  /** text, timer, reaction, edit, delete, receipt, typing, undecryptable, identity-changed, group-update, devices-changed, history-synced, read-synced. */
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

/** How {@link subscribeEvents} treats what arrives. */
export interface EventOptions {
  /**
   * Download the attachments of incoming messages before printing their line, so that it carries the saved
   * file's path (a failed download is printed with its error code; `parley download` tries again).
   */
  readonly downloadAttachments?: boolean | undefined;
  /** Where a download draws its progress bar (a terminal only). */
  readonly io?: Io | undefined;
}

/**
 * The message's attachments after downloading each one (the message as stored afterwards); the downloads'
 * errors are in the records (state `failed`), never thrown.
 */
async function downloadAll(client: Client, m: MessageRecord, io: Io | undefined): Promise<readonly AttachmentRecord[]> {
  for (let index = 0; index < m.attachments.length; index += 1) {
    const bar = io ? progressBar(io, 'downloading') : undefined;
    try {
      await client.downloadAttachment(m.id, { index, onProgress: bar?.update });
    } catch {
      // Recorded on the attachment (state failed, error code).
    } finally {
      bar?.done();
    }
  }
  return (await client.message(m.id))?.attachments ?? m.attachments;
}

/** Stops a subscription; resolves once the lines of events that arrived before were delivered. */
export type StopEvents = () => Promise<void>;

/**
 * Calls `onLine` for every incoming event of `client`, in the order the events came (a group update's line
 * needs the members' numbers from the store first; the lines after it wait for it). Returns a function that
 * stops.
 */
export function subscribeEvents(client: Client, deliver: (line: EventLine, event: keyof ClientEvents) => void, options: EventOptions = {}): StopEvents {
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
  /** The common fields of a line about our own account (another of our devices did something). */
  const ownLine = (id: string, timestamp: number, type: string): EventLine => ({
    id,
    from: client.number,
    fromAccountId: client.accountId,
    fromVerified: true,
    timestamp,
    type,
    body: '',
  });
  /** Our own account as a sender (another of our devices): our number, which the server confirmed at registration. */
  const self = (from: Sender): Sender => (from.accountId === client.accountId ? { ...from, number: client.number, numberVerified: true } : from);
  const offs = [
    client.on('message', ({ from, message: m }) =>
      later(async () => {
        const group = isGroupId(m.conversationId);
        // A view-once file stays on the server until `parley view` (saved here, it would go once shown).
        const download = options.downloadAttachments === true && m.attachments.length > 0 && !m.viewOnce;
        const attachments = download ? await downloadAll(client, m, options.io) : m.attachments;
        return {
          ...base(self(from), m.timestamp, 'text', m.body),
          ...attachmentFields(attachments),
          groupId: group ? m.conversationId : null,
          serverTimestamp: m.serverTimestamp ?? null,
          quote: m.quote ? { id: messageId(m.quote.authorId, m.quote.timestamp), timestamp: m.quote.timestamp, text: m.quote.text } : null,
          viewOnce: m.viewOnce,
          expireTimer: m.expireTimer,
          // `outgoing`: sent by this account from another of its devices (a sync message); then `to` is the recipient.
          direction: m.direction,
          fromDeviceId: from.deviceId,
          ...(m.direction === 'outgoing' && !group ? { to: await numberOfContact(client, m.conversationId), toAccountId: m.conversationId } : {}),
        };
      }, 'message'),
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
    client.on('identityChanged', ({ accountId, number, status, changedAt, deviceId }) =>
      onLine(
        {
          id: `identity:${accountId}${deviceId === undefined ? '' : `.${deviceId}`}:${changedAt}`,
          from: number ?? null,
          fromAccountId: accountId,
          fromVerified: number !== undefined,
          timestamp: changedAt,
          type: 'identity-changed',
          body: '',
          status,
          // The device whose key changed, when it is a linked companion (undefined: the account key).
          deviceId: deviceId ?? null,
        },
        'identityChanged',
      ),
    ),
    client.on('devicesChanged', ({ accountId, added, removed }) =>
      later(async () => {
        const own = accountId === client.accountId;
        const number = own ? client.number : await numberOfContact(client, accountId);
        const at = Date.now();
        return {
          id: `devices:${accountId}:${at}`,
          from: number,
          fromAccountId: accountId,
          fromVerified: own || number !== null,
          timestamp: at,
          type: 'devices-changed',
          body: '',
          self: own,
          added: [...added],
          removed: [...removed],
        };
      }, 'devicesChanged'),
    ),
    client.on('historySynced', ({ messages, contacts, groups }) => {
      const at = Date.now();
      onLine({ ...ownLine(`history:${client.accountId}:${at}`, at, 'history-synced'), messages, contacts, groups }, 'historySynced');
    }),
    client.on('readSynced', ({ messages }) => {
      const at = Date.now();
      onLine({ ...ownLine(`read:${client.accountId}:${at}`, at, 'read-synced'), messages: messages.map((m) => m.id) }, 'readSynced');
    }),
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

/** A contact's number, or null when unknown (or when the store is closing). */
async function numberOfContact(client: Client, accountId: string): Promise<string | null> {
  try {
    return (await client.contacts()).find((c) => c.accountId === accountId)?.number ?? null;
  } catch {
    return null;
  }
}

/** A readable rendering of an event line. */
export function humanLine(l: EventLine): string {
  const who = l.from ?? l.fromAccountId;
  const when = `${new Date(l.timestamp).toISOString()}${typeof l.groupId === 'string' && l.type !== 'group-update' ? ` [group ${l.groupId}]` : ''}`;
  switch (l.type) {
    case 'text': {
      const files = Array.isArray(l.attachments) ? (l.attachments as AttachmentLine[]).map((a) => ` [${describeAttachment(a)}]`).join('') : '';
      return l.direction === 'outgoing'
        ? `${when} you (device ${String(l.fromDeviceId)}) to ${typeof l.groupId === 'string' ? 'the group' : String(l.to ?? l.toAccountId)}: ${l.body}${files}${l.viewOnce ? ' (view once)' : ''}`
        : `${when} ${who}: ${l.body}${files}${l.viewOnce ? (l.attachment === undefined ? ' (view once)' : ` (view once: parley view ${String(l.id)} --out FILE)`) : ''}`;
    }
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
      return typeof l.deviceId === 'number'
        ? `${when} the identity key of ${who}'s device ${l.deviceId} changed`
        : `${when} the safety number with ${who} changed${l.status === 'verification-required' ? ': verify it before sending again' : ''}`;
    case 'devices-changed': {
      const change = [
        (l.added as number[]).length > 0 ? `linked device(s) ${(l.added as number[]).join(', ')}` : '',
        (l.removed as number[]).length > 0 ? `removed device(s) ${(l.removed as number[]).join(', ')}` : '',
      ].filter((t) => t !== '');
      return `${when} ${l.self ? 'your account' : who} ${change.length > 0 ? change.join(' and ') : 'published a new device list'}`;
    }
    case 'history-synced':
      return `${when} history from the primary device arrived: ${String(l.messages)} message(s), ${String(l.contacts)} contact(s), ${String(l.groups)} group(s)`;
    case 'read-synced':
      return `${when} ${(l.messages as string[]).length} message(s) read on another of your devices`;
    default:
      return `${when} ${who}: ${l.type}`;
  }
}
