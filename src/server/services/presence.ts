/**
 * Presence: an account is online while any of its devices has a socket; "last seen" is when its last
 * socket closed. On one node the connection registry knows every socket. In a cluster a
 * {@link PresenceDirectory} (the bus's) adds the other nodes: each node reports its accounts' first and
 * last socket, "online" is "online on any node", and every node records last seen when its last socket
 * of the account closes (the store keeps the latest time, so concurrent writes from several nodes
 * agree). When a node dies without a goodbye, its entries expire and the surviving nodes record the
 * time its accounts were last known online. Each account chooses who may see it: everyone, nobody, or an allow-list of account ids
 * (its contacts, uploaded by its client). An account always sees its own presence.
 */
import { create } from '@bufbuild/protobuf';
import { PresenceResponseSchema, PresenceSettings_Visibility, type PresenceResponse, type PresenceSettings } from '../../protocol/gen/service_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { ServerConfig } from '../config.js';
import { badRequest, notFound } from '../errors.js';
import { parseAccountId, type AccountId } from '../ids.js';
import type { PresenceDirectory } from '../bus/bus.js';
import { drop } from '../drop.js';
import type { Logger } from '../log.js';
import type { AccountStore, PresenceStore, Visibility } from '../storage/stores.js';
import type { ConnectionRegistry } from '../ws/registry.js';

const VISIBILITY: Readonly<Record<number, Visibility>> = {
  [PresenceSettings_Visibility.EVERYONE]: 'everyone',
  [PresenceSettings_Visibility.NOBODY]: 'nobody',
  [PresenceSettings_Visibility.ALLOWED]: 'allowed',
};

/** Optional parts of {@link PresenceService}. */
export interface PresenceServiceOptions {
  /** Presence of the other nodes (a cluster's bus); without it only this node's sockets count. */
  readonly directory?: PresenceDirectory | undefined;
  /** For failures of background last-seen writes. */
  readonly logger?: Logger | undefined;
}

/** Presence settings and queries. */
export class PresenceService {
  readonly #accounts: AccountStore;
  readonly #presence: PresenceStore;
  readonly #registry: ConnectionRegistry;
  readonly #config: ServerConfig;
  readonly #directory: PresenceDirectory | undefined;

  constructor(accounts: AccountStore, presence: PresenceStore, registry: ConnectionRegistry, config: ServerConfig, options: PresenceServiceOptions = {}) {
    this.#accounts = accounts;
    this.#presence = presence;
    this.#registry = registry;
    this.#config = config;
    this.#directory = options.directory;
    const logger = options.logger;
    this.#directory?.onExpired((accountId, lastOnlineAt) => {
      if (this.isOnline(accountId)) return;
      // The directory's times are wall-clock; last seen is on the server's clock (injected in tests).
      const at = this.#config.clock.now() - Math.max(0, Date.now() - lastOnlineAt);
      drop(this.#presence.setLastSeen(accountId, at), (err) => logger?.warn({ err }, 'recording last seen of an expired presence failed'));
    });
  }

  /** True while a device of the account has a socket on this node or (with a directory) any other. */
  isOnline(accountId: AccountId): boolean {
    return this.#registry.isOnline(accountId) || (this.#directory?.isOnline(accountId) ?? false);
  }

  async setSettings(device: AuthenticatedDevice, settings: PresenceSettings): Promise<void> {
    const visibility = VISIBILITY[settings.visibility];
    if (visibility === undefined) throw badRequest('unknown visibility');
    if (settings.allowedAccountIds.length > this.#config.limits.maxPresenceAllowed) throw badRequest('allow-list too long');
    const allowed = settings.allowedAccountIds.map(parseAccountId);
    await this.#presence.setSettings(device.accountId, visibility, allowed);
  }

  async get(requester: AuthenticatedDevice, target: AccountId): Promise<PresenceResponse> {
    if ((await this.#accounts.byId(target)) === undefined) throw notFound('account');
    const record = await this.#presence.get(target);
    const visible =
      requester.accountId === target ||
      record.visibility === 'everyone' ||
      (record.visibility === 'allowed' && record.allowed.has(requester.accountId));
    if (!visible) return create(PresenceResponseSchema, { online: false, lastSeen: 0n, visible: false });
    return create(PresenceResponseSchema, { online: this.isOnline(target), lastSeen: BigInt(record.lastSeen), visible: true });
  }

  /** The account's first socket on this node opened. */
  wentOnline(accountId: AccountId): void {
    this.#directory?.join(accountId);
  }

  /**
   * The account's last socket on this node closed: records last seen (also when another node still has
   * a socket of it: that node records a later time when its own last socket closes).
   */
  async wentOffline(accountId: AccountId): Promise<void> {
    this.#directory?.leave(accountId);
    await this.#presence.setLastSeen(accountId, this.#config.clock.now());
  }
}
