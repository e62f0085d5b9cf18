/**
 * The composition root: opens storage (SQLite or PostgreSQL), the bus (in-process or NATS) and the blob
 * store (files or S3), then builds services, router and the WebSocket gateway from a resolved
 * configuration, without opening a port. `main.ts` puts it behind `node:http`; tests can call
 * `app.router.handle(...)` in-process.
 *
 * The cluster backends are imported on demand, so a single node never loads `pg`, `nats` or the AWS SDK.
 */
import { Authenticator } from './auth/authenticator.js';
import { FilesystemBlobStore, type BlobLimits, type BlobStore } from './blobs/blob-store.js';
import type { MessageBus } from './bus/bus.js';
import { LocalMessageBus } from './bus/local.js';
import type { BlobStorageConfig, BusConfig, DatabaseConfig, ServerConfig } from './config.js';
import { Router } from './http/router.js';
import { createLogger, type Logger } from './log.js';
import { ServerMetrics } from './metrics.js';
import { RateLimiter } from './rate-limiter.js';
import { createPush, type Push } from './push/index.js';
import { buildRoutes } from './routes/index.js';
import { BackupService } from './services/backups.js';
import { AccountService } from './services/accounts.js';
import { DeviceService } from './services/devices.js';
import { GroupService } from './services/groups.js';
import { KeyDirectory } from './services/key-directory.js';
import { LogVerificationSender } from './services/log-verification-sender.js';
import { MessageService } from './services/messages.js';
import { PresenceService } from './services/presence.js';
import { RegistrationService } from './services/registration.js';
import type { VerificationSender } from './services/verification-sender.js';
import { WebhookVerificationSender } from './services/webhook-verification-sender.js';
import { openSqliteStorage, type SqliteStorage } from './storage/sqlite/index.js';
import type { BlobIndex, Storage } from './storage/stores.js';
import { Sweeper, type SweepResult } from './sweeper.js';
import { WebSocketGateway } from './ws/gateway.js';
import { ConnectionRegistry } from './ws/registry.js';

/** A server without its listening socket. */
export interface App {
  readonly config: ServerConfig;
  readonly router: Router;
  readonly gateway: WebSocketGateway;
  readonly storage: Storage;
  /** The SQLite storage when that is the backend (tests and benchmarks inspect its file and writer). */
  readonly sqlite: SqliteStorage | undefined;
  readonly registry: ConnectionRegistry;
  readonly bus: MessageBus;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** Web Push: the VAPID key pair and the notifier. */
  readonly push: Push;
  /** Runs the expiry sweep now. */
  sweep(): Promise<SweepResult>;
  /**
   * Graceful shutdown: stops accepting (`/healthz` answers 503, so a balancer stops sending), lets running
   * WebSocket requests answer, closes every socket with 1001 (clients reconnect, to another node of a
   * cluster), waits for `pending` (HTTP requests still running, see `main.ts`), then leaves the bus and
   * flushes and closes the blob store and the storage. Nothing acknowledged is lost.
   */
  close(pending?: Promise<unknown>): Promise<void>;
}

function createSender(config: ServerConfig, logger: Logger): VerificationSender {
  const option = config.verificationSender;
  switch (option.kind) {
    case 'log':
      return new LogVerificationSender(logger);
    case 'webhook':
      return new WebhookVerificationSender(option.url, option.timeoutMs);
    case 'custom':
      return option.sender;
  }
}

/** `sqlite` of an app that runs on SQLite; throws for another backend (for tests and benchmarks). */
export function sqliteStorage(app: App): SqliteStorage {
  if (app.sqlite === undefined) throw new Error(`this server runs on ${app.config.database.kind}, not SQLite`);
  return app.sqlite;
}

/** `url` without its password, for logs and errors. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A connection pool's counts (pg.Pool's). */
interface PoolCounts {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

/** Opens the database: SQLite in the data folder, or PostgreSQL (migrated on open). */
async function openStorage(database: DatabaseConfig): Promise<{ storage: Storage; sqlite: SqliteStorage | undefined; pool: PoolCounts | undefined }> {
  if (database.kind === 'sqlite') {
    const sqlite = openSqliteStorage(database.dir);
    return { storage: sqlite, sqlite, pool: undefined };
  }
  try {
    const { openPostgresStorage } = await import('./storage/postgres/index.js');
    const storage = await openPostgresStorage(database.url, { poolSize: database.poolSize });
    return { storage, sqlite: undefined, pool: storage.pool };
  } catch (err) {
    throw new Error(`--database: cannot open PostgreSQL ${redact(database.url)}: ${message(err)}`, { cause: err });
  }
}

/** A bus with what the metrics read of it. */
interface OpenBus {
  readonly bus: MessageBus;
  readonly connected: () => boolean;
  readonly subscriptions: () => number;
  readonly malformed: () => number;
}

/** Connects the bus: in-process, or NATS (subjects under the configured prefix). */
async function openBus(bus: BusConfig, nodeId: string, logger: Logger): Promise<OpenBus> {
  if (bus.kind === 'local') {
    const local = new LocalMessageBus();
    return { bus: local, connected: () => true, subscriptions: () => local.topicCount, malformed: () => 0 };
  }
  try {
    const { connectNatsBus } = await import('./bus/nats.js');
    const nats = await connectNatsBus(bus.servers, { nodeId, logger, subjectPrefix: bus.subjectPrefix });
    return { bus: nats, connected: () => nats.connected, subscriptions: () => nats.subscriptionCount, malformed: () => nats.malformedCount };
  } catch (err) {
    throw new Error(`--bus: cannot connect to NATS ${bus.servers}: ${message(err)}`, { cause: err });
  }
}

/** The bucket of an `s3://` URL without its query (which can carry keys), for logs and errors. */
function bucketOf(url: string): string {
  try {
    const u = new URL(url);
    return `s3://${u.host}${u.pathname}`;
  } catch {
    return 's3://(unparseable URL)';
  }
}

/** A blob store and what closing it takes. */
interface OpenBlobs {
  readonly blobs: BlobStore;
  readonly close: () => void;
}

/** Opens the blob store: files in a folder, or an S3-compatible bucket (checked, created if missing). */
async function openBlobs(config: BlobStorageConfig, index: BlobIndex, limits: BlobLimits): Promise<OpenBlobs> {
  if (config.kind === 'filesystem') return { blobs: new FilesystemBlobStore(config.dir, index, limits), close: () => undefined };
  let store;
  try {
    const { createS3BlobStore } = await import('./blobs/s3-store.js');
    store = createS3BlobStore(config.url, index, limits);
    await store.init();
  } catch (err) {
    store?.close();
    throw new Error(`--blobs: cannot open the S3 bucket ${bucketOf(config.url)}: ${message(err)}`, { cause: err });
  }
  const s3 = store;
  return { blobs: s3, close: () => s3.close() };
}

/**
 * Builds the server's parts: opens the database, bus and blob store `config` names (creating and
 * migrating the database when needed). Rejects with an error naming the flag when a backend cannot be
 * opened; whatever was opened by then is closed again.
 */
export async function createApp(config: ServerConfig): Promise<App> {
  const logger = createLogger(config.logLevel, config.logDestination).child({ node: config.nodeId });
  const { storage, sqlite, pool } = await openStorage(config.database);
  let opened: OpenBus;
  let openedBlobs: OpenBlobs;
  try {
    opened = await openBus(config.bus, config.nodeId, logger);
    try {
      openedBlobs = await openBlobs(config.blobs, storage.blobs, {
        maxBlobBytes: config.limits.maxBlobBytes,
        maxUploadBytes: config.limits.maxUploadBytes,
        quotaBytes: config.limits.blobQuotaBytes,
        ttlMs: config.blobTtlMs,
        uploadTtlMs: config.blobUploadTtlMs,
        retention: config.blobRetention,
        fetchedGraceMs: config.blobFetchedGraceMs,
      });
    } catch (err) {
      await opened.bus.close();
      throw err;
    }
  } catch (err) {
    await storage.close();
    throw err;
  }
  if (config.database.kind === 'postgres' && config.blobs.kind === 'filesystem') {
    logger.warn(
      { event: 'blobs_on_node', dir: config.blobs.dir },
      'blobs are stored in this node\'s data folder: with more than one node, use --blobs s3://... or a folder every node shares',
    );
  }
  logger.info(
    { event: 'backends', database: config.database.kind, bus: config.bus.kind, blobs: config.blobs.kind },
    'storage, bus and blob store open',
  );
  const blobs = openedBlobs.blobs;
  const metrics = new ServerMetrics(() => storage.messages.totalDepth(), {
    nodeId: config.nodeId,
    backends: { database: config.database.kind, bus: config.bus.kind, blobs: config.blobs.kind },
    busConnected: opened.connected,
    busSubscriptions: opened.subscriptions,
    busMalformed: opened.malformed,
    ...(pool === undefined ? {} : { databasePool: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }) }),
  });
  let push: Push;
  try {
    push = await createPush(storage, opened.bus, config, { logger, registry: metrics.registry });
  } catch (err) {
    await opened.bus.close();
    openedBlobs.close();
    await storage.close();
    throw err;
  }
  // Every service publishes through the push notifier's view of the bus (src/server/push/bus.ts).
  const bus = push.bus;
  bus.onResync(() => metrics.busResyncs.inc());
  const registry = new ConnectionRegistry();
  let accepting = true;

  // In a cluster, presence spans the nodes (the bus carries it); alone, this node's sockets are all there is.
  const presence = new PresenceService(storage.accounts, storage.presence, registry, config, { directory: bus.presence, logger });
  const routes = buildRoutes({
    registration: new RegistrationService({
      accounts: storage.accounts,
      verification: storage.verification,
      sender: createSender(config, logger),
      bus,
      config,
      logger,
    }),
    accounts: new AccountService(storage.accounts, config),
    keys: new KeyDirectory(storage.accounts, storage.keys, storage.devices, config),
    messages: new MessageService(storage.accounts, storage.messages, bus, config, metrics),
    presence,
    groups: new GroupService({ accounts: storage.accounts, groups: storage.groups, bus, config, metrics, logger }),
    devices: new DeviceService({ accounts: storage.accounts, devices: storage.devices, provisioning: storage.provisioning, bus, config, logger }),
    blobs,
    backups: new BackupService(storage.backups, storage.blobs, config),
    turn: config.turn,
    push: push.routes,
    config,
    metrics,
    accepting: () => accepting,
  });
  const authenticator = new Authenticator(storage.accounts);
  const router = new Router(routes, authenticator, metrics, logger);
  const gateway = new WebSocketGateway(authenticator, {
    router,
    registry,
    presence,
    requestLimiter: new RateLimiter(config.rateLimits.requestsPerConnection, config.clock),
    messages: storage.messages,
    bus,
    config,
    metrics,
    logger,
  });
  const sweeper = new Sweeper(
    { messages: storage.messages, verification: storage.verification, devices: storage.devices, provisioning: storage.provisioning, blobs },
    config.clock,
    config,
    config.sweepIntervalMs,
    logger,
  );

  return {
    config,
    router,
    gateway,
    storage,
    sqlite,
    registry,
    bus,
    metrics,
    logger,
    push,
    sweep: () => sweeper.sweep(),
    async close(pending?: Promise<unknown>): Promise<void> {
      accepting = false;
      sweeper.stop();
      await gateway.close();
      await pending;
      await push.close();
      await bus.close();
      openedBlobs.close();
      await storage.close();
      logger.flush?.();
    },
  };
}
