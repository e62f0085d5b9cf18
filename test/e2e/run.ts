// `npm run test:e2e`: the browser end-to-end tests (test/e2e/*.test.ts) against a real `parley serve` and the
// production build of the web app, in Debian's headless Chromium through playwright-core.
//
// 1. Builds the web app (`vite build`, dist/web) when it is missing or older than any source it is built from
//    (src/web, src/client, src/protocol, the Vite config).
// 2. Runs the test files with node --test, one file at a time (each starts its own server and browser).
//    Screenshots go to .tmp/e2e-artifacts/.
//
// Usage: node --import tsx test/e2e/run.ts [test files...]   (default: every test/e2e/*.test.ts)
// Environment: PARLEY_CHROMIUM (default /usr/bin/chromium), PARLEY_E2E_TIMEOUT_MS (one test, default 300000).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const BUILT = path.join(root, 'dist/web/index.html');
const SOURCES = ['src/web', 'src/client', 'src/protocol', 'package-lock.json'];
const TEST_TIMEOUT_MS = Number(process.env.PARLEY_E2E_TIMEOUT_MS ?? 300_000);

/** The newest modification time under `p` (a file or a folder, recursively). */
function newest(p: string): number {
  const abs = path.join(root, p);
  if (!existsSync(abs)) return 0;
  const s = statSync(abs);
  if (!s.isDirectory()) return s.mtimeMs;
  let max = s.mtimeMs;
  for (const name of readdirSync(abs, { recursive: true })) {
    const f = path.join(abs, String(name));
    try {
      max = Math.max(max, statSync(f).mtimeMs);
    } catch {
      // removed meanwhile
    }
  }
  return max;
}

function buildIfStale(): void {
  const builtAt = existsSync(BUILT) ? statSync(BUILT).mtimeMs : 0;
  const sourcesAt = Math.max(...SOURCES.map(newest));
  if (builtAt > sourcesAt) {
    console.log('e2e: dist/web is up to date');
    return;
  }
  console.log(builtAt === 0 ? 'e2e: building the web app (dist/web is missing)' : 'e2e: rebuilding the web app (sources changed)');
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'src/web/vite.config.ts'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('e2e: the web build failed');
    process.exit(1);
  }
}

const args = process.argv.slice(2);
const files =
  args.length > 0
    ? args
    : readdirSync(path.join(root, 'test/e2e'))
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => `test/e2e/${f}`);
if (files.length === 0) {
  console.error('e2e: no test files');
  process.exit(1);
}
buildIfStale();
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
