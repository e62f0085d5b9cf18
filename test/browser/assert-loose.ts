// The browser stand-in for plain `node:assert`: as ./assert.ts (the strict module), except that the legacy
// equal/notEqual/deepEqual/notDeepEqual compare loosely, as Node's do. Prefer `node:assert/strict`.
import * as strictApi from './assert.ts';
import { AssertionError, inspect, isDeepEqual, strict } from './assert.ts';

export {
  AssertionError,
  deepStrictEqual,
  doesNotMatch,
  doesNotReject,
  doesNotThrow,
  fail,
  ifError,
  match,
  notDeepStrictEqual,
  notStrictEqual,
  ok,
  rejects,
  strict,
  strictEqual,
  throws,
} from './assert.ts';

function fail(message: string | Error | undefined, generated: string, actual: unknown, expected: unknown, operator: string, fn: unknown): never {
  if (message instanceof Error) throw message;
  throw new AssertionError({ message: message ?? generated, actual, expected, operator, stackStartFn: fn });
}

export function equal(actual: unknown, expected: unknown, message?: string | Error): void {
  if (!(actual == expected || (Number.isNaN(actual) && Number.isNaN(expected)))) {
    fail(message, `${inspect(actual)} == ${inspect(expected)}`, actual, expected, '==', equal);
  }
}

export function notEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (actual == expected || (Number.isNaN(actual) && Number.isNaN(expected))) {
    fail(message, `${inspect(actual)} != ${inspect(expected)}`, actual, expected, '!=', notEqual);
  }
}

export function deepEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (!isDeepEqual(actual, expected, false)) {
    fail(message, `Expected values to be loosely deep-equal:\n\n${inspect(actual)}\n\nshould loosely deep-equal\n\n${inspect(expected)}`, actual, expected, 'deepEqual', deepEqual);
  }
}

export function notDeepEqual(actual: unknown, expected: unknown, message?: string | Error): void {
  if (isDeepEqual(actual, expected, false)) {
    fail(message, `${inspect(actual)}\n\nshould not loosely deep-equal\n\n${inspect(expected)}`, actual, expected, 'notDeepEqual', notDeepEqual);
  }
}

function assertFn(value: unknown, message?: string | Error): asserts value {
  strictApi.ok(value, message);
}

const legacy: typeof assertFn & Omit<typeof strict, 'equal' | 'notEqual' | 'deepEqual' | 'notDeepEqual'> & {
  equal: typeof equal;
  notEqual: typeof notEqual;
  deepEqual: typeof deepEqual;
  notDeepEqual: typeof notDeepEqual;
} = Object.assign(assertFn, strict, { equal, notEqual, deepEqual, notDeepEqual, strict });

export default legacy;
