// External services of the cluster tests (PostgreSQL, NATS): is one reachable, and what a test does when
// it is not. Locally a missing service skips the tests that need it, saying so
// ("PostgreSQL not reachable at 127.0.0.1:5432: skipped"); in CI (`CI=true`) it fails the run, so a
// broken service can never turn the suite green by skipping.
//
//   const options = await serviceTestOptions('postgres', probePostgres);   // at the top of a test file
//   describe('storage contract: postgres', options, () => { ... });
//
// Probes live with the service's own helpers (`probePostgres` in ./postgres.ts); `tcpProbe` fits any
// service that only needs its port open.
import { connect } from 'node:net';

/** The services a cluster test may need. */
export type ServiceName = 'postgres' | 'nats';

/** Where each service listens on this machine and in CI (see ../shared/ENVIRONMENT.md). */
export const SERVICE_ADDRESS: Readonly<Record<ServiceName, { readonly host: string; readonly port: number }>> = {
  postgres: { host: '127.0.0.1', port: 5432 },
  nats: { host: '127.0.0.1', port: 4222 },
};

const DISPLAY_NAME: Readonly<Record<ServiceName, string>> = { postgres: 'PostgreSQL', nats: 'NATS' };

/** Whether a service answered its probe; `reason` is a sentence for a skip or failure message. */
export type ServiceStatus = { readonly available: true } | { readonly available: false; readonly reason: string };

/** Options for node:test's `describe`/`test`: empty when the service is there, a skip message otherwise. */
export interface ServiceTestOptions {
  readonly skip?: string;
}

/** How long a probe may take before the service counts as unreachable. */
const PROBE_TIMEOUT_MS = 3000;

/** True when the run is CI's (`CI=true`): there, a missing service is a failure, not a skip. */
export function inCi(): boolean {
  return process.env.CI === 'true';
}

/** "PostgreSQL not reachable at 127.0.0.1:5432" */
export function unreachable(name: ServiceName): string {
  const { host, port } = SERVICE_ADDRESS[name];
  return `${DISPLAY_NAME[name]} not reachable at ${host}:${port}`;
}

/**
 * Runs `probe` (which throws or rejects when the service does not answer) with a time limit. Never
 * throws: the outcome is in the result.
 */
export async function serviceAvailable(name: ServiceName, probe: () => Promise<void>, timeoutMs = PROBE_TIMEOUT_MS): Promise<ServiceStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([probe(), timeout]);
    return { available: true };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { available: false, reason: `${unreachable(name)} (${detail})` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Probes the service and returns the options for the `describe` (or `test`) that needs it: `{}` when it
 * answers; locally `{ skip: '<Service> not reachable at <host:port>: skipped' }`; in CI it throws, which
 * fails the test file (node:test reports the error) instead of skipping.
 */
export async function serviceTestOptions(name: ServiceName, probe: () => Promise<void>): Promise<ServiceTestOptions> {
  const status = await serviceAvailable(name, probe);
  if (status.available) return {};
  if (inCi()) throw new Error(`${status.reason}: CI=true requires it`);
  // The skip message must read exactly "<Service> not reachable at <host:port>: skipped"; the probe's
  // detail goes to stderr.
  console.error(`${status.reason}`);
  return { skip: `${unreachable(name)}: skipped` };
}

/** A probe that only opens (and closes) a TCP connection to the service's port. */
export function tcpProbe(name: ServiceName): () => Promise<void> {
  const { host, port } = SERVICE_ADDRESS[name];
  return () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', (err) => {
        socket.destroy();
        reject(err);
      });
    });
}
