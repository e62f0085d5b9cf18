/**
 * Linked devices: provisioning codes, provisioning messages, linking a companion, the account's devices,
 * its signed device list, and removing a device. The server checks every signature it can with
 * `src/protocol/device-identity.ts` (the account signature against the account's identity key, the device
 * signature and the companion's prekey signatures against the companion's own key, the list signature
 * against the account key), so a companion the primary did not vouch for cannot be added through the API.
 * It cannot read provisioning messages (encrypted under the linking secret, which only the QR code carries).
 */
import { randomBytes } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { NodeCryptoProvider } from '../../node/crypto-provider.js';
import { decodeDeviceIdentity, decodeSignedDeviceList, verifyDeviceIdentity, verifySignedDeviceList } from '../../protocol/device-identity.js';
import { ProtocolError, ProtocolErrorCode } from '../../protocol/errors.js';
import {
  DeviceIdentitySchema,
  DeviceInfoSchema,
  DevicesResponseSchema,
  LinkDeviceResponseSchema,
  ProvisioningResponseSchema,
  ProvisionEnvelopeSchema,
  type DevicesResponse,
  type LinkDeviceRequest,
  type LinkDeviceResponse,
  type ProvisionEnvelope,
  type ProvisioningResponse,
} from '../../protocol/gen/service_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import { generatePassword, sha256 } from '../auth/credentials.js';
import type { MessageBus } from '../bus/bus.js';
import type { ServerConfig } from '../config.js';
import { badRequest, forbidden, notFound, ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId, DeviceId } from '../ids.js';
import type { Logger } from '../log.js';
import { RateLimiter } from '../rate-limiter.js';
import type { AccountRecord, AccountStore, DeviceStore, ProvisioningStore } from '../storage/stores.js';
import { checkKyberPreKey, checkSignedPreKey, parseIdentityKey } from './key-validation.js';
import { MAX_DEVICE_NAME, MAX_REGISTRATION_ID } from './registration.js';

const crypto = new NodeCryptoProvider();

/** The primary's device id. */
export const PRIMARY = 1 as DeviceId;
/** A link id: 16 random bytes as 32 lowercase hex digits. */
const LINK_ID = /^[0-9a-f]{32}$/;
/** A provisioning code: 24 random bytes, base64url (32 characters). */
const CODE = /^[A-Za-z0-9_-]{32}$/;

/** Parses a link id (exactly 32 lowercase hex digits; 400 otherwise). */
export function parseLinkId(value: string): string {
  if (!LINK_ID.test(value)) throw badRequest('malformed link id');
  return value;
}

function invalidCode(): ServerError {
  return new ServerError(ServerErrorCode.InvalidCode, 'wrong, expired or used provisioning code');
}

/** Maps a failure of the protocol checks to the server's codes: undecodable is 400, not vouched for is 403. */
function identityRefused(err: unknown): never {
  if (ProtocolError.is(err, ProtocolErrorCode.InvalidDeviceIdentity)) throw forbidden('the device identity is not vouched for by the account');
  if (ProtocolError.is(err)) throw badRequest('malformed device identity', err);
  throw err;
}

/** What the device service needs. */
export interface DeviceServiceDeps {
  readonly accounts: AccountStore;
  readonly devices: DeviceStore;
  readonly provisioning: ProvisioningStore;
  readonly bus: MessageBus;
  readonly config: ServerConfig;
  readonly logger: Logger;
}

/** Linked devices over the device and provisioning stores. */
export class DeviceService {
  readonly #deps: DeviceServiceDeps;
  readonly #perAccount: RateLimiter;
  readonly #perAddress: RateLimiter;

  constructor(deps: DeviceServiceDeps) {
    this.#deps = deps;
    this.#perAccount = new RateLimiter(deps.config.rateLimits.devicesPerAccount, deps.config.clock);
    this.#perAddress = new RateLimiter(deps.config.rateLimits.linkPerAddress, deps.config.clock);
  }

  #now(): number {
    return this.#deps.config.clock.now();
  }

  /** 403 unless the caller is the account's primary. */
  #requirePrimary(device: AuthenticatedDevice, what: string): void {
    if (device.deviceId !== PRIMARY) throw forbidden(`only the primary device ${what}`);
  }

  async #account(id: AccountId): Promise<AccountRecord> {
    const account = await this.#deps.accounts.byId(id);
    if (account === undefined) throw new ServerError(ServerErrorCode.Unauthorized, 'account no longer exists');
    return account;
  }

  /** `POST /v1/devices/provisioning`: reserves a device id and a one-time code for it. */
  async provision(device: AuthenticatedDevice): Promise<ProvisioningResponse> {
    this.#requirePrimary(device, 'links devices');
    this.#perAccount.check(device.accountId, 'device operations');
    const { config } = this.#deps;
    const code = randomBytes(24).toString('base64url');
    const now = this.#now();
    const result = await this.#deps.devices.reserve(device.accountId, sha256(code), now + config.provisioningTtlMs, config.limits.maxLinkedDevices, now);
    if (result.kind === 'full') {
      throw new ServerError(ServerErrorCode.TooManyDevices, `an account links at most ${config.limits.maxLinkedDevices} devices besides its primary (pending codes included)`);
    }
    this.#deps.logger.info({ event: 'provisioning_code_issued', accountId: device.accountId, deviceId: result.deviceId }, 'provisioning code issued');
    return create(ProvisioningResponseSchema, { code, deviceId: result.deviceId, expiresInSeconds: Math.floor(config.provisioningTtlMs / 1000) });
  }

  /** `PUT /v1/provisioning/{link_id}`: leaves an encrypted provisioning message (the primary only). */
  async putProvisioning(device: AuthenticatedDevice, linkId: string, envelope: ProvisionEnvelope): Promise<void> {
    this.#requirePrimary(device, 'provisions devices');
    this.#perAccount.check(device.accountId, 'device operations');
    const max = this.#deps.config.limits.maxProvisioningBytes;
    if (envelope.body.length === 0) throw badRequest('empty provisioning message');
    if (envelope.body.length > max) throw new ServerError(ServerErrorCode.PayloadTooLarge, `provisioning message above ${max} bytes`);
    await this.#deps.provisioning.put(linkId, envelope.body, this.#now() + this.#deps.config.provisioningTtlMs);
  }

  /** `GET /v1/provisioning/{link_id}` (unauthenticated): the message, deleted as it is read; 404 until it is there. */
  async takeProvisioning(linkId: string, remoteAddress: string): Promise<ProvisionEnvelope> {
    this.#perAddress.check(remoteAddress, 'linking requests from this address');
    const body = await this.#deps.provisioning.take(linkId, this.#now());
    if (body === undefined) throw notFound('provisioning message');
    return create(ProvisionEnvelopeSchema, { body });
  }

  /** `POST /v1/devices/link` (unauthenticated; the code authorises): registers a companion. */
  async link(request: LinkDeviceRequest, remoteAddress: string): Promise<LinkDeviceResponse> {
    this.#perAddress.check(remoteAddress, 'linking requests from this address');
    if (!CODE.test(request.code)) throw invalidCode();
    if (!Number.isInteger(request.registrationId) || request.registrationId < 1 || request.registrationId > MAX_REGISTRATION_ID) {
      throw badRequest('registration id out of range');
    }
    if (request.deviceName.length > MAX_DEVICE_NAME) throw badRequest('device name too long');
    if (request.identity === undefined) throw badRequest('missing device identity');
    const codeHash = sha256(request.code);
    const now = this.#now();
    const pending = await this.#deps.devices.pendingCode(codeHash, now);
    if (pending === undefined) throw invalidCode();
    const account = await this.#deps.accounts.byId(pending.accountId);
    if (account === undefined) throw invalidCode();
    // Everything is checked before the code is consumed: a malformed or forged request does not burn it.
    const accountKey = parseIdentityKey(account.identityKey);
    const verified = await verifyDeviceIdentity(crypto, accountKey, request.identity, { accountId: account.id, deviceId: pending.deviceId }).catch(identityRefused);
    const signedPreKey = await checkSignedPreKey(verified.identityKey, request.signedPreKey);
    const kyberLastResortKey = await checkKyberPreKey(verified.identityKey, request.kyberLastResortPreKey);
    const password = generatePassword();
    const result = await this.#deps.devices.link({
      codeHash,
      accountId: account.id,
      deviceId: pending.deviceId,
      accountKey: account.identityKey,
      identityKey: verified.identityKey.serialized,
      identity: toBinary(DeviceIdentitySchema, request.identity),
      registrationId: request.registrationId,
      passwordHash: sha256(password),
      name: request.deviceName,
      signedPreKey,
      kyberLastResortKey,
      maxCompanions: this.#deps.config.limits.maxLinkedDevices,
      now,
    });
    if (result.kind === 'invalid-code') throw invalidCode();
    if (result.kind === 'full') throw new ServerError(ServerErrorCode.TooManyDevices, 'the account has its maximum of linked devices');
    this.#deps.logger.info({ event: 'device_linked', accountId: account.id, deviceId: result.device.deviceId }, 'device linked');
    return create(LinkDeviceResponseSchema, { accountId: account.id, deviceId: result.device.deviceId, password });
  }

  /** `GET /v1/devices`: the account's devices and its current signed device list. */
  async list(device: AuthenticatedDevice): Promise<DevicesResponse> {
    await this.#account(device.accountId);
    const devices = await this.#deps.accounts.devices(device.accountId);
    const stored = await this.#deps.devices.deviceList(device.accountId);
    return create(DevicesResponseSchema, {
      devices: devices.map((d) =>
        create(DeviceInfoSchema, {
          deviceId: d.deviceId,
          registrationId: d.registrationId,
          identityKey: d.identityKey,
          identity: d.identity === undefined ? undefined : decodeDeviceIdentity(d.identity),
          deviceName: d.name,
          createdAt: BigInt(d.createdAt),
          lastSeen: 0n,
        }),
      ),
      deviceList: stored === undefined ? undefined : decodeSignedDeviceList(stored.signedList),
    });
  }

  /** `PUT /v1/devices/list` (the primary only): verifies and stores a newer signed device list. */
  async putList(device: AuthenticatedDevice, body: Uint8Array): Promise<void> {
    this.#requirePrimary(device, 'publishes the device list');
    this.#perAccount.check(device.accountId, 'device operations');
    const account = await this.#account(device.accountId);
    const accountKey = parseIdentityKey(account.identityKey);
    let verified;
    try {
      verified = await verifySignedDeviceList(crypto, accountKey, body, account.id);
    } catch (err) {
      if (ProtocolError.is(err)) throw badRequest(`the device list does not verify (${err.code})`, err);
      throw err;
    }
    if (verified.version < 1n || verified.version > BigInt(Number.MAX_SAFE_INTEGER)) throw badRequest('device list version out of range');
    const version = Number(verified.version);
    const devices = new Map<DeviceId, Uint8Array>();
    for (const [deviceId, key] of verified.devices) devices.set(deviceId as DeviceId, key.serialized);
    const result = await this.#deps.devices.putDeviceList(account.id, { version, signedList: body, devices, accountKey: account.identityKey, now: this.#now() });
    if (result.kind === 'stale-version') throw new ServerError(ServerErrorCode.Conflict, 'the device list version must be higher than the stored one');
    if (result.kind === 'mismatch') throw new ServerError(ServerErrorCode.Conflict, 'the device list names a device that does not exist or has another identity key');
    this.#deps.logger.info({ event: 'device_list_updated', accountId: account.id, version, companions: devices.size }, 'device list updated');
  }

  /** `DELETE /v1/devices/{device_id}`: the primary removes a companion, or a companion removes itself. */
  async remove(device: AuthenticatedDevice, deviceId: DeviceId): Promise<void> {
    if (deviceId === PRIMARY) throw badRequest('the primary cannot be removed (register the number again instead)');
    if (device.deviceId !== PRIMARY && device.deviceId !== deviceId) throw forbidden('a companion removes only itself');
    const ref = await this.#deps.devices.remove(device.accountId, deviceId);
    if (ref === undefined) throw notFound('device');
    this.#deps.logger.info({ event: 'device_removed', accountId: device.accountId, deviceId, by: device.deviceId }, 'device removed');
    // Close its socket once this response is on its way (a companion removing itself asks over that socket).
    setImmediate(() => this.#deps.bus.publishToDevice(ref, { kind: 'removed' }));
  }
}

