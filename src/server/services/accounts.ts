import { create } from '@bufbuild/protobuf';
import { LookupResponseSchema, WhoAmIResponseSchema, type LookupResponse, type WhoAmIResponse } from '../../protocol/gen/service_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { ServerConfig } from '../config.js';
import { notFound, ServerError, ServerErrorCode } from '../errors.js';
import { parsePhoneNumber } from '../ids.js';
import { RateLimiter } from '../rate-limiter.js';
import type { AccountStore } from '../storage/stores.js';

/** Who-am-I and number lookup (rate limited per account: lookups enumerate the directory). */
export class AccountService {
  readonly #accounts: AccountStore;
  readonly #lookupLimiter: RateLimiter;

  constructor(accounts: AccountStore, config: ServerConfig) {
    this.#accounts = accounts;
    this.#lookupLimiter = new RateLimiter(config.rateLimits.lookupPerAccount, config.clock);
  }

  async whoami(device: AuthenticatedDevice): Promise<WhoAmIResponse> {
    const account = await this.#accounts.byId(device.accountId);
    if (account === undefined) throw new ServerError(ServerErrorCode.Unauthorized, 'account no longer exists');
    return create(WhoAmIResponseSchema, { accountId: account.id, deviceId: device.deviceId, number: account.number });
  }

  async lookup(requester: AuthenticatedDevice, numberText: string): Promise<LookupResponse> {
    const number = parsePhoneNumber(numberText);
    this.#lookupLimiter.check(requester.accountId, 'lookups');
    const account = await this.#accounts.byNumber(number);
    if (account === undefined) throw notFound('number');
    return create(LookupResponseSchema, { accountId: account.id });
  }
}
