// A sender for the crash test, run as a child process: opens a CLI profile with the SDK and sends COUNT
// numbered messages with up to WINDOW in flight, printing "ack <i>" once the server accepted message i
// (and "fail <i> <code>" if it gave up). It keeps retrying through a server crash and restart.
// Usage: node --import tsx test/support/cli-crash-sender.ts <profile> <to> <count> <window> [label]
import { openClient, openStore } from '../../src/cli/profile.ts';
import { ClientError } from '../../src/client/errors.ts';

const [profile, to, countText, windowText, label = 'crash-test'] = process.argv.slice(2);
const count = Number(countText);
const window = Number(windowText);

const store = openStore(profile as string);
const client = await openClient(profile as string, store, {
  maintainKeys: false,
  deliveryReceipts: false,
  send: { maxAttempts: 200, backoff: { baseMs: 50, maxMs: 400 }, requestTimeoutMs: 5_000 },
  transport: { backoff: { baseMs: 50, maxMs: 400 }, keepAliveMs: 0, requestTimeoutMs: 5_000 },
});
client.connect();

let next = 0;
let settled = 0;
const lines: string[] = [];
const flush = (): void => {
  if (lines.length > 0) process.stdout.write(lines.splice(0).join(''));
};
const flusher = setInterval(flush, 20);

await new Promise<void>((resolve) => {
  const pump = (): void => {
    while (next < count && next - settled < window) {
      const i = next++;
      client.sendText(to as string, `${label} message ${i}`).then(
        () => lines.push(`ack ${i}\n`),
        (err: unknown) => lines.push(`fail ${i} ${ClientError.is(err) ? err.code : String(err)}\n`),
      ).finally(() => {
        settled++;
        if (settled === count) resolve();
        else pump();
      });
    }
  };
  pump();
});
clearInterval(flusher);
flush();
await client.close();
await store.close();
process.stdout.write('done\n');
