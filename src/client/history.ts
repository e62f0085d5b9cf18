/**
 * History sync: what a primary gives a newly linked companion (docs/multi-device.md). The primary builds a
 * HistoryBundle (contacts, groups with their master keys, the newest messages of every conversation),
 * encrypts it as a blob under a fresh key, uploads it, and sends the key to the companion end to end. The
 * companion imports the bundle in one transaction: what it already has is kept, nothing is overwritten.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ClientError, ClientErrorCode } from './errors.js';
import { HistoryBundleSchema, HistoryMessageSchema, type HistoryBundle, type HistoryMessage } from './gen/content_pb.js';
import { placeholderGroup } from './groups/state.js';
import { isAccountId, isE164, isGroupId, type ConversationId, type GroupId, type MessageId } from './ids.js';
import { fromHex } from '../protocol/index.js';
import { attachmentFromPointer, decodePointer, encodePointerHex, MAX_ATTACHMENTS } from './media/pointers.js';
import type { AttachmentRecord, MessageKind, MessageRecord, MessageStatus, StoreTx } from './store/types.js';

/** Messages per conversation a history bundle carries at most. */
export const HISTORY_MESSAGES_PER_CONVERSATION = 500;
const HISTORY_VERSION = 1;

const KINDS: ReadonlySet<string> = new Set<MessageKind>(['text', 'timer', 'undecryptable', 'group-update']);
const STATUSES: ReadonlySet<string> = new Set<MessageStatus>(['pending', 'sent', 'delivered', 'read', 'viewed', 'failed', 'received']);

/** The fields of a MessageRecord a HistoryMessage carries as JSON in `record`. */
type RecordRest = Pick<
  MessageRecord,
  'quote' | 'reactions' | 'editedAt' | 'deleted' | 'viewOnce' | 'expireTimer' | 'expiresAt' | 'error' | 'receipts' | 'groupUpdate'
>;

/**
 * What the JSON `record` holds: {@link RecordRest}, and the attachments as hex serialized AttachmentPointers
 * (the pointer only: where the primary keeps its copy means nothing to the companion, which fetches the file
 * itself, so each arrives `pending`).
 */
type RecordJson = RecordRest & { readonly attachments?: readonly string[] };

function attachmentsFromJson(value: unknown): AttachmentRecord[] {
  if (!Array.isArray(value)) return [];
  const out: AttachmentRecord[] = [];
  for (const hex of value.slice(0, MAX_ATTACHMENTS)) {
    if (typeof hex !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(hex)) continue;
    const pointer = decodePointer(fromHex(hex));
    if (pointer) out.push(attachmentFromPointer(pointer));
  }
  return out;
}

/** Builds the serialized HistoryBundle of everything this device holds (in `tx`). */
export async function buildHistoryBundle(tx: StoreTx, now: number, perConversation = HISTORY_MESSAGES_PER_CONVERSATION): Promise<Uint8Array> {
  const contacts = await tx.contacts.list();
  const groups = (await tx.groups.list()).filter((g) => g.revision >= 0);
  const messages: HistoryMessage[] = [];
  const conversations: ConversationId[] = [...contacts.map((c) => c.accountId), ...groups.map((g) => g.id)];
  for (const conversationId of conversations) {
    for (const m of await tx.messages.list(conversationId, { limit: perConversation })) {
      const rest: RecordJson = {
        quote: m.quote,
        reactions: m.reactions,
        editedAt: m.editedAt,
        deleted: m.deleted,
        viewOnce: m.viewOnce,
        expireTimer: m.expireTimer,
        expiresAt: m.expiresAt,
        error: m.error,
        receipts: m.receipts,
        groupUpdate: m.groupUpdate,
        attachments: m.attachments.filter((a) => a.blobId !== '').map(encodePointerHex),
      };
      messages.push(
        create(HistoryMessageSchema, {
          id: m.id,
          conversationId: m.conversationId,
          senderAccountId: m.senderId,
          outgoing: m.direction === 'outgoing',
          timestamp: BigInt(m.timestamp),
          serverTimestamp: BigInt(m.serverTimestamp ?? 0),
          kind: m.kind,
          body: m.body,
          status: m.status,
          record: new TextEncoder().encode(JSON.stringify(rest)),
        }),
      );
    }
  }
  return toBinary(
    HistoryBundleSchema,
    create(HistoryBundleSchema, {
      version: HISTORY_VERSION,
      createdAt: BigInt(now),
      contacts: contacts.map((c) => ({ accountId: c.accountId, number: c.number ?? '', numberVerified: c.numberVerified, expireTimer: c.expireTimer })),
      groups: groups.filter((g) => g.masterKey !== undefined).map((g) => ({ groupId: g.id, masterKey: g.masterKey, expireTimer: g.expireTimer })),
      messages,
    }),
  );
}

/** What an import added. */
export interface ImportedHistory {
  readonly messages: number;
  readonly contacts: number;
  readonly groups: number;
  /** Groups new here: their state is fetched from the server next. */
  readonly newGroups: readonly GroupId[];
}

/** Decodes a bundle (`CLIENT_BAD_BLOB` when it does not). */
export function decodeHistoryBundle(bytes: Uint8Array): HistoryBundle {
  try {
    return fromBinary(HistoryBundleSchema, bytes);
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadBlob, 'the history bundle does not decode', { cause });
  }
}

function parseRest(bytes: Uint8Array): (RecordRest & { attachments: AttachmentRecord[] }) | undefined {
  try {
    const r = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Record<keyof RecordJson, unknown>> & Partial<RecordRest>;
    if (typeof r !== 'object' || r === null) return undefined;
    return {
      quote: r.quote ?? undefined,
      reactions: Array.isArray(r.reactions) ? r.reactions : [],
      editedAt: typeof r.editedAt === 'number' ? r.editedAt : undefined,
      deleted: r.deleted === true,
      viewOnce: r.viewOnce === true,
      expireTimer: typeof r.expireTimer === 'number' ? r.expireTimer : 0,
      expiresAt: typeof r.expiresAt === 'number' ? r.expiresAt : undefined,
      error: typeof r.error === 'string' ? r.error : undefined,
      receipts: Array.isArray(r.receipts) ? r.receipts : [],
      groupUpdate: r.groupUpdate ?? undefined,
      attachments: attachmentsFromJson(r.attachments),
    };
  } catch {
    return undefined;
  }
}

/** Imports a decoded bundle in `tx`: adds what is not here yet (contacts, groups, messages); malformed entries are skipped. */
export async function importHistoryBundle(tx: StoreTx, bundle: HistoryBundle, now: number): Promise<ImportedHistory> {
  let contacts = 0;
  let messages = 0;
  const newGroups: GroupId[] = [];
  for (const c of bundle.contacts) {
    if (!isAccountId(c.accountId)) continue;
    const existing = await tx.contacts.get(c.accountId);
    const number = isE164(c.number) ? c.number : undefined;
    if (existing) {
      if (existing.number === undefined && number !== undefined) await tx.contacts.put({ ...existing, number, numberVerified: c.numberVerified, updatedAt: now });
      continue;
    }
    await tx.contacts.put({ accountId: c.accountId, number, numberVerified: number !== undefined && c.numberVerified, expireTimer: c.expireTimer, createdAt: now, updatedAt: now });
    contacts++;
  }
  for (const g of bundle.groups) {
    if (!isGroupId(g.groupId) || g.masterKey.length !== 32) continue;
    const existing = await tx.groups.get(g.groupId);
    if (existing && existing.masterKey) continue;
    await tx.groups.put(existing ? { ...existing, masterKey: g.masterKey } : { ...placeholderGroup(g.groupId, now), masterKey: g.masterKey, expireTimer: g.expireTimer });
    newGroups.push(g.groupId);
  }
  for (const m of bundle.messages) {
    const conversationOk = isAccountId(m.conversationId) || isGroupId(m.conversationId);
    if (!conversationOk || !isAccountId(m.senderAccountId) || !KINDS.has(m.kind) || !STATUSES.has(m.status) || m.id.length === 0 || m.id.length > 200) continue;
    if (!m.id.startsWith(`${m.senderAccountId}:`)) continue;
    const rest = parseRest(m.record);
    if (!rest) continue;
    const id = m.id as MessageId;
    if (await tx.messages.get(id)) continue;
    await tx.messages.put({
      id,
      conversationId: m.conversationId as ConversationId,
      senderId: m.senderAccountId,
      direction: m.outgoing ? 'outgoing' : 'incoming',
      timestamp: Number(m.timestamp),
      serverTimestamp: m.serverTimestamp > 0n ? Number(m.serverTimestamp) : undefined,
      receivedAt: now,
      kind: m.kind as MessageKind,
      body: m.body,
      status: m.status === 'pending' ? 'failed' : (m.status as MessageStatus),
      ...rest,
    });
    messages++;
  }
  return { messages, contacts, groups: newGroups.length, newGroups };
}
