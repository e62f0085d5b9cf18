/**
 * `parley serve [--port N] [--data DIR] [--test-numbers LIST] ...`: runs the server in this process (the
 * flags and PARLEY_* variables are the server's own, parsed by `parseServerArgs`; `--help` lists them).
 * Prints one JSON line `{"event":"ready","port":N,"url":...}` once it accepts clients, and stops cleanly on
 * SIGINT and SIGTERM.
 */
import { parseServerArgs, startServer } from '../../server/main.js';
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
  const server = await startServer(parsed.options);
  io.stdout.write(`${JSON.stringify({ event: 'ready', port: server.port, url: server.url })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
