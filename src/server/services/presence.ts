/**
 * Presence: an account is online while any of its devices has a socket; "last seen" is when its last
 * socket closed. Each account chooses who may see it: everyone, nobody, or an allow-list of account ids
 * (its contacts, uploaded by its client). An account always sees its own presence.
 */
import { create } from '@bufbuild/protobuf';
import { PresenceResponseSchema, PresenceSettings_Visibility, type PresenceResponse, type PresenceSettings } from '../../protocol/gen/service_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { ServerConfig } from '../config.js';
import { badRequest, notFound } from '../errors.js';
import { parseAccountId, type AccountId } from '../ids.js';
import type { AccountStore, PresenceStore, Visibility } from '../storage/stores.js';
import type { ConnectionRegistry } from '../ws/registry.js';

const VISIBILITY: Readonly<Record<number, Visibility>> = {
  [PresenceSettings_Visibility.EVERYONE]: 'everyone',
  [PresenceSettings_Visibility.NOBODY]: 'nobody',
  [PresenceSettings_Visibility.ALLOWED]: 'allowed',
};

/** Presence settings and queries. */
export class PresenceService {
  readonly #accounts: AccountStore;
  readonly #presence: PresenceStore;
  readonly #registry: ConnectionRegistry;
  readonly #config: ServerConfig;

  constructor(accounts: AccountStore, presence: PresenceStore, registry: ConnectionRegistry, config: ServerConfig) {
    this.#accounts = accounts;
    this.#presence = presence;
    this.#registry = registry;
    this.#config = config;
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
    return create(PresenceResponseSchema, { online: this.#registry.isOnline(target), lastSeen: BigInt(record.lastSeen), visible: true });
  }

  /** Records that the account's last socket closed. */
  async wentOffline(accountId: AccountId): Promise<void> {
    await this.#presence.setLastSeen(accountId, this.#config.clock.now());
  }
}
