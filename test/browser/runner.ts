// The test engine behind the browser's `node:test` (see ./node-test.ts). A test file registers its suites,
// tests and hooks while it is imported (describe bodies run at once, as in Node); the page then runs the
// file's tree: `before` hooks, children in order, `after` hooks; every test runs inside the `beforeEach`
// hooks of all enclosing suites (outermost first) and the `afterEach` hooks (innermost first).
// Tests in a file and files themselves run one after another.
import type { HarnessEvent, SerializedError, TestStatus } from './events.ts';

export interface TestOptions {
  /** Milliseconds before the test (or hook) fails as timed out; inherited from the enclosing suites. */
  timeout?: number;
  skip?: boolean | string;
  todo?: boolean | string;
  only?: boolean;
  concurrency?: number | boolean;
}

export type DoneCallback = (err?: unknown) => void;
export type TestFn = (t: TestContext, done: DoneCallback) => unknown;
export type SuiteFn = (s: { name: string; signal: AbortSignal }) => unknown;
export type HookFn = (t: { name: string; signal: AbortSignal }, done: DoneCallback) => unknown;

interface Hook {
  fn: HookFn;
  timeout: number | undefined;
}

class Suite {
  readonly children: Array<Suite | TestCase> = [];
  readonly hooks: Record<'before' | 'after' | 'beforeEach' | 'afterEach', Hook[]> = { before: [], after: [], beforeEach: [], afterEach: [] };
  /** The promise of an async describe body, awaited before the suite runs. */
  body: Promise<unknown> | undefined;

  constructor(
    readonly name: string,
    readonly parent: Suite | undefined,
    readonly options: TestOptions,
  ) {}

  /** Names from the file's root suite (excluded) down to this suite. */
  get path(): string[] {
    return this.parent ? [...this.parent.path, this.name] : [];
  }

  get timeout(): number | undefined {
    return this.options.timeout ?? this.parent?.timeout;
  }

  get skipped(): boolean {
    return Boolean(this.options.skip) || Boolean(this.parent?.skipped);
  }

  get todo(): boolean {
    return Boolean(this.options.todo) || Boolean(this.parent?.todo);
  }
}

class TestCase {
  constructor(
    readonly name: string,
    readonly fn: TestFn | undefined,
    readonly options: TestOptions,
    readonly parent: Suite,
  ) {}
}

/** The context a test function receives (the parts of Node's TestContext this harness supports). */
export class TestContext {
  readonly #path: string[];
  readonly #controller: AbortController;
  readonly #subtests: Array<Promise<TestStatus>> = [];

  constructor(
    readonly name: string,
    path: string[],
    controller: AbortController,
  ) {
    this.#path = path;
    this.#controller = controller;
  }

  /** Aborted when the test times out. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get fullName(): string {
    return this.#path.join(' > ');
  }

  /** Prints `message` under the test. */
  diagnostic(message: string): void {
    void emit({ type: 'diagnostic', file: state.file, path: this.#path, message });
  }

  /** Runs a subtest now; it counts as a test, and its failure fails this test too. */
  test(...args: unknown[]): Promise<void> {
    const { name, options, fn } = parseArgs(args);
    const suite = state.root ?? fail('t.test() called outside a test file');
    const sub = runTest(new TestCase(name, fn as TestFn | undefined, options, suite), [], [...this.#path, name]);
    this.#subtests.push(sub);
    return sub.then(() => undefined);
  }

  /** Resolves with the number of failed subtests once all have settled. */
  async settleSubtests(): Promise<number> {
    const statuses = await Promise.all(this.#subtests);
    return statuses.filter((s) => s === 'fail').length;
  }
}

// ---- registration

const state: {
  /** The suite that describe/it/hooks register into while a file or describe body is being evaluated. */
  collecting: Suite | undefined;
  root: Suite | undefined;
  file: string;
  defaultTimeout: number;
  reporter: (event: HarnessEvent) => Promise<void>;
  /** Errors raised outside the awaited chain (uncaught errors, unhandled rejections) while a test runs. */
  asyncErrors: unknown[] | undefined;
  lastTest: string;
} = {
  collecting: undefined,
  root: undefined,
  file: '',
  defaultTimeout: 120_000,
  reporter: async (event) => console.log(JSON.stringify(event)),
  asyncErrors: undefined,
  lastTest: '',
};

function fail(message: string): never {
  throw new Error(message);
}

function current(): Suite {
  return state.collecting ?? state.root ?? fail('node:test function called before a test file was loaded');
}

/** Node's flexible signature: `(name?, options?, fn?)` in that order, each optional. */
export function parseArgs(args: unknown[]): { name: string; options: TestOptions; fn: ((...a: never[]) => unknown) | undefined } {
  let name: string | undefined;
  let options: TestOptions = {};
  let fn: ((...a: never[]) => unknown) | undefined;
  for (const arg of args) {
    if (typeof arg === 'string') name = arg;
    else if (typeof arg === 'function') fn = arg as (...a: never[]) => unknown;
    else if (arg !== null && typeof arg === 'object') options = arg;
  }
  return { name: name ?? (fn?.name || '<anonymous>'), options, fn };
}

export function registerSuite(args: unknown[], extra: TestOptions = {}): Promise<void> {
  const { name, options, fn } = parseArgs(args);
  const parent = current();
  const suite = new Suite(name, parent, { ...options, ...extra });
  parent.children.push(suite);
  if (fn) {
    const previous = state.collecting;
    state.collecting = suite;
    try {
      const result = (fn as SuiteFn)({ name, signal: new AbortController().signal });
      if (result instanceof Promise) suite.body = result;
    } catch (err) {
      // A describe body that throws fails its suite, as in Node.
      suite.body = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      suite.body.catch(() => undefined);
    } finally {
      state.collecting = previous;
    }
  }
  return Promise.resolve();
}

export function registerTest(args: unknown[], extra: TestOptions = {}): Promise<void> {
  const { name, options, fn } = parseArgs(args);
  const parent = current();
  parent.children.push(new TestCase(name, fn as TestFn | undefined, { ...options, ...extra }, parent));
  return Promise.resolve();
}

export function registerHook(kind: keyof Suite['hooks'], fn: HookFn, options: { timeout?: number } = {}): void {
  current().hooks[kind].push({ fn, timeout: options.timeout });
}

// ---- running

/** Starts collecting a new test file: what it registers while being imported goes into a fresh root suite. */
export function beginFile(file: string): void {
  state.file = file;
  state.root = new Suite(file, undefined, {});
  state.collecting = undefined;
}

export function configure(options: { defaultTimeout?: number; reporter?: (event: HarnessEvent) => Promise<void> }): void {
  if (options.defaultTimeout !== undefined) state.defaultTimeout = options.defaultTimeout;
  if (options.reporter) state.reporter = options.reporter;
}

/** Runs the tree of the file begun last. */
export async function runFile(): Promise<void> {
  const root = state.root ?? fail('runFile() before beginFile()');
  await runSuite(root, []);
}

/** An error raised outside any awaited chain; it fails the running test, or is reported on its own. */
export function reportAsyncError(err: unknown): void {
  if (state.asyncErrors) {
    state.asyncErrors.push(err);
    return;
  }
  const label = state.lastTest ? `(uncaught error after "${state.lastTest}")` : '(uncaught error)';
  void emit({ type: 'test', file: state.file, path: [label], status: 'fail', durationMs: 0, error: serializeError(err) });
}

function emit(event: HarnessEvent): Promise<void> {
  return state.reporter(event);
}

async function runSuite(suite: Suite, chain: Suite[]): Promise<void> {
  const path = suite.path;
  // The file's root suite is not reported, but its hooks (top-level beforeEach...) apply to every test.
  if (suite.parent !== undefined) await emit({ type: 'suite', file: state.file, path });
  const inner = [...chain, suite];
  const ctx = { name: suite.name, signal: new AbortController().signal };

  let setupError: unknown;
  let setupReason = '';
  try {
    if (suite.body) await suite.body;
  } catch (err) {
    setupError = err;
    setupReason = 'describe body failed';
  }
  if (setupError === undefined && !suite.skipped) {
    for (const hook of suite.hooks.before) {
      try {
        await invoke(hook.fn, ctx as TestContext, hook.timeout ?? suite.timeout ?? state.defaultTimeout, new AbortController());
      } catch (err) {
        setupError = err;
        setupReason = 'before hook failed';
        break;
      }
    }
  }

  // Index loop: a test may register more tests while the suite runs.
  for (let i = 0; i < suite.children.length; i++) {
    const child = suite.children[i] as Suite | TestCase;
    if (setupError !== undefined) {
      await failSubtree(child, setupError, setupReason);
    } else if (child instanceof Suite) {
      await runSuite(child, inner);
    } else {
      await runTest(child, inner, [...path, child.name]);
    }
  }

  if (!suite.skipped) {
    for (const hook of suite.hooks.after) {
      try {
        await invoke(hook.fn, ctx as TestContext, hook.timeout ?? suite.timeout ?? state.defaultTimeout, new AbortController());
      } catch (err) {
        await emit({ type: 'test', file: state.file, path: [...path, '(after hook)'], status: 'fail', durationMs: 0, error: serializeError(err) });
      }
    }
  }
  if (setupError !== undefined && suite.children.length === 0) {
    await emit({ type: 'test', file: state.file, path: [...path, '(suite setup)'], status: 'fail', durationMs: 0, error: serializeError(setupError) });
  }
}

async function failSubtree(node: Suite | TestCase, error: unknown, reason: string): Promise<void> {
  if (node instanceof Suite) {
    await emit({ type: 'suite', file: state.file, path: node.path });
    for (const child of node.children) await failSubtree(child, error, reason);
    return;
  }
  await emit({ type: 'test', file: state.file, path: [...node.parent.path, node.name], status: 'fail', durationMs: 0, error: serializeError(error), reason });
}

async function runTest(test: TestCase, chain: Suite[], path: string[]): Promise<TestStatus> {
  const todo = Boolean(test.options.todo) || test.parent.todo;
  if (test.options.skip || test.parent.skipped || (!test.fn && !todo)) {
    const reason = typeof test.options.skip === 'string' ? test.options.skip : undefined;
    await emit({ type: 'test', file: state.file, path, status: 'skip', durationMs: 0, ...(reason ? { reason } : {}) });
    return 'skip';
  }
  await emit({ type: 'test:start', file: state.file, path });
  const timeout = test.options.timeout ?? test.parent.timeout ?? state.defaultTimeout;
  const controller = new AbortController();
  const ctx = new TestContext(test.name, path, controller);
  const started = performance.now();
  const outerErrors = state.asyncErrors;
  const asyncErrors: unknown[] = [];
  state.asyncErrors = asyncErrors;
  let error: unknown;
  let failed = false;
  try {
    for (const suite of chain) for (const hook of suite.hooks.beforeEach) await invoke(hook.fn, ctx, hook.timeout ?? timeout, controller);
    if (test.fn) await invoke(test.fn, ctx, timeout, controller);
    const failedSubtests = await ctx.settleSubtests();
    if (failedSubtests > 0) throw new Error(`${failedSubtests} subtest${failedSubtests === 1 ? '' : 's'} failed`);
  } catch (err) {
    error = err;
    failed = true;
  }
  for (const suite of [...chain].reverse()) {
    for (const hook of suite.hooks.afterEach) {
      try {
        await invoke(hook.fn, ctx, hook.timeout ?? timeout, controller);
      } catch (err) {
        if (!failed) {
          error = err;
          failed = true;
        }
      }
    }
  }
  // Let a rejection that was never handled surface before the verdict.
  await new Promise((resolve) => setTimeout(resolve, 0));
  state.asyncErrors = outerErrors;
  if (!failed && asyncErrors.length > 0) {
    error = asyncErrors[0];
    failed = true;
  }
  state.lastTest = path.join(' > ');
  const status: TestStatus = todo ? 'todo' : failed ? 'fail' : 'pass';
  await emit({
    type: 'test',
    file: state.file,
    path,
    status,
    durationMs: performance.now() - started,
    ...(failed ? { error: serializeError(error) } : {}),
    ...(todo && typeof test.options.todo === 'string' ? { reason: test.options.todo } : {}),
  });
  return status;
}

/** Calls a test or hook function (promise- or callback-style) and fails it after `timeoutMs`. */
function invoke(fn: TestFn, ctx: TestContext, timeoutMs: number, controller: AbortController): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown, failed = err !== undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (failed) reject(err instanceof Error ? err : new Error(`rejected with ${String(err)}`, { cause: err }));
      else resolve();
    };
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => {
          controller.abort();
          settle(new Error(`timed out after ${timeoutMs} ms`));
        }, timeoutMs)
      : undefined;
    try {
      if (fn.length >= 2) {
        // Callback style: the test ends when done(err?) is called.
        fn(ctx, (err?: unknown) => settle(err, Boolean(err)));
      } else {
        Promise.resolve(fn(ctx, () => undefined)).then(
          () => settle(),
          (err: unknown) => settle(err, true),
        );
      }
    } catch (err) {
      settle(err, true);
    }
  });
}

/** Turns anything thrown into a plain object that survives the trip to Node. */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (err instanceof Error) {
    const out: SerializedError = { name: err.name, message: err.message };
    if (err.stack) out.stack = err.stack;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1);
    return out;
  }
  let text: string;
  try {
    text = typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    text = String(err);
  }
  return { name: 'non-Error thrown', message: text };
}
