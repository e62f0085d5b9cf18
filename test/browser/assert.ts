// The browser stand-in for `node:assert/strict` (the harness aliases the module to this file). It follows
// Node's semantics for the functions below; anything else a test calls is missing here and fails the
// bundle or the test loudly, which is the cue to add it.
//
//   ok, equal, notEqual, strictEqual, notStrictEqual, deepEqual, notDeepEqual, deepStrictEqual,
//   notDeepStrictEqual, throws, doesNotThrow, rejects, doesNotReject, match, doesNotMatch, fail, ifError,
//   AssertionError, and the default export `assert(value, message)`.
//
// Error matchers of throws/rejects/doesNotThrow/doesNotReject: an Error class (instanceof), a RegExp
// (tested against String(error)), a validation function (must return true), or an object / Error
// instance whose properties must deep-equal the error's (a RegExp value is tested against a string).

type Matcher = RegExp | ((err: unknown) => boolean) | (new (...args: never[]) => unknown) | object;
type Message = string | Error | undefined;

export class AssertionError extends Error {
  override name = 'AssertionError';
  readonly code = 'ERR_ASSERTION';
  readonly actual: unknown;
  readonly expected: unknown;
  readonly operator: string;
  readonly generatedMessage: boolean;

  constructor(options: { message?: string; actual?: unknown; expected?: unknown; operator?: string; stackStartFn?: unknown }) {
    super(options.message ?? 'Failed');
    this.actual = options.actual;
    this.expected = options.expected;
    this.operator = options.operator ?? 'fail';
    this.generatedMessage = options.message === undefined;
    const capture = (Error as { captureStackTrace?: (target: object, fn?: unknown) => void }).captureStackTrace;
    if (typeof capture === 'function' && typeof options.stackStartFn === 'function') capture(this, options.stackStartFn);
  }
}

function raise(
  message: Message,
  generated: string,
  details: { actual?: unknown; expected?: unknown; operator: string },
  stackStartFn: unknown,
): never {
  if (message instanceof Error) throw message;
  const error = new AssertionError({ message: message ?? generated, ...details, stackStartFn });
  (error as { generatedMessage: boolean }).generatedMessage = message === undefined;
  throw error;
}

// ---- inspect: a small util.inspect for assertion messages

const MAX_ITEMS = 64;

/** A readable, bounded rendering of a value (Node's util.inspect, simplified). */
export function inspect(value: unknown, depth = 3, seen: object[] = []): string {
  switch (typeof value) {
    case 'string':
      return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
    case 'bigint':
      return `${value}n`;
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'symbol':
      return value.toString();
    case 'function':
      return `[${/^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'Function'}: ${value.name || '(anonymous)'}]`;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (seen.includes(obj)) return '[Circular]';
  const next = (v: unknown): string => inspect(v, depth - 1, [...seen, obj]);
  const list = (items: string[], total: number): string => {
    const more = total > items.length ? [`... ${total - items.length} more item${total - items.length === 1 ? '' : 's'}`] : [];
    const all = [...items, ...more];
    return all.length === 0 ? '' : ` ${all.join(', ')} `;
  };
  if (obj instanceof Error) return obj.stack?.split('\n')[0] ?? `${obj.name}: ${obj.message}`;
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
  if (obj instanceof RegExp) return obj.toString();
  if (ArrayBuffer.isView(obj) && !(obj instanceof DataView)) {
    const arr = obj as unknown as ArrayLike<number | bigint>;
    const items = Array.from({ length: Math.min(arr.length, MAX_ITEMS) }, (_, i) => inspect(arr[i]));
    return `${obj.constructor.name}(${arr.length}) [${list(items, arr.length)}]`;
  }
  if (obj instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${obj.byteLength} }`;
  if (depth < 0) return Array.isArray(obj) ? '[Array]' : `[${obj.constructor?.name ?? 'Object'}]`;
  if (Array.isArray(obj)) {
    const arr = obj as unknown[];
    return `[${list(arr.slice(0, MAX_ITEMS).map(next), arr.length)}]`;
  }
  if (obj instanceof Map) {
    const items = [...obj].slice(0, MAX_ITEMS).map(([k, v]) => `${next(k)} => ${next(v)}`);
    return `Map(${obj.size}) {${list(items, obj.size)}}`;
  }
  if (obj instanceof Set) {
    return `Set(${obj.size}) {${list([...obj].slice(0, MAX_ITEMS).map(next), obj.size)}}`;
  }
  const proto = Object.getPrototypeOf(obj) as { constructor?: { name?: string } } | null;
  const prefix = proto === null ? '[Object: null prototype] ' : proto === Object.prototype ? '' : `${proto.constructor?.name ?? ''} `;
  const keys = Object.keys(obj);
  const items = keys.slice(0, MAX_ITEMS).map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : inspect(k)}: ${next((obj as Record<string, unknown>)[k])}`);
  return `${prefix}{${list(items, keys.length)}}`;
}

// ---- deep equality (Node's isDeepStrictEqual / legacy isDeepEqual)

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

function ownKeys(obj: object, strict: boolean): PropertyKey[] {
  const keys: PropertyKey[] = Object.keys(obj);
  if (strict) {
    for (const s of Object.getOwnPropertySymbols(obj)) if (Object.prototype.propertyIsEnumerable.call(obj, s)) keys.push(s);
  }
  return keys;
}

/** Deep equality with Node's strict (`deepStrictEqual`) or legacy (`deepEqual` of `node:assert`) rules. */
export function isDeepEqual(a: unknown, b: unknown, strict = true, memo = new Map<object, object>()): boolean {
  if (!isObject(a) || !isObject(b)) {
    if (strict) return Object.is(a, b);
    if (isObject(a) || isObject(b)) return false;
    return a == b || (Number.isNaN(a) && Number.isNaN(b));
  }
  if (a === b) return true;
  if (memo.get(a) === b) return true;
  memo.set(a, b);
  if (strict && Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const tag = Object.prototype.toString.call(a);
  if (tag !== Object.prototype.toString.call(b)) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;

  if (a instanceof Date && b instanceof Date) {
    if (a.getTime() !== b.getTime()) return false;
  } else if (a instanceof RegExp && b instanceof RegExp) {
    if (a.source !== b.source || a.flags !== b.flags || a.lastIndex !== b.lastIndex) return false;
  } else if (a instanceof Error && b instanceof Error) {
    if (a.message !== b.message || a.name !== b.name) return false;
  } else if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    if (a.byteLength !== b.byteLength) return false;
    if (a instanceof DataView || b instanceof DataView) {
      if (!bytesEqual(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength))) return false;
    } else {
      const x = a as unknown as ArrayLike<unknown>;
      const y = b as unknown as ArrayLike<unknown>;
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) {
        if (strict ? !Object.is(x[i], y[i]) : x[i] !== y[i]) return false;
      }
      // Indexed elements are compared; only extra non-index properties remain.
      return sameKeys(a, b, strict, memo, (k) => typeof k !== 'string' || !/^\d+$/.test(k));
    }
  } else if (a instanceof ArrayBuffer && b instanceof ArrayBuffer) {
    if (!bytesEqual(new Uint8Array(a), new Uint8Array(b))) return false;
  } else if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [key, value] of a) {
      if (!isObject(key) && b.has(key)) {
        if (!isDeepEqual(value, b.get(key), strict, memo)) return false;
        continue;
      }
      let found = false;
      for (const [k2, v2] of b) {
        if (isDeepEqual(key, k2, strict, new Map(memo)) && isDeepEqual(value, v2, strict, new Map(memo))) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
  } else if (a instanceof Set && b instanceof Set) {
    if (a.size !== b.size) return false;
    for (const item of a) {
      if (!isObject(item) && b.has(item)) continue;
      let found = false;
      for (const other of b) {
        if (isDeepEqual(item, other, strict, new Map(memo))) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
  } else if (typeof (a as { valueOf?: unknown }).valueOf === 'function' && [Number, String, Boolean, BigInt, Symbol].some((c) => a instanceof c)) {
    if (!Object.is((a as { valueOf(): unknown }).valueOf(), (b as { valueOf(): unknown }).valueOf())) return false;
  }
  if (Array.isArray(a) && (a as unknown[]).length !== (b as unknown[]).length) return false;
  return sameKeys(a, b, strict, memo, () => true);
}

function sameKeys(a: object, b: object, strict: boolean, memo: Map<object, object>, include: (k: PropertyKey) => boolean): boolean {
  const ka = ownKeys(a, strict).filter(include);
  const kb = ownKeys(b, strict).filter(include);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!isDeepEqual((a as Record<PropertyKey, unknown>)[k], (b as Record<PropertyKey, unknown>)[k], strict, memo)) return false;
  }
  return true;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Where two values first differ (`[3]`, `.key`), for the message of a failed deep comparison. */
function firstDifference(a: unknown, b: unknown, strict: boolean, depth = 0): string {
  if (depth > 8 || !isObject(a) || !isObject(b)) return '';
  if ((Array.isArray(a) || ArrayBuffer.isView(a)) && (Array.isArray(b) || ArrayBuffer.isView(b))) {
    const x = a as unknown as ArrayLike<unknown>;
    const y = b as unknown as ArrayLike<unknown>;
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (!isDeepEqual(x[i], y[i], strict)) return `[${i}]${firstDifference(x[i], y[i], strict, depth + 1)}`;
    }
    return x.length === y.length ? '' : `.length`;
  }
  if (a instanceof Map || a instanceof Set || b instanceof Map || b instanceof Set) return '';
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const va = (a as Record<string, unknown>)[k];
    const vb = (b as Record<string, unknown>)[k];
    if (!(k in a) || !(k in b) || !isDeepEqual(va, vb, strict)) return `.${k}${firstDifference(va, vb, strict, depth + 1)}`;
  }
  return '';
}

function comparison(header: string, actual: unknown, expected: unknown, where = ''): string {
  return `${header}${where ? ` (first difference at ${where})` : ''}\n+ actual - expected\n\n+ ${inspect(actual)}\n- ${inspect(expected)}`;
}

// ---- assertions

export function ok(value: unknown, message?: Message): asserts value {
  if (!value) {
    raise(message, `The expression evaluated to a falsy value:\n\n  assert.ok(${inspect(value)})\n`, { actual: value, expected: true, operator: '==' }, ok);
  }
}

export function strictEqual<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  if (!Object.is(actual, expected)) {
    raise(message, comparison('Expected values to be strictly equal:', actual, expected), { actual, expected, operator: 'strictEqual' }, strictEqual);
  }
}

export function notStrictEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (Object.is(actual, expected)) {
    raise(message, `Expected "actual" to be strictly unequal to: ${inspect(expected)}`, { actual, expected, operator: 'notStrictEqual' }, notStrictEqual);
  }
}

export function deepStrictEqual<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  if (!isDeepEqual(actual, expected, true)) {
    raise(
      message,
      comparison('Expected values to be strictly deep-equal:', actual, expected, firstDifference(actual, expected, true)),
      { actual, expected, operator: 'deepStrictEqual' },
      deepStrictEqual,
    );
  }
}

export function notDeepStrictEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (isDeepEqual(actual, expected, true)) {
    raise(message, `Expected "actual" not to be strictly deep-equal to: ${inspect(expected)}`, { actual, expected, operator: 'notDeepStrictEqual' }, notDeepStrictEqual);
  }
}

/** In `node:assert/strict`, equal is strictEqual. */
export const equal = strictEqual;
/** In `node:assert/strict`, notEqual is notStrictEqual. */
export const notEqual = notStrictEqual;
/** In `node:assert/strict`, deepEqual is deepStrictEqual. */
export const deepEqual = deepStrictEqual;
/** In `node:assert/strict`, notDeepEqual is notDeepStrictEqual. */
export const notDeepEqual = notDeepStrictEqual;

export function fail(message?: Message): never {
  raise(message, 'Failed', { operator: 'fail' }, fail);
}

export function ifError(value: unknown): void {
  if (value !== null && value !== undefined) {
    if (value instanceof Error) throw value;
    raise(undefined, `ifError got unwanted exception: ${inspect(value)}`, { actual: value, expected: null, operator: 'ifError' }, ifError);
  }
}

export function match(actual: unknown, regexp: RegExp, message?: Message): void {
  if (typeof actual !== 'string' || !regexp.test(actual)) {
    const generated =
      typeof actual !== 'string'
        ? `The "string" argument must be of type string. Received ${inspect(actual)}`
        : `The input did not match the regular expression ${regexp.toString()}. Input:\n\n${inspect(actual)}\n`;
    raise(message, generated, { actual, expected: regexp, operator: 'match' }, match);
  }
}

export function doesNotMatch(actual: unknown, regexp: RegExp, message?: Message): void {
  if (typeof actual !== 'string' || regexp.test(actual)) {
    const generated =
      typeof actual !== 'string'
        ? `The "string" argument must be of type string. Received ${inspect(actual)}`
        : `The input was expected to not match the regular expression ${regexp.toString()}. Input:\n\n${inspect(actual)}\n`;
    raise(message, generated, { actual, expected: regexp, operator: 'doesNotMatch' }, doesNotMatch);
  }
}

const NO_EXCEPTION = Symbol('no exception');

/** Checks a caught error against a throws/rejects matcher; throws an AssertionError when it does not match. */
function checkError(actual: unknown, expected: Matcher | undefined, message: Message, operator: string, stackStartFn: unknown): void {
  if (expected === undefined) return;
  if (expected instanceof RegExp) {
    if (!expected.test(String(actual))) {
      raise(message, `The input did not match the regular expression ${expected.toString()}. Input:\n\n${inspect(String(actual))}\n`, { actual, expected, operator }, stackStartFn);
    }
    return;
  }
  if (typeof expected === 'function') {
    const fn = expected as { prototype?: unknown; name?: string };
    if (fn.prototype !== undefined && actual instanceof (expected as new () => unknown)) return;
    if (expected === Error || Object.prototype.isPrototypeOf.call(Error, expected)) {
      const received = isObject(actual)
        ? `"${actual.constructor?.name ?? 'Object'}"${'message' in actual ? `\n\nError message:\n\n${String(actual.message)}` : ''}`
        : inspect(actual);
      raise(message, `The error is expected to be an instance of "${fn.name ?? ''}". Received ${received}`, { actual, expected, operator }, stackStartFn);
    }
    const result = (expected as (err: unknown) => unknown).call({}, actual);
    if (result !== true) {
      raise(
        message,
        `The ${fn.name ? `"${fn.name}" ` : ''}validation function is expected to return "true". Received ${inspect(result)}\n\nCaught error:\n\n${inspect(actual)}`,
        { actual, expected, operator },
        stackStartFn,
      );
    }
    return;
  }
  // An object (or Error instance): each of its properties must match the error's.
  if (!isObject(actual)) {
    raise(message, `The error is expected to be an object with the properties of ${inspect(expected)}. Received ${inspect(actual)}`, { actual, expected, operator }, stackStartFn);
  }
  const keys: string[] = Object.keys(expected);
  if (expected instanceof Error) keys.push('name', 'message');
  for (const key of keys) {
    const want = (expected as Record<string, unknown>)[key];
    const got = (actual as Record<string, unknown>)[key];
    if (want instanceof RegExp && typeof got === 'string' && want.test(got)) continue;
    if (!(key in actual) || !isDeepEqual(got, want, true)) {
      raise(message, comparison(`Expected values to be strictly deep-equal (property "${key}" of the error):`, got, want), { actual, expected, operator }, stackStartFn);
    }
  }
}

/** Node's rule: a string in the matcher position is the message. */
function splitArgs(expected: Matcher | string | undefined, message: Message): [Matcher | undefined, Message] {
  return typeof expected === 'string' ? [undefined, expected] : [expected, message];
}

function describeMissing(kind: string, expected: Matcher | undefined, message: Message): string {
  const name = typeof expected === 'function' && (expected as { name?: string }).name ? ` (${(expected as { name: string }).name})` : '';
  return `Missing expected ${kind}${name}${typeof message === 'string' ? `: ${message}` : '.'}`;
}

export function throws(fn: () => unknown, expected?: Matcher | string, message?: Message): void {
  const [matcher, msg] = splitArgs(expected, message);
  let caught: unknown = NO_EXCEPTION;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  if (caught === NO_EXCEPTION) raise(msg instanceof Error ? msg : undefined, describeMissing('exception', matcher, msg), { expected: matcher, operator: 'throws' }, throws);
  checkError(caught, matcher, msg, 'throws', throws);
}

async function settle(promiseOrFn: Promise<unknown> | (() => Promise<unknown>), operator: string): Promise<unknown> {
  let promise: unknown = promiseOrFn;
  if (typeof promiseOrFn === 'function') {
    promise = promiseOrFn();
    if (!isObject(promise) || typeof (promise as { then?: unknown }).then !== 'function') {
      throw new TypeError(`Expected instance of Promise to be returned from the "promiseFn" function of assert.${operator}() but got ${inspect(promise)}.`);
    }
  } else if (!isObject(promise) || typeof (promise as { then?: unknown }).then !== 'function') {
    throw new TypeError(`The "promiseFn" argument of assert.${operator}() must be a function or a Promise. Received ${inspect(promise)}`);
  }
  try {
    await (promise as PromiseLike<unknown>);
  } catch (err) {
    return err;
  }
  return NO_EXCEPTION;
}

export async function rejects(
  promiseOrFn: Promise<unknown> | (() => Promise<unknown>),
  expected?: Matcher | string,
  message?: Message,
): Promise<void> {
  const [matcher, msg] = splitArgs(expected, message);
  const caught = await settle(promiseOrFn, 'rejects');
  if (caught === NO_EXCEPTION) {
    raise(msg instanceof Error ? msg : undefined, describeMissing('rejection', matcher, msg), { expected: matcher, operator: 'rejects' }, rejects);
  }
  checkError(caught, matcher, msg, 'rejects', rejects);
}

function unwanted(caught: unknown, expected: Matcher | undefined, message: Message, operator: string, kind: string, stackStartFn: unknown): void {
  // With a matcher, only a matching error is "unwanted"; any other error propagates unchanged.
  if (expected !== undefined) {
    try {
      checkError(caught, expected, undefined, operator, stackStartFn);
    } catch {
      throw caught;
    }
  }
  const detail = isObject(caught) && 'message' in caught ? String(caught.message) : inspect(caught);
  raise(message, `Got unwanted ${kind}${typeof message === 'string' ? `: ${message}` : '.'}\nActual message: "${detail}"`, { actual: caught, expected, operator }, stackStartFn);
}

export function doesNotThrow(fn: () => unknown, expected?: Matcher | string, message?: Message): void {
  const [matcher, msg] = splitArgs(expected, message);
  try {
    fn();
  } catch (err) {
    unwanted(err, matcher, msg, 'doesNotThrow', 'exception', doesNotThrow);
  }
}

export async function doesNotReject(
  promiseOrFn: Promise<unknown> | (() => Promise<unknown>),
  expected?: Matcher | string,
  message?: Message,
): Promise<void> {
  const [matcher, msg] = splitArgs(expected, message);
  const caught = await settle(promiseOrFn, 'doesNotReject');
  if (caught !== NO_EXCEPTION) unwanted(caught, matcher, msg, 'doesNotReject', 'rejection', doesNotReject);
}

const api = {
  AssertionError,
  ok,
  equal,
  notEqual,
  strictEqual,
  notStrictEqual,
  deepEqual,
  notDeepEqual,
  deepStrictEqual,
  notDeepStrictEqual,
  throws,
  doesNotThrow,
  rejects,
  doesNotReject,
  match,
  doesNotMatch,
  fail,
  ifError,
};

/** `assert(value, message)` is `assert.ok`; the other assertions hang off it, as in Node. */
function assertFn(value: unknown, message?: Message): asserts value {
  ok(value, message);
}

/** The strict assert object: the default export of `node:assert/strict`, and `strict` of `node:assert`. */
export const strict: typeof assertFn & typeof api & { strict: typeof assertFn } = Object.assign(assertFn, api, { strict: assertFn as never });
strict.strict = strict;

export default strict;
