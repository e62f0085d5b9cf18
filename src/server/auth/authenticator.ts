import { ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId, DeviceId, DeviceRef } from '../ids.js';
import type { AccountStore } from '../storage/stores.js';
import { parseLogin, passwordMatches, type Credentials } from './credentials.js';

/** The device a request or socket is authenticated as. */
export interface AuthenticatedDevice {
  readonly accountId: AccountId;
  readonly deviceId: DeviceId;
  readonly ref: DeviceRef;
}

/** A stand-in hash compared when the device does not exist, so that both failures take the same time. */
const NO_DEVICE_HASH = new Uint8Array(32);

/** Checks device credentials against the account store. */
export class Authenticator {
  readonly #accounts: AccountStore;

  constructor(accounts: AccountStore) {
    this.#accounts = accounts;
  }

  /** The authenticated device, or SERVER_UNAUTHORIZED (the same for every kind of failure). */
  async authenticate(credentials: Credentials | undefined): Promise<AuthenticatedDevice> {
    const login = credentials === undefined ? undefined : parseLogin(credentials.login);
    if (credentials === undefined || login === undefined) throw unauthorized();
    const device = await this.#accounts.device(login.accountId, login.deviceId);
    const ok = passwordMatches(device?.passwordHash ?? NO_DEVICE_HASH, credentials.password);
    if (device === undefined || !ok) throw unauthorized();
    return { accountId: device.accountId, deviceId: device.deviceId, ref: device.ref };
  }
}

function unauthorized(): ServerError {
  return new ServerError(ServerErrorCode.Unauthorized, 'missing or wrong credentials');
}
