/** The server's source of time, injected so that tests can move it (code expiry, 30-day queue expiry). */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
