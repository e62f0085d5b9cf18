// The NATS message bus against the real NATS server on 127.0.0.1:4222 (skipped locally when it is not
// running; in CI a missing NATS fails the run). Two bus instances play two server nodes. Every test uses
// its own subject prefix (and so its own presence bucket), removed at the end.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as natsConnect, type NatsConnection } from 'nats';
import type { DeviceEvent } from '../../../src/server/bus/bus.ts';
import { encodeDeviceEvent } from '../../../src/server/bus/codec.ts';
import { connectNatsBus, type NatsMessageBus } from '../../../src/server/bus/nats.ts';
import type { AccountId, DeviceId, DeviceRef } from '../../../src/server/ids.ts';
import { createLogger } from '../../../src/server/log.ts';
import type { StoredEnvelope } from '../../../src/server/storage/stores.ts';
import { serviceTestOptions, tcpProbe } from '../../support/services.ts';

const NATS_URL = 'nats://127.0.0.1:4222';
const options = await serviceTestOptions('nats', tcpProbe('nats'));

const ALICE = '6f1c0d2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f' as AccountId;
const BOB = '7a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d' as AccountId;
const CAROL = '8b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e' as AccountId;

/** A test's own prefix: pid, time and randomness, so parallel and repeated runs never meet. */
function uniquePrefix(): string {
  return `ptest.${process.pid}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

function stored(ref: number, seq: number, content = randomBytes(40)): StoredEnvelope {
  return {
    ref: ref as DeviceRef,
    guid: randomBytes(16),
    type: 2,
    sourceAccountId: ALICE,
    sourceDeviceId: 1 as DeviceId,
    destinationDeviceId: 2 as DeviceId,
    timestamp: 1_764_000_000_000 + seq,
    serverTimestamp: 1_764_000_000_500 + seq,
    content,
    seq,
  };
}

async function eventually(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<number> {
  const started = performance.now();
  while (!predicate()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - started;
}

/** A cluster of bus nodes on one prefix; `close()` closes them and deletes the presence bucket. */
class TestCluster {
  readonly prefix = uniquePrefix();
  readonly logs: string[] = [];
  readonly buses: NatsMessageBus[] = [];
  readonly logger = createLogger('debug', { write: (line: string) => void this.logs.push(line) });

  async node(nodeId: string, extra: { presenceTtlMs?: number } = {}): Promise<NatsMessageBus> {
    const bus = await connectNatsBus(NATS_URL, { nodeId, logger: this.logger.child({ node: nodeId }), subjectPrefix: this.prefix, ...extra });
    this.buses.push(bus);
    return bus;
  }

  get bucketStream(): string {
    return `KV_${this.prefix.replace(/\./g, '_')}_presence`;
  }

  async close(): Promise<void> {
    await Promise.all(this.buses.map((b) => b.close()));
    const nc = await natsConnect({ servers: NATS_URL });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.delete(this.bucketStream).catch(() => false);
    } finally {
      await nc.close();
    }
  }
}

describe('NATS message bus', options, () => {
  const clusters: TestCluster[] = [];
  const cluster = (): TestCluster => {
    const c = new TestCluster();
    clusters.push(c);
    return c;
  };
  after(async () => {
    await Promise.all(clusters.map((c) => c.close()));
  });

  it('delivers a stored envelope from node A to the device on node B within milliseconds', async () => {
    const c = cluster();
    const a = await c.node('node-a');
    const b = await c.node('node-b');
    const received: DeviceEvent[] = [];
    let wake: (() => void) | undefined;
    b.subscribeDevice(41 as DeviceRef, (event) => {
      received.push(event);
      wake?.();
    });
    await b.ready();
    const latencies: number[] = [];
    for (let i = 1; i <= 200; i++) {
      const envelope = stored(41, i);
      const arrived = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const started = performance.now();
      a.publishToDevice(41 as DeviceRef, { kind: 'stored', envelope });
      await arrived;
      latencies.push(performance.now() - started);
      assert.deepEqual(received.at(-1), { kind: 'stored', envelope });
    }
    latencies.sort((x, y) => x - y);
    const median = latencies[100] as number;
    const p99 = latencies[197] as number;
    console.log(`NATS bus, node A -> node B, 200 envelopes one at a time: median ${median.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${(latencies[199] as number).toFixed(2)} ms`);
    assert.ok(median < 20, `median latency ${median} ms`);
    assert.equal(received.length, 200);
  });

  it('keeps per-device order and sends each node only its own devices', async () => {
    const c = cluster();
    const a = await c.node('node-a');
    const b = await c.node('node-b');
    const seen = new Map<number, number[]>();
    const subscribe = (bus: NatsMessageBus, ref: number): (() => void) =>
      bus.subscribeDevice(ref as DeviceRef, (event) => {
        assert.equal(event.kind, 'stored');
        if (event.kind !== 'stored') return;
        const list = seen.get(ref) ?? [];
        list.push(event.envelope.seq);
        seen.set(ref, list);
      });
    subscribe(b, 1);
    subscribe(b, 2);
    const offA = subscribe(a, 3);
    await Promise.all([a.ready(), b.ready()]);
    assert.equal(b.subscriptionCount, 2);
    assert.equal(a.subscriptionCount, 1);
    const started = performance.now();
    for (let seq = 1; seq <= 3000; seq++) a.publishToDevice(((seq % 3) + 1) as DeviceRef, { kind: 'stored', envelope: stored((seq % 3) + 1, seq) });
    await eventually(() => [1, 2, 3].every((ref) => (seen.get(ref)?.length ?? 0) === 1000), '3000 envelopes');
    console.log(`NATS bus: 3000 envelopes to 3 devices on 2 nodes in ${(performance.now() - started).toFixed(1)} ms`);
    for (const ref of [1, 2, 3]) {
      const seqs = seen.get(ref) ?? [];
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), `device ${ref} in order`);
    }
    // After the last local subscriber leaves, node A unsubscribes and gets nothing more for device 3.
    offA();
    assert.equal(a.subscriptionCount, 0);
    await a.ready();
    b.publishToDevice(3 as DeviceRef, { kind: 'stored', envelope: stored(3, 5000) });
    // A marker on the same connection, after it: once it arrived, the earlier publish was routed too.
    b.publishToDevice(1 as DeviceRef, { kind: 'stored', envelope: stored(1, 5001) });
    await eventually(() => seen.get(1)?.at(-1) === 5001, 'the marker');
    assert.equal(seen.get(3)?.length, 1000);
  });

  it('carries ephemeral, removed, connected and resync events across nodes', async () => {
    const c = cluster();
    const a = await c.node('node-a');
    const b = await c.node('node-b');
    const received: DeviceEvent[] = [];
    b.subscribeDevice(7 as DeviceRef, (event) => received.push(event));
    await b.ready();
    const { seq: _seq, ...ephemeral } = stored(7, 1);
    const events: DeviceEvent[] = [
      { kind: 'ephemeral', envelope: { ...ephemeral, groupId: '00112233445566778899aabbccddeeff' as never } },
      { kind: 'connected', connectionId: 'node-a/c17', connectedAt: 1_764_000_000_123 },
      { kind: 'resync' },
      { kind: 'removed' },
    ];
    for (const event of events) a.publishToDevice(7 as DeviceRef, event);
    await eventually(() => received.length === events.length, 'four events');
    assert.deepEqual(received, events);
  });

  it('logs and drops malformed messages, and goes on delivering', async () => {
    const c = cluster();
    const b = await c.node('node-b');
    const received: DeviceEvent[] = [];
    b.subscribeDevice(9 as DeviceRef, (event) => received.push(event));
    await b.ready();
    const raw: NatsConnection = await natsConnect({ servers: NATS_URL });
    try {
      const subject = `${c.prefix}.dev.9`;
      const good = encodeDeviceEvent({ kind: 'stored', envelope: stored(9, 1) });
      const bad = [
        new Uint8Array(0),
        Uint8Array.of(2, 3), // unknown version
        Uint8Array.of(1, 99), // unknown kind
        good.slice(0, good.length - 3), // truncated
        Uint8Array.from([...good, 0]), // trailing byte
        encodeDeviceEvent({ kind: 'stored', envelope: stored(10, 1) }), // another device's envelope
        Uint8Array.from([1, 1, ...randomBytes(300)]), // a "stored" event of random bytes
      ];
      for (const bytes of bad) raw.publish(subject, bytes);
      raw.publish(subject, good);
      await raw.flush();
      await eventually(() => received.length === 1, 'the good message');
      assert.equal(b.malformedCount, bad.length);
      assert.equal(received[0]?.kind, 'stored');
      assert.ok(c.logs.join('').includes('malformed bus message dropped'));
    } finally {
      await raw.close();
    }
  });

  it('shares presence between nodes: join, leave, and expiry of a node that died without a goodbye', async () => {
    const c = cluster();
    const ttl = 1500;
    const a = await c.node('node-a', { presenceTtlMs: ttl });
    const b = await c.node('node-b', { presenceTtlMs: ttl });
    const expired: Array<{ accountId: AccountId; lastOnlineAt: number }> = [];
    b.presence.onExpired((accountId, lastOnlineAt) => expired.push({ accountId, lastOnlineAt }));

    a.presence.join(ALICE);
    assert.equal(a.presence.isOnline(ALICE), true);
    const joinMs = await eventually(() => b.presence.isOnline(ALICE), 'alice online on node B');
    assert.equal(b.presence.isOnline(BOB), false);
    a.presence.leave(ALICE);
    const leaveMs = await eventually(() => !b.presence.isOnline(ALICE), 'alice offline on node B');
    console.log(`presence across nodes: join seen after ${joinMs.toFixed(1)} ms, leave after ${leaveMs.toFixed(1)} ms`);

    // Refreshed while connected: still online after several TTLs.
    a.presence.join(BOB);
    await eventually(() => b.presence.isOnline(BOB), 'bob online on node B');
    await new Promise((r) => setTimeout(r, 2 * ttl));
    assert.equal(b.presence.isOnline(BOB), true, 'the heartbeat keeps an entry alive');

    // A node joining later learns the current state from the bucket.
    const late = await c.node('node-late', { presenceTtlMs: ttl });
    assert.equal(late.presence.isOnline(BOB), true);

    // A node process that joins carol and is killed (SIGKILL: no goodbye).
    const script = `
      import { connectNatsBus } from ${JSON.stringify(new URL('../../../src/server/bus/nats.ts', import.meta.url).pathname)};
      import { createLogger } from ${JSON.stringify(new URL('../../../src/server/log.ts', import.meta.url).pathname)};
      const bus = await connectNatsBus(${JSON.stringify(NATS_URL)}, { nodeId: 'doomed', logger: createLogger('warn'), subjectPrefix: ${JSON.stringify(c.prefix)}, presenceTtlMs: ${ttl} });
      bus.presence.join(${JSON.stringify(CAROL)});
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      await eventually(() => b.presence.isOnline(CAROL), 'carol online (from the child node)', 15_000);
    } finally {
      child.kill('SIGKILL');
    }
    const killedAt = Date.now();
    const goneMs = await eventually(() => !b.presence.isOnline(CAROL), 'carol offline after the TTL', 3 * ttl);
    await eventually(() => expired.some((e) => e.accountId === CAROL), 'the expiry report', ttl);
    const report = expired.find((e) => e.accountId === CAROL);
    console.log(`presence of a killed node: offline ${goneMs.toFixed(0)} ms after SIGKILL (TTL ${ttl} ms)`);
    assert.ok(goneMs <= ttl + 100, `offline within the TTL (took ${goneMs} ms)`);
    assert.ok(report !== undefined && report.lastOnlineAt <= killedAt + 50 && report.lastOnlineAt > killedAt - ttl - 1000, 'last online near the death');
    assert.ok(!expired.some((e) => e.accountId === ALICE), 'a goodbye is not an expiry');
    assert.equal(b.presence.isOnline(BOB), true);

    // A node that closes says goodbye: its accounts go offline at once, without waiting for the TTL.
    await a.close();
    const byeMs = await eventually(() => !b.presence.isOnline(BOB), 'bob offline after node A closed', ttl / 2);
    console.log(`presence after a graceful close: offline after ${byeMs.toFixed(1)} ms`);
  });
});
