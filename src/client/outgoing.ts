/**
 * What the user sends: text (with quote, view-once, disappearing timer), reactions, edits, deletes for
 * everyone, read/viewed receipts, typing indicators and timer changes. Each durable send stores its message
 * (if it is one) and its outbox entry in one transaction, then hands the entry to the outbox; typing is
 * ephemeral and bypasses the outbox.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { ReceiptType, TypingAction, checkBody, checkText, makeContent, serializeContent } from './content.js';
import type { CallMessageSchema, ContentSchema, SyncMessageSchema } from './gen/content_pb.js';
import { PRIMARY_DEVICE_ID } from '../protocol/device-identity.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { isGroupId, messageId, type AccountId, type ConversationId, type MessageId } from './ids.js';
import type { GroupSender } from './groups/sender.js';
import { requireActiveGroup } from './groups/state.js';
import { deletedRecord, newMessageRecord, savedFiles } from './message-records.js';
import { MAX_ATTACHMENTS, pointerOf } from './media/pointers.js';
import { enqueueMessage, enqueueReceipt, newOutboxEntry, type Outbox } from './outbox.js';
import { requireAccount } from './protocol-stores.js';
import type { MessageSender } from './sender.js';
import { advanceStatus } from './status.js';
import { isUnread } from './store/unread.js';
import type { RequestOptions } from './transport/types.js';
import type { AccountRecord, AttachmentRecord, ClientStore, ContactRecord, MessageRecord, OutboxEntry, QuoteRecord, StoreTx } from './store/types.js';

/** Hands out sender timestamps: the clock, but strictly increasing, because a timestamp is a message's id. */
export class TimestampClock {
  #last = 0;

  constructor(readonly now: () => number) {}

  next(): number {
    this.#last = Math.max(this.now(), this.#last + 1);
    return this.#last;
  }
}

/** Options of a text message. */
export interface TextOptions {
  /** The message replied to. */
  readonly quote?: MessageRecord | undefined;
  readonly viewOnce?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

type ContentBody = MessageInitShape<typeof ContentSchema>['body'];

export interface OutgoingOptions {
  readonly store: ClientStore;
  readonly outbox: Outbox;
  readonly sender: MessageSender;
  readonly groups: GroupSender;
  readonly clock: TimestampClock;
}

/** The conversation's disappearing timer and where to store a change of it (a contact or a group). */
interface Conversation {
  readonly expireTimer: number;
  setTimer(seconds: number): Promise<void>;
}

/** The conversation `to` (a contact, created when new; or a group we are an active member of). */
async function conversationOf(tx: StoreTx, to: ConversationId, self: AccountId, now: number): Promise<Conversation> {
  if (isGroupId(to)) {
    const group = await requireActiveGroup(tx, to, self);
    return { expireTimer: group.expireTimer, setTimer: (s) => tx.groups.put({ ...group, expireTimer: s, updatedAt: now }) };
  }
  const contact = await contactOf(tx, to, now);
  return { expireTimer: contact.expireTimer, setTimer: (s) => tx.contacts.put({ ...contact, expireTimer: s, updatedAt: now }) };
}

/** The group id a content carries ('' for 1:1). */
const groupIdOf = (to: ConversationId): string => (isGroupId(to) ? to : '');

async function contactOf(tx: StoreTx, accountId: AccountId, now: number): Promise<ContactRecord> {
  const c = await tx.contacts.get(accountId);
  if (c) return c;
  const created: ContactRecord = { accountId, number: undefined, numberVerified: false, expireTimer: 0, createdAt: now, updatedAt: now };
  await tx.contacts.put(created);
  return created;
}

/**
 * Whether this account has other devices to keep in step (a companion always has its primary; a primary has
 * the companions its device list names). An account with only its primary sends no sync messages.
 */
export async function hasOtherDevices(tx: StoreTx, account: AccountRecord): Promise<boolean> {
  return account.deviceId !== PRIMARY_DEVICE_ID || (await tx.deviceIdentities.list(account.accountId)).length > 0;
}

/**
 * Queues a SyncMessage for our other devices (a 1:1 send to our own account: the server addresses every
 * device but this one), in the transaction of the change it reports.
 */
export async function enqueueSync(tx: StoreTx, account: AccountRecord, timestamp: number, now: number, sync: SyncInit): Promise<OutboxEntry> {
  const content = makeContent({ timestamp: BigInt(timestamp), senderNumber: account.number, body: { case: 'sync', value: sync } });
  const entry = newOutboxEntry({ id: `sync:${account.accountId}:${timestamp}`, kind: 'message', recipientId: account.accountId, timestamp, content: serializeContent(content), now });
  await tx.outbox.put(entry);
  return entry;
}

type SyncInit = MessageInitShape<typeof SyncMessageSchema>;

export class Outgoing {
  readonly #o: OutgoingOptions;
  #syncQueued = false;

  constructor(options: OutgoingOptions) {
    this.#o = options;
  }

  /** Sends a text message; resolves with the stored message once the server accepted it for every device. */
  async sendText(to: ConversationId, text: string, options: TextOptions = {}): Promise<MessageRecord> {
    checkText(text);
    return this.#sendData(to, text, [], options);
  }

  /**
   * Sends uploaded attachments (their records, state `saved` or `pending`) with an optional caption; the upload
   * jobs named by `resumeKeys` are forgotten in the transaction that queues the message.
   */
  async sendAttachments(
    to: ConversationId,
    attachments: readonly AttachmentRecord[],
    options: TextOptions & {
      readonly caption?: string | undefined;
      readonly resumeKeys?: readonly string[];
      /** Called once the message and its outbox entry are committed (before delivery). */
      readonly onQueued?: (() => void) | undefined;
    } = {},
  ): Promise<MessageRecord> {
    const caption = options.caption ?? '';
    checkBody(caption);
    if (attachments.length === 0 || attachments.length > MAX_ATTACHMENTS) throw new ClientError(ClientErrorCode.InvalidArgument, `a message carries 1 to ${MAX_ATTACHMENTS} attachments`);
    return this.#sendData(
      to,
      caption,
      attachments,
      options,
      async (tx) => {
        for (const key of options.resumeKeys ?? []) await tx.uploads.remove(key);
      },
      options.onQueued,
    );
  }

  /** A DataMessage with text (a caption when there are files), quote, view-once and the conversation's timer. */
  #sendData(
    to: ConversationId,
    body: string,
    attachments: readonly AttachmentRecord[],
    options: TextOptions,
    also?: (tx: StoreTx) => Promise<void>,
    onQueued?: () => void,
  ): Promise<MessageRecord> {
    const quote: QuoteRecord | undefined = options.quote && {
      timestamp: options.quote.timestamp,
      authorId: options.quote.senderId,
      text: options.quote.body.slice(0, 200),
    };
    const viewOnce = options.viewOnce ?? false;
    return this.#sendMessage(
      to,
      options.signal,
      (contact) => ({
        record: { kind: 'text', body, quote, viewOnce, expireTimer: contact.expireTimer, attachments },
        body: {
          case: 'data',
          value: {
            body,
            quote: quote && { id: BigInt(quote.timestamp), authorAccountId: quote.authorId, text: quote.text },
            expireTimer: contact.expireTimer,
            viewOnce,
            attachments: attachments.map(pointerOf),
          },
        },
      }),
      also,
      onQueued,
    );
  }

  /** Sets the conversation's disappearing-message timer (seconds, 0 = off) and tells the peer. */
  async setExpireTimer(to: ConversationId, seconds: number, signal?: AbortSignal): Promise<MessageRecord> {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) throw new ClientError(ClientErrorCode.InvalidArgument, 'timer must be whole seconds');
    return this.#sendMessage(to, signal, () => ({
      record: { kind: 'timer', body: '', quote: undefined, viewOnce: false, expireTimer: seconds },
      body: { case: 'data', value: { expireTimer: seconds, expireTimerUpdate: true } },
      contactTimer: seconds,
    }));
  }

  /** Reacts to a message of the conversation (or removes our reaction). */
  async react(target: MessageRecord, emoji: string, remove = false, signal?: AbortSignal): Promise<void> {
    await this.#sendControl(target.conversationId, signal, async (tx, self, timestamp) => {
      const others = target.reactions.filter((r) => r.authorId !== self);
      const current = await tx.messages.get(target.id);
      if (current) await tx.messages.put({ ...current, reactions: remove ? others : [...others, { authorId: self, emoji, timestamp }] });
      return { case: 'reaction', value: { emoji, remove, targetAuthorAccountId: target.senderId, targetTimestamp: BigInt(target.timestamp) } };
    });
  }

  /** Replaces the text of one of our messages, here and for the peer. */
  async edit(target: MessageRecord, text: string, signal?: AbortSignal): Promise<void> {
    if (target.direction !== 'outgoing' || target.kind !== 'text' || target.deleted) throw new ClientError(ClientErrorCode.InvalidArgument, 'only your own text messages can be edited');
    checkBody(text);
    await this.#sendControl(target.conversationId, signal, async (tx, _self, timestamp) => {
      const current = await tx.messages.get(target.id);
      if (current) await tx.messages.put({ ...current, body: text, editedAt: timestamp });
      return { case: 'edit', value: { targetTimestamp: BigInt(target.timestamp), data: { body: text } } };
    });
  }

  /**
   * Deletes one of our messages for everyone; resolves with the locations of its attachments' saved files
   * (no longer referenced: the caller removes them).
   */
  async deleteForEveryone(target: MessageRecord, signal?: AbortSignal): Promise<string[]> {
    if (target.direction !== 'outgoing') throw new ClientError(ClientErrorCode.InvalidArgument, 'only your own messages can be deleted for everyone');
    let files: string[] = [];
    await this.#sendControl(target.conversationId, signal, async (tx) => {
      const current = await tx.messages.get(target.id);
      if (current) {
        await tx.messages.put(deletedRecord(current));
        files = savedFiles(current);
      }
      return { case: 'delete', value: { targetTimestamp: BigInt(target.timestamp) } };
    });
    return files;
  }

  /**
   * Marks unread messages of a conversation read (all of them, or those of `ids`; see `isUnread`): found
   * through the store's unread index, so a long history is not read. Starts their disappearing timers, tells our
   * other devices, and when `sendReceipt` queues read receipts for the texts and files among them (one
   * receipt per sender, split at MAX_RECEIPT_TIMESTAMPS; system entries, calls and placeholders get none).
   * Resolves with the messages changed.
   */
  async markRead(conversationId: ConversationId, options: { ids?: readonly MessageId[]; sendReceipt: boolean }): Promise<MessageRecord[]> {
    const now = this.#o.clock.now();
    const changed = await this.#o.store.transaction(async (tx) => {
      const account = await requireAccount(tx);
      const candidates = options.ids
        ? (await Promise.all(options.ids.map((id) => tx.messages.get(id)))).filter((m): m is MessageRecord => m !== undefined)
        : await tx.messages.unread(conversationId);
      const changed: MessageRecord[] = [];
      for (const m of candidates) {
        if (m.conversationId !== conversationId || !isUnread(m)) continue;
        // Only a text's timer starts on reading (a timer change's `expireTimer` is the new setting, not its own).
        const next: MessageRecord = { ...m, status: 'read', expiresAt: m.kind === 'text' && m.expireTimer > 0 ? now + m.expireTimer * 1000 : m.expiresAt };
        await tx.messages.put(next);
        changed.push(next);
      }
      if (changed.length > 0 && (await hasOtherDevices(tx, account))) {
        // Our other devices mark the same messages read (and send no receipts of their own).
        const read = changed.map((m) => ({ senderAccountId: m.senderId, timestamp: BigInt(m.timestamp) }));
        await enqueueSync(tx, account, this.#o.clock.next(), now, { read });
      }
      if (options.sendReceipt && changed.length > 0) {
        // Read receipts go to each sender, over the 1:1 sessions (in a group, to each author of what was read).
        const bySender = new Map<AccountId, number[]>();
        for (const m of changed) {
          if (m.kind !== 'text') continue;
          const list = bySender.get(m.senderId);
          if (list) list.push(m.timestamp);
          else bySender.set(m.senderId, [m.timestamp]);
        }
        for (const [sender, timestamps] of bySender) {
          if (sender === account.accountId) continue;
          await enqueueReceipt(tx, sender, ReceiptType.READ, timestamps, this.#o.clock.next(), now, account.number);
        }
      }
      return changed;
    });
    if (changed.length > 0) this.#o.outbox.kick();
    return changed;
  }

  /**
   * Opens a view-once message: resolves with it as it was (its text and attachments, for display this once)
   * and erases from the store its text, quote and attachments (their keys, thumbnails and saved files: the
   * locations of those files are resolved too, for the caller to remove); a viewed receipt goes to the sender
   * when `sendReceipt`.
   */
  async markViewed(id: MessageId, sendReceipt: boolean): Promise<{ shown: MessageRecord; files: string[] }> {
    const now = this.#o.clock.now();
    const shown = await this.#o.store.transaction(async (tx) => {
      const account = await requireAccount(tx);
      const m = await tx.messages.get(id);
      if (!m || m.direction !== 'incoming') throw new ClientError(ClientErrorCode.InvalidArgument, 'no such incoming message');
      if (!m.viewOnce || m.status === 'viewed') return { shown: m, files: [] };
      await tx.messages.put({ ...m, body: '', quote: undefined, attachments: [], status: advanceStatus(m.status, 'viewed') });
      if (sendReceipt) await enqueueReceipt(tx, m.senderId, ReceiptType.VIEWED, [m.timestamp], this.#o.clock.next(), now, account.number);
      return { shown: m, files: savedFiles(m) };
    });
    this.#o.outbox.kick();
    return shown;
  }

  /** Sends a typing indicator (ephemeral: delivered only if the peer is online, never stored). */
  async sendTyping(to: ConversationId, started: boolean, options?: RequestOptions): Promise<void> {
    const timestamp = this.#o.clock.next();
    const number = (await this.#o.store.transaction((tx) => requireAccount(tx))).number;
    const content = makeContent({
      timestamp: BigInt(timestamp),
      senderNumber: number,
      groupId: groupIdOf(to),
      body: { case: 'typing', value: { action: started ? TypingAction.STARTED : TypingAction.STOPPED, timestamp: BigInt(timestamp) } },
    });
    if (isGroupId(to)) await this.#o.groups.sendEphemeral(to, serializeContent(content), timestamp, options);
    else await this.#o.sender.sendEphemeral(to, serializeContent(content), timestamp, options);
  }

  /**
   * Sends a call message to every device of `to` (our own account: to our other devices); resolves with its
   * sender timestamp. `durable` sends go through the outbox and are stored by the server until fetched (offers
   * and hang-ups: a device that is offline learns of the call, and records it as missed, when it comes back);
   * the others are ephemeral, online only, never stored (answers, ICE candidates, ringing, busy).
   */
  async sendCall(to: AccountId, call: MessageInitShape<typeof CallMessageSchema>, durable: boolean, options: RequestOptions = {}): Promise<number> {
    const timestamp = this.#o.clock.next();
    const now = this.#o.clock.now();
    const number = (await this.#o.store.transaction((tx) => requireAccount(tx))).number;
    const bytes = serializeContent(makeContent({ timestamp: BigInt(timestamp), senderNumber: number, body: { case: 'call', value: call } }));
    if (!durable) {
      await this.#o.sender.sendEphemeral(to, bytes, timestamp, options);
      return timestamp;
    }
    const entryId = await this.#o.store.transaction(async (tx) => (await enqueueMessage(tx, { recipientId: to, timestamp, content: bytes, messageId: undefined, now })).id);
    await this.#o.outbox.deliver(entryId, options.signal);
    return timestamp;
  }

  /** Stores a new outgoing message and its outbox entry, then delivers it. */
  async #sendMessage(
    to: ConversationId,
    signal: AbortSignal | undefined,
    build: (conversation: Conversation) => {
      record: Pick<MessageRecord, 'kind' | 'body' | 'quote' | 'viewOnce' | 'expireTimer'> & Partial<Pick<MessageRecord, 'attachments'>>;
      body: ContentBody;
      contactTimer?: number;
    },
    also?: (tx: StoreTx) => Promise<void>,
    onQueued?: () => void,
  ): Promise<MessageRecord> {
    const timestamp = this.#o.clock.next();
    const now = this.#o.clock.now();
    const { entryId, id } = await this.#o.store.transaction(async (tx) => {
      const account = await requireAccount(tx);
      const conversation = await conversationOf(tx, to, account.accountId, now);
      const built = build(conversation);
      if (built.contactTimer !== undefined) await conversation.setTimer(built.contactTimer);
      const id = messageId(account.accountId, timestamp);
      await tx.messages.put(
        newMessageRecord({ id, conversationId: to, senderId: account.accountId, direction: 'outgoing', timestamp, serverTimestamp: undefined, receivedAt: now, status: 'pending', ...built.record }),
      );
      const content = makeContent({ timestamp: BigInt(timestamp), senderNumber: account.number, groupId: groupIdOf(to), body: built.body });
      const bytes = serializeContent(content);
      const entry = await enqueueMessage(tx, { recipientId: to, timestamp, content: bytes, messageId: id, now });
      await this.#syncSent(tx, account, to, timestamp, bytes, now);
      await also?.(tx);
      return { entryId: entry.id, id };
    });
    onQueued?.();
    this.#kickSync();
    await this.#o.outbox.deliver(entryId, signal);
    const message = await this.#o.store.transaction((tx) => tx.messages.get(id));
    return message as MessageRecord;
  }

  /** Sends a control message (reaction, edit, delete) after applying it locally, in one transaction. */
  async #sendControl(
    to: ConversationId,
    signal: AbortSignal | undefined,
    apply: (tx: StoreTx, self: AccountId, timestamp: number) => Promise<ContentBody>,
  ): Promise<void> {
    const timestamp = this.#o.clock.next();
    const now = this.#o.clock.now();
    const entryId = await this.#o.store.transaction(async (tx) => {
      const account = await requireAccount(tx);
      if (isGroupId(to)) await requireActiveGroup(tx, to, account.accountId);
      const body = await apply(tx, account.accountId, timestamp);
      const content = makeContent({ timestamp: BigInt(timestamp), senderNumber: account.number, groupId: groupIdOf(to), body });
      const bytes = serializeContent(content);
      await this.#syncSent(tx, account, to, timestamp, bytes, now);
      return (await enqueueMessage(tx, { recipientId: to, timestamp, content: bytes, messageId: undefined, now })).id;
    });
    this.#kickSync();
    await this.#o.outbox.deliver(entryId, signal);
  }

  /** Lets the outbox pick up sync entries just committed (they go out beside the message, not after it). */
  #kickSync(): void {
    if (!this.#syncQueued) return;
    this.#syncQueued = false;
    this.#o.outbox.kick();
  }

  /**
   * A 1:1 send also goes to our other devices, as SyncMessage.sent (group sends reach them through the group's
   * fan-out). The outbox delivers it in the background.
   */
  async #syncSent(tx: StoreTx, account: AccountRecord, to: ConversationId, timestamp: number, content: Uint8Array, now: number): Promise<void> {
    if (isGroupId(to) || !(await hasOtherDevices(tx, account))) return;
    await enqueueSync(tx, account, timestamp, now, { kind: { case: 'sent', value: { destinationAccountId: to, timestamp: BigInt(timestamp), content } } });
    this.#syncQueued = true;
  }
}
