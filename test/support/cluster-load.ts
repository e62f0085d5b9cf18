// Bounded message load for the cluster tests: senders send numbered texts (1:1 or to a group) one after
// another while something breaks (a node killed or stopped, NATS restarted); every receiver records what
// its SDK client delivered, and the check says whether every acknowledged message arrived exactly once.
import assert from 'node:assert/strict';
import type { ClusterClient } from './cluster.ts';
import { eventually } from './cluster.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One sender and where its messages go. */
export interface Flow {
  readonly from: ClusterClient;
  /** A phone number (1:1) or a group id. */
  readonly to: string;
  /** The clients that must receive each message (the one recipient, or every other group member). */
  readonly receivers: readonly ClusterClient[];
}

/** What a load run did. */
export interface LoadResult {
  /** Bodies the server acknowledged (sendText resolved), by flow. */
  readonly acked: Array<Set<string>>;
  /** Bodies whose send failed (they may or may not arrive, but never twice). */
  readonly failed: Array<Set<string>>;
  /** Per receiver number: body -> times its client delivered it. */
  readonly received: Map<string, Map<string, number>>;
  /** Stops recording. */
  stop(): void;
}

/**
 * Runs `perFlow` sends on every flow at once (one after another within a flow, `pauseMs` apart), calling
 * `onProgress(ackedSoFar)` after each acknowledgement (the test breaks something from there). Resolves
 * when every flow has made its sends.
 */
export async function runLoad(flows: readonly Flow[], perFlow: number, pauseMs: number, onProgress: (acked: number) => void = () => undefined): Promise<LoadResult> {
  const received = new Map<string, Map<string, number>>();
  const stops: Array<() => void> = [];
  for (const client of new Set(flows.flatMap((f) => f.receivers))) {
    const counts = new Map<string, number>();
    received.set(client.number, counts);
    stops.push(client.client.on('message', (e) => counts.set(e.message.body, (counts.get(e.message.body) ?? 0) + 1)));
  }
  const acked = flows.map(() => new Set<string>());
  const failed = flows.map(() => new Set<string>());
  let total = 0;
  const run = `${Date.now().toString(36)}`;
  await Promise.all(
    flows.map(async (flow, f) => {
      for (let i = 0; i < perFlow; i++) {
        const body = `load ${run} flow ${f} message ${i}`;
        try {
          await flow.from.client.sendText(flow.to, body);
          (acked[f] as Set<string>).add(body);
          onProgress(++total);
        } catch {
          (failed[f] as Set<string>).add(body);
        }
        await sleep(pauseMs);
      }
    }),
  );
  return { acked, failed, received, stop: () => stops.forEach((s) => s()) };
}

/**
 * Waits (up to `timeoutMs`) until every acknowledged message reached every receiver of its flow, then a
 * little longer for late duplicates, and asserts: each acknowledged message exactly once, each failed one
 * at most once, nothing that was never sent.
 */
export async function assertExactlyOnce(flows: readonly Flow[], result: LoadResult, timeoutMs: number): Promise<{ acked: number; failed: number }> {
  const missing = (): string[] => {
    const out: string[] = [];
    flows.forEach((flow, f) => {
      for (const body of result.acked[f] as Set<string>) {
        for (const r of flow.receivers) if ((result.received.get(r.number)?.get(body) ?? 0) === 0) out.push(`${r.number} <- ${body}`);
      }
    });
    return out;
  };
  try {
    await eventually(() => missing().length === 0, timeoutMs, 'every acknowledged message to arrive');
  } catch (err) {
    const left = missing();
    assert.fail(`${left.length} acknowledged messages never arrived, e.g. ${left.slice(0, 5).join('; ')} (${(err as Error).message})`);
  }
  await sleep(1500); // room for a duplicate to show up
  result.stop();
  const sent = new Set(result.acked.flatMap((s) => [...s]).concat(result.failed.flatMap((s) => [...s])));
  flows.forEach((flow, f) => {
    for (const r of flow.receivers) {
      const counts = result.received.get(r.number) as Map<string, number>;
      for (const body of result.acked[f] as Set<string>) assert.equal(counts.get(body), 1, `${r.number} got acknowledged "${body}" ${counts.get(body) ?? 0} times`);
      for (const body of result.failed[f] as Set<string>) assert.ok((counts.get(body) ?? 0) <= 1, `${r.number} got unacknowledged "${body}" ${counts.get(body)} times`);
    }
  });
  for (const [number, counts] of result.received) {
    for (const body of counts.keys()) if (body.startsWith('load ')) assert.ok(sent.has(body), `${number} got "${body}", which was never sent`);
  }
  return { acked: result.acked.reduce((n, s) => n + s.size, 0), failed: result.failed.reduce((n, s) => n + s.size, 0) };
}
