// `npm run test:browser`: runs every test/unit/protocol/*.test.ts inside headless Chromium to prove the
// protocol core is isomorphic, and test/web/*.test.ts (the web app's browser-only parts: IndexedDB stores).
//
// 1. esbuild bundles the files for the browser, with `node:test` -> ./node-test.ts, `node:assert/strict`
//    -> ./assert.ts, `node:assert` -> ./assert-loose.ts and test/support/provider.ts -> ./provider.ts
//    (the WebCrypto provider). Any other Node built-in, or libsignal, is an error: such a test is not
//    isomorphic and belongs elsewhere (libsignal interop tests go to test/interop/).
// 2. A node:http server on 127.0.0.1 (a secure context, so WebCrypto works) serves the bundle from memory.
// 3. playwright-core drives Debian's Chromium; ./page.ts runs the files one by one and reports each
//    result through an exposed function. Stack frames are mapped back to the TypeScript sources.
// 4. The output ends like node --test's (ℹ tests/pass/fail ...) and then `browser: N passed, M failed`.
//    The exit code is 1 if a test failed, nothing ran, or the run took longer than its time limit.
//
// Usage: node --import tsx test/browser/run.ts [test files...]   (default: all of test/unit/protocol and test/web)
// Environment: PARLEY_CHROMIUM (default /usr/bin/chromium), PARLEY_BROWSER_TIMEOUT_MS (whole run,
// default 600000), PARLEY_BROWSER_TEST_TIMEOUT_MS (one test, default 120000).
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtinModules, SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, formatMessages, type Message, type OutputFile, type Plugin } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import type { HarnessEvent, SerializedError } from './events.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const here = path.join(root, 'test/browser');
const TEST_DIRS = ['test/unit/protocol', 'test/web'];
const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const RUN_TIMEOUT_MS = Number(process.env.PARLEY_BROWSER_TIMEOUT_MS ?? 600_000);
const TEST_TIMEOUT_MS = Number(process.env.PARLEY_BROWSER_TEST_TIMEOUT_MS ?? 120_000);
/** How long the page may take to report that it started (a broken bundle never does). */
const START_TIMEOUT_MS = 60_000;
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Where esbuild pretends to write (nothing is written); source paths in the maps are relative to it. */
const OUT_DIR = path.join(root, '.tmp/browser-bundle');

const rel = (p: string): string => path.relative(root, p).split(path.sep).join('/');

function testFiles(args: string[]): string[] {
  if (args.length > 0) return args.map((a) => rel(path.resolve(a)));
  return TEST_DIRS.flatMap((testDir) => {
    const dir = path.join(root, testDir);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => `${testDir}/${f}`);
  });
}

// ---- bundling

const NODE_BUILTINS = new Set(builtinModules);
// node:assert maps to the `assert` package (Node's assert module, ported to browsers), strict mode for
// node:assert/strict.
const SHIMS: Record<string, string> = {
  'node:test': 'node-test.ts',
  'node:assert/strict': 'assert-strict.ts',
  'assert/strict': 'assert-strict.ts',
};
const PACKAGES: Record<string, string> = { 'node:assert': 'assert' };
const SUPPORT_PROVIDER = path.join(root, 'test/support/provider');

/** Aliases node:test, node:assert and the test provider; refuses everything that cannot run in a browser. */
function harnessPlugin(files: string[]): Plugin {
  return {
    name: 'parley-browser-harness',
    setup(b) {
      b.onResolve({ filter: /^parley-browser-entry$/ }, () => ({ path: 'entry', namespace: 'parley-harness' }));
      b.onLoad({ filter: /.*/, namespace: 'parley-harness' }, () => ({
        resolveDir: root,
        loader: 'ts',
        contents: [
          `import { runAll } from ${JSON.stringify(path.join(here, 'page.ts'))};`,
          `void runAll([`,
          ...files.map((f) => `  [${JSON.stringify(f)}, () => import(${JSON.stringify(path.join(root, f))})],`),
          `]);`,
        ].join('\n'),
      }));
      b.onResolve({ filter: /^(node:)?[a-z_]/ }, (args) => {
        const shim = SHIMS[args.path];
        if (shim) return { path: path.join(here, shim) };
        const pkg = PACKAGES[args.path];
        if (pkg) return b.resolve(pkg, { kind: args.kind, resolveDir: here });
        // The assert package and its dependencies (util, ...) are npm packages named like Node built-ins.
        if (!args.path.startsWith('node:') && (args.importer.startsWith(here) || args.importer.includes('/node_modules/'))) return undefined;
        const bare = args.path.replace(/^node:/, '');
        if (args.path.startsWith('node:') || NODE_BUILTINS.has(bare)) {
          return { errors: [{ text: `"${args.path}" is a Node built-in: the tests here run in the browser (imported by ${rel(args.importer)})` }] };
        }
        return undefined;
      });
      b.onResolve({ filter: /^@signalapp\/libsignal-client/ }, (args) => ({
        errors: [{ text: `libsignal is Node-only: put tests that use it in test/interop/, not ${rel(args.importer)}` }],
      }));
      b.onResolve({ filter: /(^|\/)support\/provider(\.[jt]s)?$/ }, (args) => {
        const target = path.resolve(args.resolveDir, args.path).replace(/\.[jt]s$/, '');
        return target === SUPPORT_PROVIDER ? { path: path.join(here, 'provider.ts') } : undefined;
      });
    },
  };
}

async function bundle(files: string[]): Promise<OutputFile[]> {
  const result = await build({
    entryPoints: [{ in: 'parley-browser-entry', out: 'entry' }],
    absWorkingDir: root,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    outdir: OUT_DIR,
    write: false,
    sourcemap: 'linked',
    // Tests may look at class and function names (err.name, constructor.name); esbuild would rename some.
    keepNames: true,
    // The assert package (through util) reads process.env.NODE_DEBUG.
    define: { 'process.env.NODE_DEBUG': 'false', 'process.env': '{}' },
    logLevel: 'silent',
    plugins: [harnessPlugin(files)],
  });
  return result.outputFiles;
}

// ---- serving

const CONTENT_TYPES: Record<string, string> = { '.js': 'text/javascript', '.map': 'application/json' };
const PAGE = '<!doctype html><meta charset="utf-8"><title>Parley browser tests</title><script type="module" src="/entry.js"></script>\n';

function serve(outputs: OutputFile[]): Promise<Server> {
  const byUrl = new Map(outputs.map((o) => [`/${rel(o.path).replace(/^\.tmp\/browser-bundle\//, '')}`, o]));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers = { 'cache-control': 'no-store' };
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, headers).end();
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    const file = byUrl.get(url.pathname);
    if (!file) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': CONTENT_TYPES[path.extname(url.pathname)] ?? 'application/octet-stream' }).end(file.contents);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** Rewrites `http://127.0.0.1:PORT/chunk.js:L:C` frames to the TypeScript source positions. */
function stackMapper(outputs: OutputFile[]): (text: string) => string {
  const maps = new Map<string, SourceMap>();
  for (const o of outputs) {
    if (o.path.endsWith('.js.map')) maps.set(path.basename(o.path, '.map'), new SourceMap(JSON.parse(o.text) as ConstructorParameters<typeof SourceMap>[0]));
  }
  return (text) =>
    text.replace(/https?:\/\/127\.0\.0\.1:\d+\/((?:[\w.-]+\/)*[\w.-]+\.js):(\d+):(\d+)/g, (frame, file: string, line: string, column: string) => {
      const origin = maps.get(path.basename(file))?.findOrigin(Number(line), Number(column));
      if (!origin || !('fileName' in origin)) return frame;
      return `${rel(path.resolve(OUT_DIR, origin.fileName))}:${origin.lineNumber}:${origin.columnNumber}`;
    });
}

// ---- reporting

interface Tally {
  tests: number;
  suites: number;
  pass: number;
  fail: number;
  skipped: number;
  todo: number;
  failures: Array<{ title: string; error?: SerializedError; reason?: string }>;
}

class Reporter {
  readonly tally: Tally = { tests: 0, suites: 0, pass: 0, fail: 0, skipped: 0, todo: 0, failures: [] };
  /** The test that started last and has not ended, named if the run times out. */
  running: string | undefined;
  started = false;
  #printed: string[] = [];
  readonly #mapStack: (text: string) => string;

  constructor(mapStack: (text: string) => string) {
    this.#mapStack = mapStack;
  }

  /** Prints the file and suite headings down to `path` that are not on screen yet. */
  #headings(file: string, path: string[]): void {
    const wanted = [file, ...path];
    let same = 0;
    while (same < wanted.length && same < this.#printed.length && wanted[same] === this.#printed[same]) same++;
    for (let i = same; i < wanted.length; i++) console.log(`${'  '.repeat(i)}▶ ${wanted[i]}`);
    this.#printed = wanted;
  }

  /** Maps bundle positions in `text` back to the sources. */
  map(text: string): string {
    return this.#mapStack(text);
  }

  formatError(error: SerializedError, indent: string): string {
    const lines: string[] = [];
    let text = error.stack && error.stack.includes(error.message) ? error.stack : `${error.name}: ${error.message}${error.stack ? `\n${error.stack}` : ''}`;
    if (error.code) text += `\n  code: '${error.code}'`;
    // Frames of the harness itself (runner, page) say nothing about the failure.
    lines.push(...this.#mapStack(text).split('\n').filter((l) => !/^\s+at (.*test\/browser\/(runner|page)\.ts:|new Promise \(<anonymous>\))/.test(l)));
    if (error.cause) lines.push(`[cause]: ${this.formatError(error.cause, '').trimStart()}`);
    return lines.map((l) => `${indent}${l}`).join('\n');
  }

  handle(event: HarnessEvent): void {
    switch (event.type) {
      case 'start':
        this.started = true;
        console.log(`browser: ${event.files.length} test file(s) in Chromium`);
        break;
      case 'suite':
        this.tally.suites++;
        this.#headings(event.file, event.path);
        break;
      case 'test:start':
        this.running = [event.file, ...event.path].join(' > ');
        break;
      case 'diagnostic':
        this.#headings(event.file, event.path.slice(0, -1));
        console.log(`${'  '.repeat(event.path.length + 1)}ℹ ${event.message}`);
        break;
      case 'test': {
        this.running = undefined;
        this.#headings(event.file, event.path.slice(0, -1));
        const indent = '  '.repeat(event.path.length);
        const name = event.path.at(-1) ?? '';
        const ms = `(${event.durationMs.toFixed(3)}ms)`;
        this.tally.tests++;
        if (event.status === 'pass') {
          this.tally.pass++;
          console.log(`${indent}✔ ${name} ${ms}`);
        } else if (event.status === 'skip') {
          this.tally.skipped++;
          console.log(`${indent}﹣ ${name} ${ms} # SKIP${event.reason ? ` ${event.reason}` : ''}`);
        } else if (event.status === 'todo') {
          this.tally.todo++;
          console.log(`${indent}﹣ ${name} ${ms} # TODO${event.reason ? ` ${event.reason}` : ''}`);
        } else {
          this.tally.fail++;
          console.log(`${indent}✖ ${name} ${ms}${event.reason ? ` (${event.reason})` : ''}`);
          if (event.error) console.log(this.formatError(event.error, `${indent}  `));
          this.tally.failures.push({ title: [event.file, ...event.path].join(' > '), ...(event.error ? { error: event.error } : {}), ...(event.reason ? { reason: event.reason } : {}) });
        }
        break;
      }
      case 'done':
        break;
    }
  }

  /** A failure of the harness itself (bundle, browser, time limit), counted as a failed test. */
  harnessFailure(title: string, message: string): void {
    this.tally.tests++;
    this.tally.fail++;
    console.log(`✖ ${title}\n  ${message.split('\n').join('\n  ')}`);
    this.tally.failures.push({ title, error: { name: 'Error', message } });
  }

  summary(durationMs: number): void {
    const t = this.tally;
    if (t.failures.length > 0) {
      console.log('\n✖ failing tests:\n');
      for (const f of t.failures) {
        console.log(`test: ${f.title}${f.reason ? ` (${f.reason})` : ''}`);
        if (f.error) console.log(this.formatError(f.error, '  '));
        console.log('');
      }
    }
    console.log(`ℹ tests ${t.tests}`);
    console.log(`ℹ suites ${t.suites}`);
    console.log(`ℹ pass ${t.pass}`);
    console.log(`ℹ fail ${t.fail}`);
    console.log(`ℹ cancelled 0`);
    console.log(`ℹ skipped ${t.skipped}`);
    console.log(`ℹ todo ${t.todo}`);
    console.log(`ℹ duration_ms ${durationMs.toFixed(3)}`);
    console.log(`browser: ${t.pass} passed, ${t.fail} failed`);
  }
}

// ---- main

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main(): Promise<number> {
  const started = performance.now();
  const files = testFiles(process.argv.slice(2));
  let reporter = (latest = new Reporter((s) => s));
  let server: Server | undefined;
  let browser: Browser | undefined;
  try {
    if (files.length === 0) throw new Error(`no test files in ${TEST_DIRS.join(' or ')}`);

    let outputs: OutputFile[];
    try {
      outputs = await bundle(files);
    } catch (err) {
      const errors = (err as { errors?: Message[] }).errors;
      const text = errors ? (await formatMessages(errors, { kind: 'error', color: false })).join('') : String(err);
      reporter.harnessFailure('(bundling the test files for the browser)', text.trimEnd());
      return finish(reporter, started);
    }
    reporter = latest = new Reporter(stackMapper(outputs));
    server = await serve(outputs);
    const { port } = server.address() as AddressInfo;

    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set PARLEY_CHROMIUM)`);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, timeout: 60_000 });
    const page = await browser.newPage();
    const rep = reporter;
    let resolveDone!: () => void;
    let rejectDone!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    // It may be rejected (page error, crash) before it is awaited below; that is not an unhandled rejection.
    done.catch(() => undefined);
    await page.exposeFunction('__parleyReport', (event: HarnessEvent) => {
      rep.handle(event);
      if (event.type === 'done') resolveDone();
    });
    page.on('console', (msg) => console.log(`[browser ${msg.type()}] ${rep.map(msg.text())}`));
    page.on('pageerror', (err) => {
      console.log(`[browser pageerror] ${rep.map(err.stack ?? `${err.name}: ${err.message}`)}`);
      if (!rep.started) rejectDone(new Error(`the page failed before the tests started: ${err.message}`));
    });
    page.on('crash', () => rejectDone(new Error('the page crashed')));

    const query = `?testTimeout=${TEST_TIMEOUT_MS}`;
    await page.goto(`http://127.0.0.1:${port}/${query}`, { timeout: 60_000 });
    const startCheck = setTimeout(() => {
      if (!rep.started) rejectDone(new Error(`the page did not start the tests within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    try {
      const left = Math.max(1, RUN_TIMEOUT_MS - (performance.now() - started));
      await withTimeout(done, left, `the browser run took longer than its limit of ${RUN_TIMEOUT_MS / 1000} s (PARLEY_BROWSER_TIMEOUT_MS)`);
    } finally {
      clearTimeout(startCheck);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    reporter.harnessFailure('(browser harness)', reporter.running ? `${message}\nrunning: ${reporter.running}` : message);
  } finally {
    await withTimeout(browser?.close() ?? Promise.resolve(), 15_000, 'closing Chromium took longer than 15 s').catch((err: unknown) => console.log(String(err)));
    server?.close();
  }
  return finish(reporter, started);
}

function finish(reporter: Reporter, started: number): number {
  const { pass, fail } = reporter.tally;
  if (pass === 0 && fail === 0) console.log('\nbrowser: no tests ran');
  reporter.summary(performance.now() - started);
  return fail > 0 || pass === 0 ? 1 : 0;
}

let latest: Reporter | undefined;
// A last resort in case closing the browser itself hangs.
const hardStop = setTimeout(() => {
  console.log(`\nbrowser: gave up after ${Math.round((RUN_TIMEOUT_MS + 30_000) / 1000)} s`);
  console.log(`browser: ${latest?.tally.pass ?? 0} passed, ${(latest?.tally.fail ?? 0) + 1} failed`);
  process.exit(1);
}, RUN_TIMEOUT_MS + 30_000);
hardStop.unref();

process.exitCode = await main();
