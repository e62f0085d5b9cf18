/**
 * Structured logging (pino). Log lines never carry phone numbers, keys, codes, passwords or message
 * bytes: handlers log route patterns (never raw paths, which can hold a number) and ids. The one
 * exception is the `log` verification sender, which writes a code next to a masked number. The redact
 * list below is a second line of defence for field names that must never be printed.
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Field names whose values are replaced wherever they appear (one level deep). */
const REDACT = ['number', 'password', 'authorization', 'content', 'identityKey', 'body', '*.number', '*.password', '*.authorization', '*.content'];

/** A logger at `level` writing JSON lines to `destination` (stdout by default). */
export function createLogger(level: Level, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'parley-server' },
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
