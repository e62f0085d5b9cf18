// Assertions on the protocol layer's typed errors: the exact ProtocolErrorCode, not just "it threw".
// Isomorphic (node:assert/strict is shimmed in the browser run).
import assert from 'node:assert/strict';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/index.ts';

function check(err: unknown, code: ProtocolErrorCode, what: string): ProtocolError {
  if (!(err instanceof ProtocolError)) {
    assert.fail(`${what}: expected ProtocolError ${code}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
  assert.equal(err.code, code, `${what}: expected ${code}, got ${err.code} (${err.message})`);
  assert.ok(err.is(code));
  return err;
}

/** Awaits `promise` (or calls `fn`) and asserts it rejects with a ProtocolError of exactly `code`. */
export async function expectCode(promise: Promise<unknown> | (() => Promise<unknown>), code: ProtocolErrorCode, what = 'operation'): Promise<ProtocolError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    return check(err, code, what);
  }
  return assert.fail(`${what}: expected ProtocolError ${code}, but it succeeded`);
}

/** Calls `fn` and asserts it throws a ProtocolError of exactly `code`. */
export function expectCodeSync(fn: () => unknown, code: ProtocolErrorCode, what = 'operation'): ProtocolError {
  try {
    fn();
  } catch (err) {
    return check(err, code, what);
  }
  return assert.fail(`${what}: expected ProtocolError ${code}, but it succeeded`);
}
