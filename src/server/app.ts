/**
 * The composition root: builds storage, bus, services, router and the WebSocket gateway from a
 * resolved configuration, without opening a port. `main.ts` puts it behind `node:http`; tests can call
 * `app.router.handle(...)` in-process.
 */
import path from 'node:path';
import { Authenticator } from './auth/authenticator.js';
import { FilesystemBlobStore } from './blobs/blob-store.js';
import { LocalMessageBus } from './bus/local.js';
import type { ServerConfig } from './config.js';
import { Router } from './http/router.js';
import { createLogger, type Logger } from './log.js';
import { ServerMetrics } from './metrics.js';
import { RateLimiter } from './rate-limiter.js';
import { buildRoutes } from './routes/index.js';
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
import { Sweeper, type SweepResult } from './sweeper.js';
import { WebSocketGateway } from './ws/gateway.js';
import { ConnectionRegistry } from './ws/registry.js';

/** A server without its listening socket. */
export interface App {
  readonly config: ServerConfig;
  readonly router: Router;
  readonly gateway: WebSocketGateway;
  readonly storage: SqliteStorage;
  readonly registry: ConnectionRegistry;
  readonly bus: LocalMessageBus;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** Runs the expiry sweep now. */
  sweep(): Promise<SweepResult>;
  /** Stops accepting, closes sockets, flushes and closes storage. */
  close(): Promise<void>;
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

/** Builds the server's parts on the data folder of `config`. */
export function createApp(config: ServerConfig): App {
  const logger = createLogger(config.logLevel, config.logDestination);
  const storage = openSqliteStorage(config.dataDir);
  const bus = new LocalMessageBus();
  const metrics = new ServerMetrics(() => storage.messages.totalDepth());
  const registry = new ConnectionRegistry();
  let accepting = true;

  const presence = new PresenceService(storage.accounts, storage.presence, registry, config);
  const blobs = new FilesystemBlobStore(path.join(config.dataDir, 'blobs'), storage.blobs, {
    maxBlobBytes: config.limits.maxBlobBytes,
    maxUploadBytes: config.limits.maxUploadBytes,
    quotaBytes: config.limits.blobQuotaBytes,
    ttlMs: config.blobTtlMs,
    uploadTtlMs: config.blobUploadTtlMs,
    retention: config.blobRetention,
    fetchedGraceMs: config.blobFetchedGraceMs,
  });
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
    registry,
    bus,
    metrics,
    logger,
    sweep: () => sweeper.sweep(),
    async close(): Promise<void> {
      accepting = false;
      sweeper.stop();
      await gateway.close();
      await bus.close();
      await storage.close();
      logger.flush?.();
    },
  };
}
