// Runs in the page: loads each test file in turn (registering its tests through the node:test shim), runs
// it, and reports every result to Node through `__parleyReport` (a function run.ts exposes to the page).
import type { HarnessEvent } from './events.ts';
import { beginFile, configure, reportAsyncError, runFile, serializeError } from './runner.ts';

declare global {
  var __parleyReport: ((event: HarnessEvent) => Promise<void>) | undefined;
}

async function report(event: HarnessEvent): Promise<void> {
  if (globalThis.__parleyReport) await globalThis.__parleyReport(event);
  else console.log(JSON.stringify(event));
}

/** Loads and runs `files` (path and a loader that imports the bundled file) one after another. */
export async function runAll(files: ReadonlyArray<readonly [string, () => Promise<unknown>]>): Promise<void> {
  const params = new URLSearchParams(location.search);
  const timeout = Number(params.get('testTimeout'));
  configure({ reporter: report, ...(timeout > 0 ? { defaultTimeout: timeout } : {}) });
  addEventListener('error', (event) => {
    event.preventDefault();
    reportAsyncError(event.error ?? new Error(event.message));
  });
  addEventListener('unhandledrejection', (event) => {
    event.preventDefault();
    reportAsyncError(event.reason);
  });

  const started = performance.now();
  await report({ type: 'start', files: files.map(([file]) => file) });
  for (const [file, load] of files) {
    beginFile(file);
    try {
      await load();
    } catch (err) {
      await report({ type: 'test', file, path: ['(file failed to load)'], status: 'fail', durationMs: 0, error: serializeError(err) });
      continue;
    }
    await runFile();
  }
  await report({ type: 'done', durationMs: performance.now() - started });
}
