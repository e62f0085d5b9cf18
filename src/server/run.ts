/**
 * Runs the server as a process: `node --import tsx src/server/run.ts [flags]` (what `npm start` and the
 * crash tests spawn). Prints one JSON line `{"event":"listening","port":N,"url":...}` on stdout once
 * it accepts clients (after the server's own log lines, which go to stdout too), and shuts down cleanly
 * on SIGINT and SIGTERM: it stops accepting, tells its clients to reconnect (to another node of a cluster)
 * and waits for what it acknowledged to be durable, then exits 0. A second signal, or a shutdown that takes
 * longer than 30 s, exits 1 at once (nothing acknowledged is lost either way: an
 * acknowledgement follows the commit).
 */
import { closeOnSignal, parseServerArgs, startServer } from './main.js';

async function run(): Promise<void> {
  let parsed;
  try {
    parsed = parseServerArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`parley serve: ${(err as Error).message}\nTry --help.\n`);
    process.exitCode = 2;
    return;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return;
  }
  const server = await startServer(parsed.options);
  process.stdout.write(`${JSON.stringify({ event: 'ready', port: server.port, url: server.url })}\n`);
  process.exit(await closeOnSignal(server));
}

run().catch((err: unknown) => {
  process.stderr.write(`parley serve: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
