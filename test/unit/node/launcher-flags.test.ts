// The Node flags of the `parley` binary (its first line; bin/parley.js says why): parsed for the tests and
// benchmarks that start it, the same in `npm start` and `npm run bench:media`, and the binary runs as a program.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { launcherNodeFlags, PARLEY_BIN } from '../../../src/node/launcher-flags.ts';

const scripts = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('launcher flags', () => {
  it('are the V8 flags on the first line of bin/parley.js', () => {
    const flags = launcherNodeFlags();
    assert.ok(flags.includes('--initial-heap-size=64'), flags.join(' '));
    for (const f of flags) assert.match(f, /^--[a-z-]+(=\S+)?$/);
  });

  it('are passed by npm start and npm run bench:media', () => {
    for (const script of ['start', 'bench:media']) {
      const words = (scripts[script] ?? '').split(/\s+/);
      for (const f of launcherNodeFlags()) assert.ok(words.includes(f), `${script}: ${scripts[script]} lacks ${f}`);
    }
  });

  it('let the binary run as a program through its first line', async () => {
    const { stdout } = await promisify(execFile)(PARLEY_BIN, ['--help'], { timeout: 60_000 });
    assert.match(stdout, /parley/i);
  });
});
