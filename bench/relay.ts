// `npm run bench:relay`: the relay under load, over real WebSockets on loopback, with durable storage
// (SQLite WAL with group commit: a send is acknowledged only after an fdatasync of the WAL that follows
// the commit of its envelope).
// The server runs in a child process; the simulated devices run here (and, for the idle-connection
// phase, in two more children). Phases, each bounded in time:
//   1. sustained delivered messages/s: pairs of devices, senders keep a window of sends in flight;
//   2. end-to-end latency p50/p95/p99 at half that rate, paced (open loop);
//   3. offline-queue drain rate: queues filled while recipients are offline, then drained;
//   4. server RSS per idle authenticated connection (up to 19,900: the per-process file limit here is a
//      hard 20,000, and the server needs a few descriptors of its own).
// Flags: --quick (short phases, 2,000 idle connections), --pairs N, --size BYTES, --seconds S, --idle N,
// --rate R (skip phase 1 and measure latency at R msg/s). Variables: PARLEY_BENCH_PROFILE=DIR
// (CPU profile of the server), PARLEY_BENCH_TRACE_GC=1 (the server's GC trace).
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { closedLoop, connectPairs, fmt, openLoop, percentile, sleep, type Pairs } from './relay-load.ts';
import { BenchDevice, sendTemplate } from './relay-wire.ts';
import type { BenchCredentials } from './relay-server.ts';
import { ServerChild } from './server-child.ts';

/** The relay's server: no rate limits in the way, queues deep enough for the drain phase. */
const SERVER_OPTIONS = {
  rateLimits: { messagesPerSender: { capacity: 1e9, windowMs: 1000 }, requestsPerConnection: { capacity: 1e9, windowMs: 1000 } },
  limits: { maxQueueDepth: 20_000 },
};

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const quick = args.includes('--quick');
const PAIRS = flag('--pairs', 40);
const SIZE = flag('--size', 320);
const SECONDS = flag('--seconds', quick ? 3 : 8);
const IDLE = Math.min(flag('--idle', quick ? 2000 : 19_900), 19_900);
/** --rate R skips phase 1 and measures latency at R msg/s (for profiling one phase). */
const FIXED_RATE = flag('--rate', 0);
const WINDOW = 48;
const DRAIN_PER_DEVICE = quick ? 2000 : 10_000;
const DRAIN_DEVICES = 5;
const HERE = path.dirname(fileURLToPath(import.meta.url));

async function connectServerPairs(server: ServerChild, pairs: number): Promise<Pairs> {
  return connectPairs(await server.provision(pairs * 2), () => server.wsUrl);
}

/** Phase 1: closed loop, WINDOW sends in flight per sender; delivered/s counted at the receivers. */
async function throughput(server: ServerChild, pairs: Pairs): Promise<number> {
  const before = await server.stats();
  const { rate, seconds } = await closedLoop(pairs, SIZE, WINDOW, SECONDS);
  const after = await server.stats();
  console.log(`  delivered: ${fmt(rate)} msg/s sustained over ${fmt(seconds, 1)} s (${PAIRS} sender/recipient pairs, ${SIZE}-byte envelopes, ${WINDOW} sends in flight per sender)`);
  const commits = after.commits - before.commits;
  console.log(
    `  group commit: ${fmt(commits)} transactions, ${fmt((after.jobs - before.jobs) / commits)} writes each on average (inserts and acked deletes), one WAL fsync each (mean ${fmt((after.syncMsTotal - before.syncMsTotal) / commits, 1)} ms, max ${fmt(after.syncMsMax, 1)} ms); WAL ${fmt(after.walBytes / 1048576, 1)} MiB at the end`,
  );
  return rate;
}

/** Phase 2: open loop at `rate` msg/s; latency from send to push, measured with one clock (this process). */
async function latency(server: ServerChild, pairs: Pairs, rate: number): Promise<void> {
  await server.stats(); // resets the server's event-loop delay histogram
  const ownDelay = monitorEventLoopDelay({ resolution: 5 });
  ownDelay.enable();
  const samples = await openLoop(pairs, SIZE, rate, SECONDS);
  ownDelay.disable();
  const serverStats = await server.stats();
  console.log(
    `  event-loop delay p99/max: server ${fmt(serverStats.loopDelayP99Ms, 1)}/${fmt(serverStats.loopDelayMaxMs, 1)} ms, load generator ${fmt(ownDelay.percentile(99) / 1e6, 1)}/${fmt(ownDelay.max / 1e6, 1)} ms`,
  );
  console.log(
    `  at ${fmt(rate)} msg/s: ${fmt(samples.length)} delivered, latency p50 ${fmt(percentile(samples, 50), 2)} ms, p95 ${fmt(percentile(samples, 95), 2)} ms, p99 ${fmt(percentile(samples, 99), 2)} ms`,
  );
}

/** Phase 3: fill DRAIN_DEVICES queues while their devices are offline, then time the drain. */
async function drain(server: ServerChild): Promise<void> {
  const creds = await server.provision(DRAIN_DEVICES * 2);
  const senders = await Promise.all(creds.slice(0, DRAIN_DEVICES).map((c) => BenchDevice.connect(server.wsUrl, c)));
  await Promise.all(
    senders.map(async (sender, i) => {
      const { path: p, body } = sendTemplate(creds[DRAIN_DEVICES + i] as BenchCredentials, SIZE);
      let left = DRAIN_PER_DEVICE;
      const lane = async (): Promise<void> => {
        while (left-- > 0) {
          const status = await sender.send(p, body);
          if (status !== 200) throw new Error(`send refused: ${status}`);
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
    }),
  );
  const total = DRAIN_PER_DEVICE * DRAIN_DEVICES;
  const queued = (await server.stats()).queued;
  let received = 0;
  const started = performance.now();
  const receivers = await Promise.all(
    creds.slice(DRAIN_DEVICES).map((c) => BenchDevice.connect(server.wsUrl, c, () => void received++)),
  );
  while (received < total || !receivers.every((r) => r.queueEmpty)) {
    if (performance.now() - started > 120_000) throw new Error('drain did not finish in 120 s');
    await sleep(5);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`  ${fmt(queued)} queued envelopes on ${DRAIN_DEVICES} devices drained in ${fmt(seconds, 2)} s: ${fmt(total / seconds)} msg/s (push, ack, delete)`);
  await Promise.all([...senders, ...receivers].map((d) => d.close()));
}

/** Phase 4: RSS of the server per idle authenticated connection. */
async function idle(): Promise<void> {
  const server = new ServerChild(SERVER_OPTIONS);
  await server.start();
  const creds = await server.provision(IDLE);
  await sleep(500);
  const base = await server.stats();
  const halves = [creds.slice(0, Math.floor(IDLE / 2)), creds.slice(Math.floor(IDLE / 2))];
  const children: ChildProcess[] = [];
  let connected = 0;
  for (const half of halves) {
    const child = fork(path.join(HERE, 'relay-clients.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    const done = new Promise<{ count: number; failed: number }>((resolve) => child.once('message', resolve as (m: unknown) => void));
    child.send({ cmd: 'connect', wsUrl: server.wsUrl, credentials: half });
    const result = await done;
    connected += result.count;
    if (result.failed > 0) console.log(`  (${result.failed} connections failed: descriptor limit)`);
    await sleep(1000);
    const s = await server.stats();
    console.log(
      `  ${fmt(s.connections)} idle authenticated connections: server RSS ${fmt(s.rss / 1048576, 1)} MiB, ${fmt((s.rss - base.rss) / s.connections / 1024, 2)} KiB per connection (the JS heap grew ${fmt((s.heapUsed - base.heapUsed) / s.connections / 1024, 2)} KiB per connection; kernel socket buffers are not in RSS)`,
    );
  }
  for (const child of children) {
    const exited = new Promise((r) => child.once('exit', r));
    child.send({ cmd: 'close' });
    await exited;
  }
  await server.stop();
  if (connected < IDLE) console.log(`  note: ${fmt(connected)} of ${fmt(IDLE)} connections were established`);
}

async function main(): Promise<void> {
  console.log(`bench:relay${quick ? ' (quick)' : ''}: Node ${process.version}, loopback; durable: every send acknowledged after an fdatasync of the SQLite WAL (group commit)`);
  const server = new ServerChild(SERVER_OPTIONS);
  await server.start();
  try {
    const pairs = await connectServerPairs(server, PAIRS);
    let rate = FIXED_RATE * 2;
    if (FIXED_RATE === 0) {
      console.log('1. sustained throughput');
      rate = await throughput(server, pairs);
    }
    console.log('2. end-to-end latency at half the sustained rate');
    await latency(server, pairs, rate / 2);
    await Promise.all([...pairs.senders, ...pairs.receivers].map((d) => d.close()));
    console.log('3. offline-queue drain');
    await drain(server);
  } finally {
    await server.stop();
  }
  console.log('4. memory per idle authenticated connection');
  await idle();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
