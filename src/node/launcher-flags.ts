/**
 * The Node flags the `parley` binary runs with: those on its `#!/usr/bin/env -S node ...` line (bin/parley.js
 * says why). Tests and benchmarks that start the CLI or a server child process pass the same flags, so that
 * they measure what a user's `parley` does; `npm start` has them too (checked by a unit test).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PARLEY_BIN = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));

/** The flags after `node` on the binary's first line. */
export function launcherNodeFlags(): string[] {
  const first = readFileSync(PARLEY_BIN, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\/usr\/bin\/env(?: -S)? node((?: --[a-z-]+(?:=\S+)?)*)\s*$/.exec(first);
  if (match === null) throw new Error(`bin/parley.js: unexpected first line ${JSON.stringify(first)}`);
  return (match[1] ?? '').trim().split(/\s+/).filter((f) => f !== '');
}
