// S3 for tests: Ceph's radosgw in a network namespace of its own (scripts/ceph-s3.sh). A test file that
// needs S3 runs its inner suite through `runWithCeph`; the inner suite reads where S3 is from the
// environment the script sets (`s3FromEnv`). Without the Ceph packages the test says so and skips,
// except in CI (CI=true), where that is a failure.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const CEPH_SCRIPT = path.join(root, 'scripts', 'ceph-s3.sh');

/** Why Ceph cannot run here (a missing tool, not root), or undefined when it can. */
export function cephUnavailableReason(): string | undefined {
  for (const tool of ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'unshare', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return `${tool} is not installed (apt-get install -y radosgw ceph-mon ceph-osd)`;
  }
  if (process.getuid?.() !== 0) return 'a network namespace for Ceph needs root';
  return undefined;
}

/** What an inner run printed, and how it ended. */
export interface CephRun {
  /** Exit status: 0 passed, 3 Ceph would not start. */
  readonly status: number;
  /** Its output (stdout and stderr, interleaved; the last 256 KiB). */
  readonly output: string;
}

/**
 * Runs `node --import tsx --test <files>` inside scripts/ceph-s3.sh (a fresh namespace with Ceph). Its
 * output is collected (and copied to this process's stderr as it comes); killed after `timeoutMs`.
 */
export function runWithCeph(files: readonly string[], timeoutMs: number): Promise<CephRun> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    // Set by an outer `node --test` for its own test files: the inner runner must not act as one of them.
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(CEPH_SCRIPT, ['run', process.execPath, '--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${timeoutMs}`, ...files], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let output = '';
    const collect = (data: Buffer): void => {
      process.stderr.write(data);
      output = (output + data.toString('utf8')).slice(-256 * 1024);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? (signal === null ? 1 : 128), output });
    });
  });
}

/** Inside the namespace: the S3 URL (with keys) and the Ceph folder the script set. */
export function s3FromEnv(): { url: string; cephDir: string } {
  const url = process.env.PARLEY_S3_URL;
  const cephDir = process.env.PARLEY_CEPH_DIR;
  if (url === undefined || cephDir === undefined) throw new Error('run this suite through scripts/ceph-s3.sh run (PARLEY_S3_URL is not set)');
  return { url, cephDir };
}

/** `url` with its bucket replaced (a fresh bucket per suite) and, optionally, another endpoint. */
export function withBucket(url: string, bucket: string, endpoint?: string): string {
  const parsed = new URL(url);
  const out = new URL(`s3://${bucket}${parsed.pathname}${parsed.search}`);
  if (endpoint !== undefined) out.searchParams.set('endpoint', endpoint);
  return out.toString();
}
