/**
 * `parley send <phone> <text>`: sends a text message and exits 0 once the server accepted it for every
 * device of the recipient. Also: `typing`, `react`, `edit`, `delete`, `timer` (the other things one sends).
 */
import { waitAtMost } from '../../client/async.js';
import type { Client } from '../../client/client.js';
import type { MessageId } from '../../client/ids.js';
import type { MessageRecord } from '../../client/store/types.js';
import { explainGroupErrors, groupIdArg, isGroupArg } from '../groups.js';
import { humanLine, subscribeEvents } from '../events.js';
import type { Printer } from '../io.js';
import { openClient, openStore } from '../profile.js';

/**
 * Runs `fn` with a client on the profile, then lets the outbox finish (bounded) and closes. A safety-number
 * change noticed meanwhile (sending to a peer that registered again) is printed like `receive` prints it.
 */
export async function withClient<T>(profile: string, fn: (client: Client) => Promise<T>, settleMs = 5_000, out?: Printer): Promise<T> {
  const store = openStore(profile);
  try {
    const client = await openClient(profile, store, { maintainKeys: false });
    const stop = out
      ? subscribeEvents(client, (line, event) => {
          if (event === 'identityChanged') out.result(line, humanLine(line));
        })
      : undefined;
    try {
      client.resumeOutbox();
      const result = await fn(client);
      await waitAtMost(client.whenIdle(), settleMs);
      return result;
    } finally {
      await stop?.();
      await client.close();
    }
  } finally {
    await store.close();
  }
}

export async function sendCommand(
  args: { to: string; group: boolean; text: string; quote: string | undefined; viewOnce: boolean; profile: string },
  out: Printer,
): Promise<number> {
  const group = args.group || isGroupArg(args.to);
  const to = group ? groupIdArg(args.to) : args.to;
  return withClient(args.profile, async (client) => {
    const quote = args.quote === undefined ? undefined : await client.message(args.quote as MessageId);
    if (args.quote !== undefined && !quote) throw new RangeError(`no message ${args.quote} in this profile`);
    const send = (): Promise<MessageRecord> => client.sendText(to, args.text, { quote, viewOnce: args.viewOnce });
    const m = group ? await explainGroupErrors('send', send) : await send();
    out.result(
      group
        ? { id: m.id, to, groupId: to, timestamp: m.timestamp, status: m.status }
        : { id: m.id, to, toAccountId: m.conversationId, timestamp: m.timestamp, status: m.status },
      `Sent to ${group ? `group ${to}` : to} (${m.id}).`,
    );
    return 0;
  }, 5_000, out);
}

export async function typingCommand(args: { phone: string; stop: boolean; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    await client.sendTyping(args.phone, !args.stop);
    out.result({ to: args.phone, started: !args.stop }, `Typing ${args.stop ? 'stopped' : 'started'}.`);
    return 0;
  });
}

export async function reactCommand(args: { id: string; emoji: string; remove: boolean; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    await client.react(args.id as MessageId, args.emoji, { remove: args.remove });
    out.result({ targetId: args.id, emoji: args.emoji, remove: args.remove }, 'Reaction sent.');
    return 0;
  });
}

export async function editCommand(args: { id: string; text: string; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    await client.edit(args.id as MessageId, args.text);
    out.result({ targetId: args.id }, 'Edit sent.');
    return 0;
  });
}

export async function deleteCommand(args: { id: string; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    await client.deleteForEveryone(args.id as MessageId);
    out.result({ targetId: args.id }, 'Deleted for everyone.');
    return 0;
  });
}

export async function timerCommand(args: { phone: string; seconds: number; profile: string }, out: Printer): Promise<number> {
  return withClient(args.profile, async (client) => {
    const m = await client.setExpireTimer(args.phone, args.seconds);
    out.result({ id: m.id, to: args.phone, expireTimer: args.seconds }, `Disappearing messages: ${args.seconds === 0 ? 'off' : `${args.seconds} s`}.`);
    return 0;
  });
}
