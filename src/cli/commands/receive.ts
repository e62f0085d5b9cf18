/**
 * `parley receive [--timeout SECONDS] [--until-empty]`: connects, prints every event that arrives (messages,
 * receipts, typing, ...), acknowledges them (after they are stored), and exits after the timeout or, with
 * `--until-empty`, once the server has delivered everything queued. Delivery receipts and read receipts
 * queued meanwhile are sent before exiting.
 */
import { waitAtMost } from '../../client/async.js';
import type { MessageId } from '../../client/ids.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import { ConnectionReason, ConnectionState } from '../../client/transport/websocket.js';
import { humanLine, subscribeEvents } from '../events.js';
import { describeError, type Printer } from '../io.js';
import { openClient, openStore } from '../profile.js';

/** How long `--until-empty` waits at most when no `--timeout` is given, s. */
const UNTIL_EMPTY_LIMIT_S = 120;
/** The default `--timeout` without `--until-empty`, s (as signal-cli's). */
const DEFAULT_TIMEOUT_S = 5;

/**
 * How long `receive` waits at most, once done receiving, for what that started: receipts, retry requests,
 * and on a just-linked companion the download and import of its history bundle, ms.
 */
const FOLLOW_UP_LIMIT_MS = 60_000;

export async function receiveCommand(
  args: { timeout: number | undefined; untilEmpty: boolean; markRead: boolean; download: boolean; profile: string },
  out: Printer,
): Promise<number> {
  const store = openStore(args.profile);
  const client = await openClient(args.profile, store).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  let connected = false;
  try {
    const seconds = args.timeout ?? (args.untilEmpty ? UNTIL_EMPTY_LIMIT_S : DEFAULT_TIMEOUT_S);
    const stop = subscribeEvents(client, (line) => {
      out.result(line, humanLine(line));
      // View-once text is seen once printed; a view-once file only once `parley view` wrote it somewhere.
      if (line.type === 'text' && line.viewOnce === true && line.attachment === undefined) void client.markViewed(line.id as MessageId).catch(() => undefined);
    }, { downloadAttachments: args.download, io: out.io });
    let refused = false;
    let stopWaiting: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (stopWaiting = resolve));
    client.on('state', (s) => {
      if (s.state === ConnectionState.Closed && s.reason === ConnectionReason.Unauthorized) {
        refused = true;
        stopWaiting();
      }
      if (s.state !== ConnectionState.Connected) return;
      if (!connected) out.io.stderr.write('parley receive: connected\n');
      connected = true;
    });
    const empty = new Promise<void>((resolve) => client.on('queueEmpty', () => resolve()));
    // Background failures (a receipt that could not be sent yet, ...): codes only, never content.
    client.on('error', ({ context, error }) => {
      const { message, code } = describeError(error);
      out.io.stderr.write(`parley receive: ${context}: ${message}${code ? ` [${code}]` : ''}\n`);
    });
    await client.purgeExpired();
    client.connect();
    await waitAtMost(Promise.race([stopped, args.untilEmpty ? empty : new Promise<never>(() => undefined)]), seconds * 1000);
    if (refused) {
      throw new ClientError(ClientErrorCode.Unauthorized, 'the server refused this device\'s credentials: it was removed from its account (parley devices remove), or the number was registered again elsewhere; link or register a profile again');
    }
    if (args.markRead) {
      for (const c of await client.contacts()) await client.markRead(c.accountId);
      for (const g of await client.groups()) if (g.active) await client.markRead(g.id);
    }
    await waitAtMost(client.whenIdle(), FOLLOW_UP_LIMIT_MS);
    await stop();
    if (!connected) {
      out.note('Could not connect to the server.');
      return 1;
    }
    return 0;
  } finally {
    await client.close();
    await store.close();
  }
}
