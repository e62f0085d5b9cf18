/**
 * Registration: verification codes and account creation.
 *
 * A code is 6 random digits, stored as its SHA-256, valid for `codeTtlMs` and for `codeAttempts` wrong
 * guesses. Requests are rate limited per number and per client address, registrations per address.
 * Test numbers (configured) have fixed codes: nothing is sent, no code is stored, and they are exempt
 * from the rate limits (their codes are public by design; only the operator can configure them).
 */
import { randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { RegisterResponseSchema, type RegisterRequest, type RegisterResponse } from '../../protocol/gen/service_pb.js';
import { generatePassword, sha256 } from '../auth/credentials.js';
import type { MessageBus } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import { badRequest, ServerError, ServerErrorCode } from '../errors.js';
import { parsePhoneNumber, type AccountId, type PhoneNumber } from '../ids.js';
import type { Logger } from '../log.js';
import { RateLimiter } from '../rate-limiter.js';
import type { AccountStore, VerificationStore } from '../storage/stores.js';
import { checkKyberPreKey, checkSignedPreKey, parseIdentityKey } from './key-validation.js';
import type { VerificationSender } from './verification-sender.js';

/** Longest encrypted device name accepted. */
export const MAX_DEVICE_NAME = 256;
/** Registration ids are 14-bit (libsignal generates 1..16380). */
export const MAX_REGISTRATION_ID = 0x3fff;

/** What registration needs. */
export interface RegistrationDeps {
  readonly accounts: AccountStore;
  readonly verification: VerificationStore;
  readonly sender: VerificationSender;
  readonly bus: MessageBus;
  readonly config: ServerConfig;
  readonly logger: Logger;
}

/** Issues verification codes and registers numbers. */
export class RegistrationService {
  readonly #deps: RegistrationDeps;
  readonly #clock: Clock;
  readonly #perNumber: RateLimiter;
  readonly #perAddress: RateLimiter;
  readonly #registerPerAddress: RateLimiter;

  constructor(deps: RegistrationDeps) {
    this.#deps = deps;
    this.#clock = deps.config.clock;
    const limits = deps.config.rateLimits;
    this.#perNumber = new RateLimiter(limits.verificationPerNumber, this.#clock);
    this.#perAddress = new RateLimiter(limits.verificationPerAddress, this.#clock);
    this.#registerPerAddress = new RateLimiter(limits.registerPerAddress, this.#clock);
  }

  /** Sends a fresh code to `numberText`; returns the seconds until it expires. */
  async requestCode(numberText: string, remoteAddress: string): Promise<number> {
    const number = parsePhoneNumber(numberText);
    const { config } = this.#deps;
    const ttlSeconds = Math.floor(config.codeTtlMs / 1000);
    if (config.testNumbers.has(number)) return ttlSeconds;
    this.#perAddress.check(remoteAddress, 'verification requests from this address');
    this.#perNumber.check(number, 'verification requests for this number');
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    await this.#deps.verification.put({ number, codeHash: sha256(code), expiresAt: this.#clock.now() + config.codeTtlMs, attempts: 0 });
    try {
      await this.#deps.sender.send(number, code);
    } catch (cause) {
      this.#deps.logger.warn({ event: 'verification_send_failed', reason: cause instanceof Error ? cause.message : 'unknown' }, 'verification sender failed');
      throw new ServerError(ServerErrorCode.Unavailable, 'could not send the verification code', { cause, retryAfterMs: 30_000 });
    }
    return ttlSeconds;
  }

  /** Registers (or re-registers) the number of `request` once its code checks out. */
  async register(request: RegisterRequest, remoteAddress: string): Promise<RegisterResponse> {
    const number = parsePhoneNumber(request.number);
    const { config, accounts } = this.#deps;
    const isTest = config.testNumbers.has(number);
    if (!isTest) this.#registerPerAddress.check(remoteAddress, 'registration attempts from this address');
    if (!/^[0-9]{6}$/.test(request.code)) throw new ServerError(ServerErrorCode.InvalidCode, 'wrong or expired verification code');
    if (!Number.isInteger(request.registrationId) || request.registrationId < 1 || request.registrationId > MAX_REGISTRATION_ID) {
      throw badRequest('registration id out of range');
    }
    if (request.deviceName.length > MAX_DEVICE_NAME) throw badRequest('device name too long');
    // Validate the keys before the code is consumed: a malformed request must not burn the code.
    const identity = parseIdentityKey(request.identityKey);
    const signedPreKey = await checkSignedPreKey(identity, request.signedPreKey);
    const kyberLastResortKey = await checkKyberPreKey(identity, request.kyberLastResortPreKey);
    await this.#checkCode(number, request.code, isTest);
    const password = generatePassword();
    const result = await accounts.register({
      newAccountId: randomUUID() as AccountId,
      number,
      identityKey: identity.serialized,
      registrationId: request.registrationId,
      passwordHash: sha256(password),
      deviceName: request.deviceName,
      signedPreKey,
      kyberLastResortKey,
      now: this.#clock.now(),
    });
    // The deleted devices' sockets must close: their credentials and queues are gone.
    for (const ref of result.removedDevices) this.#deps.bus.publishToDevice(ref, { kind: 'removed' });
    this.#deps.logger.info({ event: result.reregistered ? 'account_reregistered' : 'account_registered', accountId: result.account.id }, 'registered');
    return create(RegisterResponseSchema, {
      accountId: result.account.id,
      deviceId: result.device.deviceId,
      password,
      reregistered: result.reregistered,
    });
  }

  async #checkCode(number: PhoneNumber, code: string, isTest: boolean): Promise<void> {
    if (isTest) {
      const expected = Buffer.from(this.#deps.config.testNumbers.get(number) ?? '');
      const given = Buffer.from(code);
      if (expected.length === given.length && timingSafeEqual(expected, given)) return;
      throw new ServerError(ServerErrorCode.InvalidCode, 'wrong or expired verification code');
    }
    const outcome = await this.#deps.verification.check(number, sha256(code), this.#clock.now(), this.#deps.config.codeAttempts);
    if (outcome !== 'ok') throw new ServerError(ServerErrorCode.InvalidCode, 'wrong or expired verification code');
  }
}
