/**
 * The key directory: devices upload their prekeys (signatures checked against the device's own identity
 * key: the account's for the primary, its own for a linked companion), others fetch bundles of the
 * account's primary and of the companions its signed device list names, with that list. Each one-time key is handed out at most once (the store claims keys with
 * DELETE ... RETURNING in one transaction); when a device runs out of one-time Kyber keys its
 * last-resort key is returned instead.
 */
import { create } from '@bufbuild/protobuf';
import {
  DeviceBundleSchema,
  KeyStatusResponseSchema,
  KyberPreKeySchema,
  PreKeyResponseSchema,
  PreKeySchema,
  SignedPreKeySchema,
  type KeyStatusResponse,
  type PreKeyResponse,
  type SetKeysRequest,
} from '../../protocol/gen/service_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { ServerConfig } from '../config.js';
import { notFound, ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId, DeviceId } from '../ids.js';
import { RateLimiter } from '../rate-limiter.js';
import type { AccountStore, DeviceStore, KeyStore, SignedKey } from '../storage/stores.js';
import { decodeSignedDeviceList } from '../../protocol/device-identity.js';
import { checkKyberPreKey, checkOneTimeKey, checkSignedPreKey, parseIdentityKey } from './key-validation.js';

/** Uploads, counts and bundle fetches. */
export class KeyDirectory {
  readonly #accounts: AccountStore;
  readonly #keys: KeyStore;
  readonly #devices: DeviceStore;
  readonly #config: ServerConfig;
  readonly #fetchLimiter: RateLimiter;

  constructor(accounts: AccountStore, keys: KeyStore, devices: DeviceStore, config: ServerConfig) {
    this.#accounts = accounts;
    this.#keys = keys;
    this.#devices = devices;
    this.#config = config;
    this.#fetchLimiter = new RateLimiter(config.rateLimits.keyFetchPerAccount, config.clock);
  }

  /** Stores the keys of `request` for the calling device, after checking every signature. */
  async setKeys(device: AuthenticatedDevice, request: SetKeysRequest): Promise<void> {
    const { maxKeysPerUpload, maxStoredKeys } = this.#config.limits;
    if (request.preKeys.length > maxKeysPerUpload || request.kyberPreKeys.length > maxKeysPerUpload) {
      throw new ServerError(ServerErrorCode.TooManyKeys, `at most ${maxKeysPerUpload} one-time keys of each kind per upload`);
    }
    const record = await this.#accounts.device(device.accountId, device.deviceId);
    if (record === undefined || record.ref !== device.ref) throw new ServerError(ServerErrorCode.Unauthorized, 'device no longer exists');
    const identity = parseIdentityKey(record.identityKey);
    const preKeys = request.preKeys.map(checkOneTimeKey);
    const kyberPreKeys: SignedKey[] = [];
    for (const key of request.kyberPreKeys) kyberPreKeys.push(await checkKyberPreKey(identity, key));
    const signedPreKey = request.signedPreKey === undefined ? undefined : await checkSignedPreKey(identity, request.signedPreKey);
    const kyberLastResortKey = request.kyberLastResortPreKey === undefined ? undefined : await checkKyberPreKey(identity, request.kyberLastResortPreKey);
    const result = await this.#keys.setKeys(device.ref, { preKeys, kyberPreKeys, signedPreKey, kyberLastResortKey }, maxStoredKeys, this.#config.clock.now());
    if (!result.ok) throw new ServerError(ServerErrorCode.TooManyKeys, `at most ${maxStoredKeys} one-time keys of each kind are stored`);
  }

  /** Key counts of the calling device. */
  async status(device: AuthenticatedDevice): Promise<KeyStatusResponse> {
    const status = await this.#keys.status(device.ref);
    return create(KeyStatusResponseSchema, {
      preKeyCount: status.preKeys,
      kyberPreKeyCount: status.kyberPreKeys,
      signedPreKeyUploadedAt: BigInt(status.signedPreKeyUploadedAt),
    });
  }

  /**
   * Bundles of one device (`deviceId`) or of every listed device (`'*'`: the primary and the companions the
   * account's signed device list names) of an account, claiming one-time keys, with that list. A companion
   * that is not listed (yet) is not served: 404.
   */
  async fetch(requester: AuthenticatedDevice, accountId: AccountId, deviceId: DeviceId | '*'): Promise<PreKeyResponse> {
    this.#fetchLimiter.check(requester.accountId, 'prekey fetches');
    const account = await this.#accounts.byId(accountId);
    if (account === undefined) throw notFound('account');
    const listed = (await this.#accounts.devices(accountId)).filter((d) => d.listed);
    const devices = deviceId === '*' ? listed : listed.filter((d) => d.deviceId === deviceId);
    if (devices.length === 0) throw notFound('device');
    const claimed = await this.#keys.claim(devices.map((d) => d.ref));
    const list = await this.#devices.deviceList(accountId);
    return create(PreKeyResponseSchema, {
      identityKey: account.identityKey,
      deviceList: list === undefined ? undefined : decodeSignedDeviceList(list.signedList),
      devices: devices.map((d, i) => {
        const keys = claimed[i];
        return create(DeviceBundleSchema, {
          deviceId: d.deviceId,
          registrationId: d.registrationId,
          signedPreKey: keys?.signedPreKey === undefined ? undefined : create(SignedPreKeySchema, keys.signedPreKey),
          preKey: keys?.preKey === undefined ? undefined : create(PreKeySchema, keys.preKey),
          kyberPreKey: keys?.kyberPreKey === undefined ? undefined : create(KyberPreKeySchema, keys.kyberPreKey),
          identityKey: d.identityKey,
        });
      }),
    });
  }
}
