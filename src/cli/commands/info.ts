/** `parley contacts`, `parley safety-number <phone>`, `parley verify <phone>`, `parley messages <phone>`, `parley read <phone>`. */
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { MessageRecord } from '../../client/store/types.js';
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

/** A stored message as the JSON interfaces show it (`parley messages --json` and the daemon's `messages`). */
export function messageLine(m: MessageRecord): Record<string, unknown> {
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
  };
}

export async function messagesCommand(args: { phone: string; limit: number | undefined; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    await client.purgeExpired();
    for (const m of await client.messages(args.phone, args.limit === undefined ? {} : { limit: args.limit })) {
      const arrow = m.direction === 'outgoing' ? '>' : '<';
      const text = m.kind === 'undecryptable' ? '(could not be decrypted)' : m.deleted ? '(deleted)' : m.kind === 'timer' ? `(timer ${m.expireTimer} s)` : m.body;
      out.result(messageLine(m), `${new Date(m.timestamp).toISOString()} ${arrow} ${text}  [${m.status}] ${m.id}`);
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
