/**
 * Marks a deliberate fire-and-forget: the promise runs on, and a rejection goes to `onError` (by default
 * it is swallowed, for work whose failure is already handled or harmless) instead of becoming an
 * unhandled rejection.
 */
export function drop(promise: Promise<unknown>, onError?: (err: unknown) => void): void {
  promise.catch((err: unknown) => onError?.(err));
}
