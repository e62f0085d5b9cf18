/**
 * Prometheus metrics (`GET /metrics`). Each server has its own registry, so that several servers in one
 * process (tests) do not share counters. Labels are route patterns and statuses, never ids or paths.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

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

  /** `queueDepth` is read from the store at scrape time. */
  constructor(queueDepth: () => Promise<number>) {
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
