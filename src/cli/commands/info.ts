/** `parley contacts`, `parley safety-number <phone>`, `parley verify <phone>`, `parley messages <phone>`, `parley read <phone>`. */
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { Client } from '../../client/client.js';
import type { GroupView } from '../../client/groups/state.js';
import { isGroupId } from '../../client/ids.js';
import type { MessageRecord } from '../../client/store/types.js';
import { attachmentFields } from '../media.js';
import { describeGroupUpdate, groupIdArg, isGroupArg, namesFor, receiptSummary, type NameOf } from '../groups.js';
import type { Printer } from '../io.js';
import { withClient } from './send.js';

export async function contactsCommand(args: { profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const contacts = await client.contacts();
    for (const c of contacts) {
      out.result(
        { accountId: c.accountId, number: c.number ?? null, numberVerified: c.numberVerified, identity: c.identityStatus ?? null, expireTimer: c.expireTimer },
        `${(c.number ?? '(unknown number)').padEnd(17)} ${c.accountId}  ${c.identityStatus ?? 'no key yet'}${c.numberVerified ? '' : '  (number not confirmed)'}`,
      );
    }
    if (contacts.length === 0) out.note('No contacts yet.');
    return 0;
  }, 0);
}

export async function safetyNumberCommand(args: { phone: string; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const sn = await client.safetyNumber(args.phone);
    out.result(
      { number: args.phone, accountId: sn.accountId, safetyNumber: sn.digits, formatted: sn.formatted, status: sn.status, scannable: Buffer.from(sn.scannable).toString('base64') },
      `Safety number with ${args.phone} (${sn.status}):\n${sn.formatted}`,
    );
    return 0;
  }, 0);
}

export async function verifyCommand(args: { phone: string; safetyNumber: string | undefined; unverify: boolean; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const sn = await client.safetyNumber(args.phone);
    if (args.safetyNumber !== undefined && args.safetyNumber.replace(/\s+/g, '') !== sn.digits) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'that is not the safety number of this conversation: nothing was marked');
    }
    const rec = args.unverify ? await client.markUnverified(args.phone) : await client.markVerified(args.phone, sn.identityKey);
    out.result({ number: args.phone, accountId: rec.accountId, status: rec.status }, `${args.phone} is now ${rec.status}.`);
    return 0;
  }, 0);
}

/** What a group conversation's lines add: the group (receipt counts over its current members) and names. */
export interface GroupContext {
  readonly group: GroupView;
  readonly nameOf: NameOf;
}

/** Counts of an outgoing group message's receipts over the group's other current members. */
function receiptCounts(m: MessageRecord, group: GroupView): { members: number; delivered: number; read: number } {
  const others = new Set(group.members.filter((x) => !x.self).map((x) => x.accountId as string));
  const current = m.receipts.filter((r) => others.has(r.accountId));
  return { members: others.size, delivered: current.length, read: current.filter((r) => r.status !== 'delivered').length };
}

/** A stored message as the JSON interfaces show it (`parley messages --json` and the daemon's `messages`). */
export function messageLine(m: MessageRecord, ctx?: GroupContext): Record<string, unknown> {
  const group = isGroupId(m.conversationId);
  return {
    id: m.id,
    direction: m.direction,
    timestamp: m.timestamp,
    type: m.kind,
    body: m.body,
    status: m.status,
    quote: m.quote ?? null,
    reactions: m.reactions,
    edited: m.editedAt !== undefined,
    deleted: m.deleted,
    viewOnce: m.viewOnce,
    expireTimer: m.expireTimer,
    expiresAt: m.expiresAt ?? null,
    groupId: group ? m.conversationId : null,
    fromAccountId: m.senderId,
    ...(ctx ? { from: m.direction === 'outgoing' ? null : numberOrNull(ctx.nameOf(m.senderId)) } : {}),
    receipts: m.receipts,
    ...(ctx && m.direction === 'outgoing' && m.kind === 'text' ? { receiptCounts: receiptCounts(m, ctx.group) } : {}),
    groupUpdate: m.groupUpdate ?? null,
    ...(ctx && m.groupUpdate ? { description: describeGroupUpdate(m.groupUpdate, ctx.nameOf) } : {}),
    ...attachmentFields(m.attachments),
  };
}

const numberOrNull = (name: string): string | null => (name.startsWith('+') ? name : null);

/** The group context of a conversation argument, when it names a group (`CLIENT_UNKNOWN_GROUP` when not known). */
export async function groupContext(client: Client, conversation: string): Promise<GroupContext | undefined> {
  if (!isGroupArg(conversation)) return undefined;
  const group = await client.group(groupIdArg(conversation));
  if (!group) throw new ClientError(ClientErrorCode.UnknownGroup, 'unknown group: this profile is not in a group with that id');
  return { group, nameOf: await namesFor(client, group) };
}

export async function messagesCommand(args: { phone: string; limit: number | undefined; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    await client.purgeExpired();
    const ctx = await groupContext(client, args.phone);
    const conversation = ctx ? ctx.group.id : args.phone;
    for (const m of await client.messages(conversation, args.limit === undefined ? {} : { limit: args.limit })) {
      const arrow = m.direction === 'outgoing' ? '>' : '<';
      const text =
        m.kind === 'undecryptable'
          ? '(could not be decrypted)'
          : m.deleted
            ? '(deleted)'
            : m.kind === 'timer'
              ? `(timer ${m.expireTimer} s)`
              : m.kind === 'group-update' && m.groupUpdate
                ? `* ${describeGroupUpdate(m.groupUpdate, ctx?.nameOf ?? ((id) => id))}`
                : m.body;
      const who = ctx && m.direction === 'incoming' && m.kind !== 'group-update' ? `${ctx.nameOf(m.senderId)}: ` : '';
      const receipts = ctx ? receiptSummary(m, ctx.group) : undefined;
      out.result(messageLine(m, ctx), `${new Date(m.timestamp).toISOString()} ${arrow} ${who}${text}  [${receipts ?? m.status}] ${m.id}`);
    }
    return 0;
  }, 0);
}

export async function readCommand(args: { phone: string; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const read = await client.markRead(args.phone);
    out.result({ number: args.phone, read: read.map((m) => m.id) }, `Marked ${read.length} message(s) read.`);
    return 0;
  });
}
