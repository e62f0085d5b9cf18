// `npm run test:unit`: node --test over test/unit/**/*.test.ts, test/interop/*.test.ts and
// test/integration/*.test.ts with the spec reporter. Node 20's --test does not expand globs, and a shell
// glob breaks when test/interop is empty, so the files are listed here. Arguments, if any, replace the
// list: `npm run test:unit -- <files>`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** `*.test.ts` files under `dir` (relative to the repo), sorted; recursive or not. */
function testFiles(dir: string, recursive: boolean): string[] {
  const abs = path.join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive })
    .map(String)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => `${dir}/${f.split(path.sep).join('/')}`)
    .sort();
}

const args = process.argv.slice(2);
const files = args.length > 0 ? args : [...testFiles('test/unit', true), ...testFiles('test/interop', false), ...testFiles('test/integration', false)];
if (files.length === 0) {
  console.error('run-node-tests: no test files found');
  process.exit(1);
}

// A generous limit per test, so that a hung test fails the run instead of stalling CI.
const TEST_TIMEOUT_MS = 600_000;
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
