/**
 * Building and changing stored messages, shared by what this device sends, what it receives and what its
 * other devices report (sync): a fresh record with its defaults, the quote of a DataMessage, and reactions,
 * edits and deletes applied to a stored message of one conversation.
 */
import type { DataMessage } from './gen/content_pb.js';
import { isAccountId, type AccountId, type ConversationId, type MessageId } from './ids.js';
import type { MessageRecord, QuoteRecord, StoreTx } from './store/types.js';

/** What a new message record must be told; everything else starts empty (no reactions, edits, timer, receipts). */
export type NewMessageFields = Pick<MessageRecord, 'id' | 'conversationId' | 'senderId' | 'direction' | 'timestamp' | 'serverTimestamp' | 'receivedAt' | 'kind' | 'status'> &
  Partial<MessageRecord>;

/** A new message record: `fields` over the defaults of a message nobody has touched yet. */
export function newMessageRecord(fields: NewMessageFields): MessageRecord {
  return {
    body: '',
    quote: undefined,
    reactions: [],
    editedAt: undefined,
    deleted: false,
    viewOnce: false,
    expireTimer: 0,
    expiresAt: undefined,
    error: undefined,
    receipts: [],
    groupUpdate: undefined,
    attachments: [],
    ...fields,
  };
}

/** The quote of a received DataMessage, when it names a valid author. */
export function quoteOf(data: DataMessage): QuoteRecord | undefined {
  const q = data.quote;
  return q && isAccountId(q.authorAccountId) ? { timestamp: Number(q.id), authorId: q.authorAccountId, text: q.text } : undefined;
}

/**
 * Sets (or with `remove`, takes back) `author`'s reaction on the message `targetId` of `conversationId`;
 * resolves with the changed message, or undefined when there is no such live message there.
 */
export async function applyReaction(
  tx: StoreTx,
  targetId: MessageId,
  conversationId: ConversationId,
  reaction: { author: AccountId; emoji: string; remove: boolean; timestamp: number },
): Promise<MessageRecord | undefined> {
  const message = await tx.messages.get(targetId);
  if (!message || message.conversationId !== conversationId || message.deleted) return undefined;
  const others = message.reactions.filter((x) => x.authorId !== reaction.author);
  const next = { ...message, reactions: reaction.remove ? others : [...others, { authorId: reaction.author, emoji: reaction.emoji, timestamp: reaction.timestamp }] };
  await tx.messages.put(next);
  return next;
}

/**
 * Replaces the text of the message `targetId` of `conversationId` with an edit made at `timestamp`, when
 * `mayEdit` accepts the message, it is not deleted, and no later edit was applied; resolves with the
 * changed message or undefined.
 */
export async function applyEdit(
  tx: StoreTx,
  targetId: MessageId,
  conversationId: ConversationId,
  mayEdit: (m: MessageRecord) => boolean,
  edit: { body: string; timestamp: number },
): Promise<MessageRecord | undefined> {
  const message = await tx.messages.get(targetId);
  if (!message || message.conversationId !== conversationId || message.deleted || !mayEdit(message) || (message.editedAt ?? 0) >= edit.timestamp) return undefined;
  const next = { ...message, body: edit.body, editedAt: edit.timestamp };
  await tx.messages.put(next);
  return next;
}

/**
 * Deletes the message `targetId` of `conversationId` for everyone (its text, quote, reactions and attachments),
 * when `mayDelete` accepts it; resolves with the locations of the attachments' saved files, for the caller to
 * remove once the deletion is committed.
 */
export async function applyDelete(tx: StoreTx, targetId: MessageId, conversationId: ConversationId, mayDelete: (m: MessageRecord) => boolean): Promise<string[]> {
  const message = await tx.messages.get(targetId);
  if (!message || message.conversationId !== conversationId || !mayDelete(message)) return [];
  await tx.messages.put(deletedRecord(message));
  return savedFiles(message);
}

/** A message as deleted for everyone: no text, quote, reactions or attachments. */
export function deletedRecord(message: MessageRecord): MessageRecord {
  return { ...message, body: '', quote: undefined, reactions: [], attachments: [], deleted: true };
}

/** Where a message's attachments are saved on this device. */
export function savedFiles(message: MessageRecord): string[] {
  return message.attachments.flatMap((a) => (a.path === undefined ? [] : [a.path]));
}
