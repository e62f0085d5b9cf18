// What the page reports to test/browser/run.ts, one event per call of the exposed `__parleyReport`.

/** An error as it crosses from the page to Node (stack frames still point into the bundle). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  cause?: SerializedError;
}

/** The outcome of one test. `todo` tests run, but their outcome counts neither as a pass nor a failure. */
export type TestStatus = 'pass' | 'fail' | 'skip' | 'todo';

export type HarnessEvent =
  /** The page is up and about to load `files`. */
  | { type: 'start'; files: string[] }
  /** A `describe` block of `file` starts; `path` is its name and those of the blocks around it. */
  | { type: 'suite'; file: string; path: string[] }
  /** A test starts (used to name the test that was running when a run times out). */
  | { type: 'test:start'; file: string; path: string[] }
  /** A test (or a hook, or a file that failed to load) ended. */
  | { type: 'test'; file: string; path: string[]; status: TestStatus; durationMs: number; error?: SerializedError; reason?: string }
  /** `t.diagnostic(message)` */
  | { type: 'diagnostic'; file: string; path: string[]; message: string }
  /** Every file has run. */
  | { type: 'done'; durationMs: number };
