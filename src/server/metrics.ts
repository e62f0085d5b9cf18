/**
 * Prometheus metrics (`GET /metrics`). Each server has its own registry, so that several servers in one
 * process (tests) do not share counters. Labels are route patterns and statuses, never ids or paths.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What a node reports about itself and its backends (read at scrape time). */
export interface NodeProbes {
  /** This node's name (label `node_id` of `parley_node_info`). */
  readonly nodeId: string;
  /** The backend kinds: database `sqlite`/`postgres`, bus `local`/`nats`, blobs `filesystem`/`s3`. */
  readonly backends: { readonly database: string; readonly bus: string; readonly blobs: string };
  /** False while the bus is unreachable (always true for the in-process bus). */
  readonly busConnected: () => boolean;
  /** Device subscriptions this node holds on the bus. */
  readonly busSubscriptions: () => number;
  /** Bus messages dropped as undecodable so far. */
  readonly busMalformed: () => number;
  /** The database connection pool, when there is one (PostgreSQL). */
  readonly databasePool?: () => { readonly total: number; readonly idle: number; readonly waiting: number };
}

const SINGLE_NODE: NodeProbes = {
  nodeId: 'local',
  backends: { database: 'sqlite', bus: 'local', blobs: 'filesystem' },
  busConnected: () => true,
  busSubscriptions: () => 0,
  busMalformed: () => 0,
};

/** The server's metrics. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly messagesStored: Counter;
  readonly messagesDelivered: Counter;
  readonly ephemeralDelivered: Counter;
  readonly requestDuration: Histogram<'route' | 'transport' | 'status'>;
  readonly queueDepth: Gauge;
  readonly groupMessages: Counter;
  readonly groupFanOut: Histogram;
  readonly groupChanges: Counter<'kind'>;
  /** Times this node re-read its connected devices' queues after a bus outage or a resync broadcast. */
  readonly busResyncs: Counter;

  /** `queueDepth` and the `node` probes are read at scrape time. */
  constructor(queueDepth: () => Promise<number>, node: NodeProbes = SINGLE_NODE) {
    const registers = [this.registry];
    this.connections = new Gauge({ name: 'parley_ws_connections', help: 'Authenticated WebSocket connections', registers });
    this.messagesStored = new Counter({ name: 'parley_messages_stored_total', help: 'Envelopes durably queued', registers });
    this.messagesDelivered = new Counter({ name: 'parley_messages_delivered_total', help: 'Queued envelopes acknowledged by their device', registers });
    this.ephemeralDelivered = new Counter({ name: 'parley_ephemeral_delivered_total', help: 'Ephemeral envelopes pushed to a connected device', registers });
    this.requestDuration = new Histogram({
      name: 'parley_request_duration_seconds',
      help: 'Request handling time by route pattern',
      labelNames: ['route', 'transport', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.groupMessages = new Counter({ name: 'parley_group_messages_total', help: 'Group messages stored (each once, however many devices it is queued for)', registers });
    this.groupFanOut = new Histogram({
      name: 'parley_group_fanout_devices',
      help: 'Devices a stored group message was queued for',
      buckets: [1, 4, 16, 64, 256, 1024, 4096],
      registers,
    });
    this.groupChanges = new Counter({ name: 'parley_group_changes_total', help: 'Accepted group creates, changes, joins and leaves', labelNames: ['kind'], registers });
    // For an operator of a cluster: which node, on what, is its bus up, is its database pool starved.
    new Gauge({ name: 'parley_node_info', help: 'This node and its backends (always 1)', labelNames: ['node_id', 'database', 'bus', 'blobs'], registers }).set(
      { node_id: node.nodeId, ...node.backends },
      1,
    );
    new Gauge({
      name: 'parley_bus_connected',
      help: 'Whether the bus between nodes is reachable (1) or not (0: deliveries to other nodes wait for the resync after it is back)',
      registers,
      collect() {
        this.set(node.busConnected() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'parley_bus_subscriptions',
      help: 'Device subscriptions this node holds on the bus (devices connected here)',
      registers,
      collect() {
        this.set(node.busSubscriptions());
      },
    });
    let malformedSeen = 0;
    new Counter({
      name: 'parley_bus_malformed_total',
      help: 'Bus messages dropped because they could not be decoded',
      registers,
      collect() {
        const now = node.busMalformed();
        if (now > malformedSeen) this.inc(now - malformedSeen);
        malformedSeen = now;
      },
    });
    this.busResyncs = new Counter({
      name: 'parley_bus_resyncs_total',
      help: "Times this node re-read its connected devices' queues after a bus outage (or another node's resync broadcast)",
      registers,
    });
    const pool = node.databasePool;
    if (pool !== undefined) {
      new Gauge({
        name: 'parley_db_pool_connections',
        help: 'Database pool connections by state: total (open), idle, waiting (requests queued for a connection)',
        labelNames: ['state'],
        registers,
        collect() {
          const p = pool();
          this.set({ state: 'total' }, p.total);
          this.set({ state: 'idle' }, p.idle);
          this.set({ state: 'waiting' }, p.waiting);
        },
      });
    }
    let cpuSeen = { user: 0, system: 0 };
    new Counter({
      name: 'parley_process_cpu_seconds_total',
      help: 'CPU time (user and system) of this node process',
      registers,
      collect() {
        const now = process.cpuUsage();
        this.inc((now.user - cpuSeen.user + now.system - cpuSeen.system) / 1e6);
        cpuSeen = now;
      },
    });
    new Gauge({
      name: 'parley_process_resident_memory_bytes',
      help: 'Resident memory of this node process',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    this.queueDepth = new Gauge({
      name: 'parley_queue_depth',
      help: 'Envelopes waiting in device queues',
      registers,
      async collect() {
        this.set(await queueDepth());
      },
    });
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
