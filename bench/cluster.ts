// `npm run bench:cluster`: the relay benchmark (bench/relay-load.ts) against a cluster of 1, 2 and 3 server
// nodes on this machine (child processes; one fresh PostgreSQL database per configuration, NATS with a
// subject prefix of the run), and against the single-node SQLite server for comparison. Senders and
// receivers are spread over the nodes round-robin, so with N nodes (N-1)/N of the messages cross the bus,
// as behind a balancer without stickiness.
// Per configuration: sustained delivered messages/s (closed loop), then latency p50/p99 at half that rate
// (open loop), and the CPU used meanwhile by the nodes, PostgreSQL, NATS and the load generator, read from
// /proc, next to the machine's cores: on a small machine everything shares the same cores, and the figures
// say where they went.
// Flags: --quick (3-second phases), --pairs N (default 40), --size BYTES (320), --seconds S (8),
// --nodes 1,2,3, --database-pool N (PostgreSQL connections per node, default 10 as the server's). Variables: PARLEY_BENCH_POSTGRES (maintenance database URL, default
// postgres://postgres@127.0.0.1:5432/postgres), PARLEY_BENCH_NATS (default nats://127.0.0.1:4222).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import pg from 'pg';
import { closedLoop, connectPairs, fmt, openLoop, percentile, type Pairs } from './relay-load.ts';
import { ServerChild } from './server-child.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const quick = args.includes('--quick');
const PAIRS = Number(flag('--pairs', '40'));
const SIZE = Number(flag('--size', '320'));
const SECONDS = Number(flag('--seconds', quick ? '3' : '8'));
const NODES = flag('--nodes', '1,2,3').split(',').map(Number);
const POOL = Number(flag('--database-pool', '10'));
const WINDOW = 48;
const POSTGRES = process.env.PARLEY_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS = process.env.PARLEY_BENCH_NATS ?? 'nats://127.0.0.1:4222';
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICKS = 100;

/** The relay's server: no rate limits in the way. */
const SERVER_OPTIONS = {
  rateLimits: { messagesPerSender: { capacity: 1e9, windowMs: 1000 }, requestsPerConnection: { capacity: 1e9, windowMs: 1000 } },
  limits: { maxQueueDepth: 20_000 },
};

// ---- CPU from /proc ----

/** utime + stime of a process, in ticks (0 when it is gone). */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** Pids whose command name is `name` (postgres backends, nats-server). */
function pidsNamed(name: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/** Busy and total ticks of the whole machine (/proc/stat, every core). */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Ticks by pid of a group of processes. */
type Ticks = Map<number, number>;

interface CpuSample {
  nodes: Ticks;
  postgres: Ticks;
  nats: Ticks;
  generator: number;
  machineBusy: number;
  machineTotal: number;
}

function ticksOf(pids: number[]): Ticks {
  return new Map(pids.map((p) => [p, processTicks(p)]));
}

function sampleCpu(nodePids: number[]): CpuSample {
  const own = process.cpuUsage();
  const m = machineTicks();
  return {
    nodes: ticksOf(nodePids),
    postgres: ticksOf(pidsNamed('postgres')),
    nats: ticksOf(pidsNamed('nats-server')),
    generator: ((own.user + own.system) / 1e6) * TICKS,
    machineBusy: m.busy,
    machineTotal: m.total,
  };
}

/** Ticks used between two samples by the processes alive at the second (a process born meanwhile counts whole). */
function used(before: Ticks, after: Ticks): number {
  let sum = 0;
  for (const [pid, t] of after) sum += Math.max(0, t - (before.get(pid) ?? 0));
  return sum;
}

type Cores = Record<'nodes' | 'postgres' | 'nats' | 'generator' | 'machine' | 'others', number>;

/** CPU used between two samples, in cores (1.0 = one core busy all the time); `others`: the rest of the machine. */
function cores(a: CpuSample, b: CpuSample, seconds: number): Cores {
  const perSecond = (ticks: number): number => ticks / TICKS / seconds;
  const machine = ((b.machineBusy - a.machineBusy) / Math.max(1, b.machineTotal - a.machineTotal)) * cpus().length;
  const nodes = perSecond(used(a.nodes, b.nodes));
  const postgres = perSecond(used(a.postgres, b.postgres));
  const nats = perSecond(used(a.nats, b.nats));
  const generator = perSecond(b.generator - a.generator);
  return { nodes, postgres, nats, generator, machine, others: Math.max(0, machine - nodes - postgres - nats - generator) };
}

// ---- configurations ----

interface Row {
  name: string;
  rate: number;
  p50: number;
  p99: number;
  cpu: Cores;
  /** What PostgreSQL's connections of the benchmark's database were doing (share of samples), top first. */
  waits: Array<[string, number]>;
}

/**
 * Samples pg_stat_activity of `database` every 200 ms until `stop` resolves: what each connection waited
 * for (a lock, a WAL flush, the node: "ClientRead"), counted. Tells a lock or commit bound from a CPU one.
 */
async function sampleWaits(database: string | undefined, stop: Promise<unknown>): Promise<Array<[string, number]>> {
  if (database === undefined) return [];
  const name = new URL(database).pathname.slice(1);
  const admin = new pg.Client({ connectionString: POSTGRES, connectionTimeoutMillis: 5000 });
  await admin.connect();
  const counts = new Map<string, number>();
  let total = 0;
  let done = false;
  void stop.then(() => (done = true));
  try {
    while (!done) {
      const { rows } = await admin.query<{ w: string }>(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU') || ' (' || state || ', ' || split_part(btrim(regexp_replace(query, '\\s+', ' ', 'g')), ' ', 1) || ')' AS w FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [name],
      );
      for (const { w } of rows) {
        counts.set(w, (counts.get(w) ?? 0) + 1);
        total++;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.end();
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([w, n]) => [w, n / Math.max(1, total)]);
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `parley_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(POSTGRES);
    url.pathname = `/${name}`;
    try {
      return await fn(url.toString());
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}

/** Runs the two phases against `servers` (devices spread over them round-robin). */
async function measure(name: string, servers: ServerChild[], database?: string): Promise<Row> {
  const creds = await (servers[0] as ServerChild).provision(PAIRS * 2);
  // Sender i on node i, its receiver on node i+1: with N > 1 nodes every message crosses the bus.
  const nodeOf = (index: number): ServerChild => servers[(index % PAIRS + Math.floor(index / PAIRS)) % servers.length] as ServerChild;
  const pairs: Pairs = await connectPairs(creds, (index) => nodeOf(index).wsUrl);
  const pids = servers.map((s) => s.child.pid as number);
  let cpu: Cores | undefined;
  let waits: Array<[string, number]> = [];
  const { rate } = await closedLoop(pairs, SIZE, WINDOW, SECONDS, async (ms) => {
    const before = sampleCpu(pids);
    const started = performance.now();
    const window = new Promise((r) => setTimeout(r, ms));
    waits = (await Promise.all([sampleWaits(database, window), window]))[0];
    cpu = cores(before, sampleCpu(pids), (performance.now() - started) / 1000);
  });
  const samples = await openLoop(pairs, SIZE, rate / 2, SECONDS);
  await Promise.all([...pairs.senders, ...pairs.receivers].map((d) => d.close()));
  const row: Row = { name, rate, p50: percentile(samples, 50), p99: percentile(samples, 99), cpu: cpu as Cores, waits };
  console.log(
    `  ${name}: ${fmt(rate)} msg/s delivered; at ${fmt(rate / 2)} msg/s latency p50 ${fmt(row.p50, 1)} ms, p99 ${fmt(row.p99, 1)} ms; ` +
      `CPU (cores) nodes ${fmt(row.cpu.nodes, 2)}, PostgreSQL ${fmt(row.cpu.postgres, 2)}, NATS ${fmt(row.cpu.nats, 2)}, load generator ${fmt(row.cpu.generator, 2)}, other processes ${fmt(row.cpu.others, 2)}, whole machine ${fmt(row.cpu.machine, 2)} of ${cpus().length}`,
  );
  if (rate > 0) {
    // CPU per delivered message (send, push and ack): unlike msg/s, it barely moves when other processes share the cores.
    const perMessage = (c: number): string => fmt((c * 1000) / rate, 3);
    console.log(`    CPU per delivered message (ms): nodes ${perMessage(row.cpu.nodes)}, PostgreSQL ${perMessage(row.cpu.postgres)}, NATS ${perMessage(row.cpu.nats)}`);
  }
  if (waits.length > 0) console.log(`    PostgreSQL connections were: ${waits.map(([w, share]) => `${fmt(share * 100)}% ${w}`).join(', ')}`);
  return row;
}

async function sqlite(): Promise<Row> {
  const server = new ServerChild(SERVER_OPTIONS);
  await server.start();
  try {
    return await measure('1 node, SQLite', [server]);
  } finally {
    await server.stop();
  }
}

async function cluster(n: number): Promise<Row> {
  return withDatabase(async (database) => {
    const bus = `${NATS}?prefix=parley_bench_${randomBytes(4).toString('hex')}`;
    // The first node migrates the database; the others start once it has.
    const first = new ServerChild({ ...SERVER_OPTIONS, database, databasePoolSize: POOL, bus, nodeId: 'bench-1' });
    await first.start();
    const rest = Array.from({ length: n - 1 }, (_, i) => new ServerChild({ ...SERVER_OPTIONS, database, databasePoolSize: POOL, bus, nodeId: `bench-${i + 2}` }));
    await Promise.all(rest.map((s) => s.start()));
    const servers = [first, ...rest];
    try {
      return await measure(`${n} node${n > 1 ? 's' : ''}, PostgreSQL + NATS`, servers, database);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });
}

async function main(): Promise<void> {
  console.log(
    `bench:cluster${quick ? ' (quick)' : ''}: Node ${process.version}, ${cpus().length} cores, loopback; ${PAIRS} sender/recipient pairs, ${SIZE}-byte envelopes, ${WINDOW} sends in flight per sender, ${SECONDS} s per phase, ${POOL} PostgreSQL connections per node`,
  );
  const rows: Row[] = [await sqlite()];
  for (const n of NODES) rows.push(await cluster(n));
  const pgRows = rows.slice(1);
  const one = pgRows[0];
  console.log('\nsummary (delivered msg/s, p99 ms at half that rate, CPU cores used: nodes / PostgreSQL / NATS / load generator / other processes / machine):');
  for (const r of rows) {
    const scale = one !== undefined && r !== rows[0] ? ` (x${fmt(r.rate / one.rate, 2)} of 1 node)` : '';
    console.log(
      `  ${r.name.padEnd(30)} ${fmt(r.rate).padStart(7)} msg/s${scale.padEnd(18)} p99 ${fmt(r.p99, 1).padStart(6)} ms   CPU ${fmt(r.cpu.nodes, 2)} / ${fmt(r.cpu.postgres, 2)} / ${fmt(r.cpu.nats, 2)} / ${fmt(r.cpu.generator, 2)} / ${fmt(r.cpu.others, 2)} / ${fmt(r.cpu.machine, 2)} of ${cpus().length}`,
    );
  }
  // Where the time went: the cores the benchmark's own processes used, against what the machine has.
  console.log('');
  for (const r of pgRows) {
    const ours = r.cpu.nodes + r.cpu.postgres + r.cpu.nats + r.cpu.generator;
    const verdict =
      r.cpu.machine >= cpus().length * 0.9
        ? ours >= cpus().length * 0.75
          ? 'CPU-bound: the cores are full, and adding nodes on them only splits the same cores'
          : `the cores were full, but ${fmt(r.cpu.others, 2)} of them went to other processes: take figures on a quiet machine`
        : 'not CPU-bound: the cores had room, so the limit is waiting (PostgreSQL commits, each a WAL flush, at most --database-pool at once per node)';
    const locks = r.waits.filter(([w]) => w.startsWith('Lock:') || w.startsWith('IO:WAL') || w.startsWith('LWLock:WAL')).reduce((a, [, share]) => a + share, 0);
    const waiting = locks >= 0.3 ? `; ${fmt(locks * 100)}% of PostgreSQL's connection samples waited for a row lock or a WAL flush: sends to one device serialise on its queue row, each for a commit` : '';
    console.log(`  ${r.name}: the benchmark used ${fmt(ours, 2)} of ${cpus().length} cores (nodes ${fmt(r.cpu.nodes, 2)}, PostgreSQL ${fmt(r.cpu.postgres, 2)}): ${verdict}${waiting}.`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
