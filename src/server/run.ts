/**
 * Runs the server as a process: `node --import tsx src/server/run.ts [flags]` (what `npm start` and the
 * crash tests spawn). Prints one JSON line `{"event":"listening","port":N,"url":...}` on stdout once
 * it accepts clients (after the server's own log lines, which go to stdout too), and shuts down cleanly
 * on SIGINT and SIGTERM.
 */
import { parseServerArgs, startServer } from './main.js';

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
  const stop = (): void => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

run().catch((err: unknown) => {
  process.stderr.write(`parley serve: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
