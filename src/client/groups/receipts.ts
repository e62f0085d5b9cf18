/**
 * Receipts of outgoing group messages: each member's newest receipt is kept (never downgraded), and the
 * message's overall status follows the slowest current member: delivered once every other member has it,
 * read once every other member read it ("read by 3 of 5").
 */
import type { AccountId } from '../ids.js';
import { advanceStatus } from '../status.js';
import type { GroupRecord, MemberReceiptRecord, MessageRecord, MessageStatus } from '../store/types.js';

const RANK = { delivered: 1, read: 2, viewed: 3 } as const;
type ReceiptStatus = MemberReceiptRecord['status'];

/** `receipts` with `accountId`'s receipt raised to `status` (unchanged when it already has that or more). */
export function upsertMemberReceipt(receipts: readonly MemberReceiptRecord[], accountId: AccountId, status: ReceiptStatus, at: number): MemberReceiptRecord[] {
  const current = receipts.find((r) => r.accountId === accountId);
  if (current && RANK[current.status] >= RANK[status]) return [...receipts];
  return [...receipts.filter((r) => r.accountId !== accountId), { accountId, status, at }].sort((a, b) => (a.accountId < b.accountId ? -1 : 1));
}

/** How many of the other current members delivered, read and viewed an outgoing group message. */
export interface GroupReceiptCounts {
  /** The other current members. */
  readonly total: number;
  readonly delivered: number;
  readonly read: number;
  readonly viewed: number;
}

/** "Read by N of M": counts over the group's current members other than `self`. */
export function groupReceiptCounts(message: MessageRecord, group: GroupRecord, self: AccountId): GroupReceiptCounts {
  const others = group.members.filter((m) => m.accountId !== self).map((m) => m.accountId);
  const by = new Map(message.receipts.map((r) => [r.accountId, RANK[r.status]]));
  const count = (min: number): number => others.filter((a) => (by.get(a) ?? 0) >= min).length;
  return { total: others.length, delivered: count(RANK.delivered), read: count(RANK.read), viewed: count(RANK.viewed) };
}

/** The overall status of an outgoing group message given its receipts (never lower than its current status). */
export function groupMessageStatus(message: MessageRecord, group: GroupRecord, self: AccountId): MessageStatus {
  const c = groupReceiptCounts(message, group, self);
  if (c.total === 0) return message.status;
  let next: MessageStatus = message.status;
  if (c.delivered === c.total) next = advanceStatus(next, 'delivered');
  if (c.read === c.total) next = advanceStatus(next, 'read');
  if (c.viewed === c.total) next = advanceStatus(next, 'viewed');
  return next;
}
