import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../../../src/server/rate-limiter.ts';
import { ServerError } from '../../../src/server/errors.ts';

function clock(start = 0): { now(): number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('RateLimiter', () => {
  it('allows a burst of `capacity`, then says how long to wait', () => {
    const c = clock();
    const limiter = new RateLimiter({ capacity: 3, windowMs: 3000 }, c);
    assert.deepEqual([limiter.take('a'), limiter.take('a'), limiter.take('a')], [0, 0, 0]);
    assert.equal(limiter.take('a'), 1000);
    assert.equal(limiter.take('b'), 0, 'keys are independent');
    c.advance(1000);
    assert.equal(limiter.take('a'), 0, 'one token refilled');
    assert.equal(limiter.take('a'), 1000);
  });

  it('throws SERVER_RATE_LIMITED with retryAfterMs from check()', () => {
    const limiter = new RateLimiter({ capacity: 1, windowMs: 60_000 }, clock());
    limiter.check('k', 'things');
    assert.throws(
      () => limiter.check('k', 'things'),
      (err) => ServerError.is(err, 'SERVER_RATE_LIMITED') && err.retryAfterMs === 60_000 && err.status === 429,
    );
  });

  it('stays bounded under many distinct keys', () => {
    const limiter = new RateLimiter({ capacity: 1, windowMs: 1000 }, clock(), 100);
    for (let i = 0; i < 10_000; i++) limiter.take(`k${i}`);
    assert.equal(limiter.size, 100);
  });
});
