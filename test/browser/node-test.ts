// The browser stand-in for `node:test` (the harness aliases the module to this file). Supported:
//   describe / suite, it / test (also as the default export), before, after, beforeEach, afterEach;
//   `.skip` / `.todo` / `.only` on describe, it and test ({ skip } / { todo } options too; `only` runs
//   like a normal test); nesting; async functions and callback-style `(t, done)`; the `{ timeout }`
//   option (inherited by nested tests; default 120 s); `t.name`, `t.fullName`, `t.signal`,
//   `t.diagnostic()` and `t.test()` subtests.
// Not supported: `mock`, `snapshot`, `run`, `t.skip()` / `t.todo()` / `t.plan()`, concurrency (tests run
// one at a time). A test file that imports one of them fails to bundle, naming the missing export.
import { registerHook, registerSuite, registerTest, type HookFn, type TestOptions } from './runner.ts';

export type { TestContext } from './runner.ts';

type Registrar = ((...args: unknown[]) => Promise<void>) & {
  skip: (...args: unknown[]) => Promise<void>;
  todo: (...args: unknown[]) => Promise<void>;
  only: (...args: unknown[]) => Promise<void>;
};

const flagged = (flag: 'skip' | 'todo'): TestOptions => ({ [flag]: true });

function registrar(register: (args: unknown[], extra?: TestOptions) => Promise<void>): Registrar {
  return Object.assign((...args: unknown[]) => register(args), {
    skip: (...args: unknown[]) => register(args, flagged('skip')),
    todo: (...args: unknown[]) => register(args, flagged('todo')),
    only: (...args: unknown[]) => register(args),
  });
}

export const describe: Registrar = registrar(registerSuite);
export const suite: Registrar = describe;
export const it: Registrar = registrar(registerTest);

export function before(fn: HookFn, options?: { timeout?: number }): void {
  registerHook('before', fn, options);
}
export function after(fn: HookFn, options?: { timeout?: number }): void {
  registerHook('after', fn, options);
}
export function beforeEach(fn: HookFn, options?: { timeout?: number }): void {
  registerHook('beforeEach', fn, options);
}
export function afterEach(fn: HookFn, options?: { timeout?: number }): void {
  registerHook('afterEach', fn, options);
}

type TestApi = Registrar & {
  test: TestApi;
  it: Registrar;
  describe: Registrar;
  suite: Registrar;
  before: typeof before;
  after: typeof after;
  beforeEach: typeof beforeEach;
  afterEach: typeof afterEach;
};

/** `test` is `it`; as in Node, the default export is `test` carrying the other functions. */
export const test: TestApi = Object.assign(registrar(registerTest), { it, describe, suite, before, after, beforeEach, afterEach }) as TestApi;
test.test = test;

export default test;
