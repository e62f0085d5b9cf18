/**
 * Web Push (issue #7, docs/server.md "Web Push"), assembled for `app.ts`: the VAPID key pair (the
 * configured one, else the stored one, else a new one stored for every node), the {@link PushNotifier},
 * the bus that feeds it, and the routes.
 */
import webpush from 'web-push';
import type { Registry } from 'prom-client';
import type { MessageBus } from '../bus/bus.js';
import type { ServerConfig } from '../config.js';
import type { Route } from '../http/route.js';
import type { Logger } from '../log.js';
import type { VapidKeyPair } from '../storage/push-store.js';
import type { Storage } from '../storage/stores.js';
import { PushingBus } from './bus.js';
import { DEFAULT_VAPID_SUBJECT } from './config.js';
import { PushNotifier, type PushTransport } from './notifier.js';
import { pushRoutes } from './routes.js';
import { PushService } from './service.js';

export { resolvePushConfig, type PushConfig, type PushOptions } from './config.js';

/** Web Push, ready to wire. */
export interface Push {
  /** The bus every service and socket should use (the real one, observed). */
  readonly bus: MessageBus;
  readonly routes: Route[];
  readonly notifier: PushNotifier;
  readonly vapid: VapidKeyPair;
  /** Stops pushing and waits for requests under way; call before the storage closes. */
  close(): Promise<void>;
}

/** Builds Web Push on `storage` and `bus`; reads (or creates) the VAPID key pair. */
export async function createPush(
  storage: Storage,
  bus: MessageBus,
  config: ServerConfig,
  deps: { readonly logger: Logger; readonly registry: Registry; readonly transport?: PushTransport },
): Promise<Push> {
  const push = config.push;
  const vapid = push.vapidKeys ?? (await storage.push.vapidKeys(webpush.generateVAPIDKeys(), config.clock.now()));
  if (push.vapidSubject === DEFAULT_VAPID_SUBJECT) {
    deps.logger.info({ event: 'vapid_subject_default', subject: DEFAULT_VAPID_SUBJECT }, 'Web Push uses the default VAPID subject; set --vapid-subject to a contact address');
  }
  const notifier = new PushNotifier({
    store: storage.push,
    messages: storage.messages,
    vapid,
    config: push,
    presence: bus.presence,
    logger: deps.logger,
    registry: deps.registry,
    ...(deps.transport === undefined ? {} : { transport: deps.transport }),
  });
  const service = new PushService(storage.push, vapid.publicKey, config.clock, push.allowLoopbackHttp);
  return {
    bus: new PushingBus(bus, notifier),
    routes: pushRoutes(service),
    notifier,
    vapid,
    close: () => notifier.close(),
  };
}
