/** Output of the terminal client: JSON lines or readable text on stdout, diagnostics on stderr. */
import { createInterface } from 'node:readline';
import { ClientError } from '../client/errors.js';
import { ProtocolError } from '../protocol/errors.js';

/** Where a command writes. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

/** Prints one result: the object as a JSON line with `--json`, else the text. */
export class Printer {
  constructor(
    readonly io: Io,
    readonly json: boolean,
  ) {}

  /** One result line. */
  result(object: Record<string, unknown>, text: string): void {
    this.io.stdout.write(`${this.json ? JSON.stringify(object) : text}\n`);
  }

  /** A note for people (stderr, so that stdout stays machine-readable). */
  note(text: string): void {
    if (!this.json) this.io.stderr.write(`${text}\n`);
  }
}

/** The exit status and stderr line for an error (never a stack trace for expected failures). */
export function describeError(err: unknown): { message: string; code: string | undefined } {
  if (err instanceof ClientError || err instanceof ProtocolError) return { message: err.message, code: err.code };
  if (err instanceof RangeError) return { message: err.message, code: undefined };
  return { message: err instanceof Error ? err.message : String(err), code: undefined };
}

/** Reads one line from stdin after writing `prompt` to stderr; throws a RangeError saying `missing` when stdin ends first. */
export async function ask(io: Io, prompt: string, missing: string): Promise<string> {
  io.stderr.write(prompt);
  const rl = createInterface({ input: io.stdin, terminal: false });
  try {
    for await (const line of rl) return line.trim();
    throw new RangeError(missing);
  } finally {
    rl.close();
  }
}
