// The relay benchmark's load generator, shared by bench:relay and bench:cluster: pairs of simulated devices
// (bench/relay-wire.ts), a closed loop for sustained throughput and a paced open loop for latency.
import { BenchDevice, sendTemplate } from './relay-wire.ts';
import type { BenchCredentials } from './relay-server.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** Sender i sends to receiver i. */
export interface Pairs {
  readonly senders: BenchDevice[];
  readonly receivers: BenchDevice[];
  /** The receivers' credentials (sender i's destination is `to[i]`). */
  readonly to: BenchCredentials[];
}

/**
 * Connects `creds.length / 2` pairs: the first half send, the second half receive. `wsUrlOf(i)` is the
 * socket URL device i connects to (a node of a cluster, for instance).
 */
export async function connectPairs(creds: BenchCredentials[], wsUrlOf: (index: number) => string): Promise<Pairs> {
  const pairs = creds.length / 2;
  const receivers = await Promise.all(creds.slice(pairs).map((c, i) => BenchDevice.connect(wsUrlOf(pairs + i), c)));
  const senders = await Promise.all(creds.slice(0, pairs).map((c, i) => BenchDevice.connect(wsUrlOf(i), c)));
  return { senders, receivers, to: creds.slice(pairs) };
}

/** Result of {@link closedLoop}. */
export interface ThroughputResult {
  /** Delivered messages per second over the counted window. */
  readonly rate: number;
  readonly seconds: number;
}

/**
 * Closed loop: every sender keeps `window` sends in flight; deliveries are counted at the receivers during
 * `seconds` after a 1.5 s warm-up. `during` runs at the start of the counted window (and is awaited with it):
 * a caller samples CPU there.
 */
export async function closedLoop(p: Pairs, size: number, window: number, seconds: number, during: (ms: number) => Promise<void> = (ms) => sleep(ms)): Promise<ThroughputResult> {
  let delivered = 0;
  let counting = false;
  for (const r of p.receivers) r.onEnvelope = () => void (counting && delivered++);
  let running = true;
  const loops = p.senders.map(async (sender, i) => {
    const { path, body } = sendTemplate(p.to[i] as BenchCredentials, size);
    const lane = async (): Promise<void> => {
      while (running) {
        const status = await sender.send(path, body);
        if (status !== 200) throw new Error(`send refused: ${status}`);
      }
    };
    await Promise.all(Array.from({ length: window }, lane));
  });
  await sleep(1500); // warm-up
  counting = true;
  const started = performance.now();
  await during(seconds * 1000);
  counting = false;
  const elapsed = (performance.now() - started) / 1000;
  running = false;
  await Promise.all(loops);
  await sleep(500);
  return { rate: delivered / elapsed, seconds: elapsed };
}

/** Open loop at `rate` msg/s for `seconds`: latency from send to push, in ms, sorted (one clock: this process). */
export async function openLoop(p: Pairs, size: number, rate: number, seconds: number): Promise<number[]> {
  const samples: number[] = [];
  const templates = p.senders.map((_, i) => sendTemplate(p.to[i] as BenchCredentials, size));
  for (const r of p.receivers) {
    r.onEnvelope = (content) => {
      const view = new DataView(content.buffer, content.byteOffset, content.byteLength);
      samples.push(performance.now() - view.getFloat64(0));
    };
  }
  const started = performance.now();
  let sent = 0;
  let next = 0;
  const pending: Array<Promise<number>> = [];
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (sent < due) {
      const i = next++ % p.senders.length;
      const t = templates[i] as ReturnType<typeof sendTemplate>;
      const body = t.body.slice();
      new DataView(body.buffer, body.byteOffset + t.stampAt, 8).setFloat64(0, performance.now());
      pending.push((p.senders[i] as BenchDevice).send(t.path, body));
      sent++;
    }
    await sleep(1);
  }
  await Promise.all(pending);
  await sleep(500);
  return samples.sort((a, b) => a - b);
}
