/**
 * `parley serve [--port N] [--data DIR] [--test-numbers LIST] ...`: runs the server in this process (the
 * flags and PARLEY_* variables are the server's own, parsed by `parseServerArgs`; `--help` lists them).
 * Prints one JSON line `{"event":"ready","port":N,"url":...}` once it accepts clients, and stops gracefully on
 * SIGINT and SIGTERM (see `closeOnSignal`). A backend that cannot be opened exits 1 with a message naming
 * its flag; a bad flag exits 2.
 */
import { closeOnSignal, parseServerArgs, startServer } from '../../server/main.js';
import type { Io } from '../io.js';

export async function serveCommand(argv: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseServerArgs(argv, process.env);
  } catch (err) {
    io.stderr.write(`parley serve: ${(err as Error).message}\nTry parley serve --help.\n`);
    return 2;
  }
  if (parsed.kind === 'help') {
    io.stdout.write(parsed.text);
    return 0;
  }
  let server;
  try {
    server = await startServer(parsed.options);
  } catch (err) {
    // A backend that cannot be opened (the message names the flag), or the port is taken.
    io.stderr.write(`parley serve: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  io.stdout.write(`${JSON.stringify({ event: 'ready', port: server.port, url: server.url })}\n`);
  const status = await closeOnSignal(server, io.stderr);
  // A shutdown that failed or was cut short leaves handles open: leave now (what was acknowledged is durable).
  if (status !== 0) process.exit(status);
  return 0;
}
