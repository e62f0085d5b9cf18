/**
 * Registration: a phone number and the one-time code the server sent to it buy a device account. The keys
 * are made here, on the device; the server receives the public halves only.
 *
 * Registering a profile that already holds an account (the same number again, or another one) replaces this
 * device's identity: its prekeys and sessions are deleted (peers start new sessions with the new identity,
 * and see the safety-number change), while contacts, their identity keys and the message history stay.
 */
import { KeyPair, generateRegistrationId, type CryptoProvider } from '../protocol/index.js';
import { ServiceApi } from './api.js';
import { asAccountId, asE164, type AccountId, type E164 } from './ids.js';
import {
  KeyManager,
  generateRegistrationKeys,
  kyberPreKeyMessage,
  signedPreKeyMessage,
  storeRegistrationKeys,
  type KeyPolicy,
  type RegistrationKeys,
} from './keys.js';
import { HttpTransport, type FetchLike } from './transport/http.js';
import type { RequestOptions } from './transport/types.js';
import type { AccountRecord, ClientStore } from './store/types.js';

export interface RegistrationOptions {
  /** The server's base URL, `http(s)://host:port`. */
  readonly serverUrl: string;
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  /** Default `globalThis.fetch`. */
  readonly fetch?: FetchLike | undefined;
  /** Default `Date.now`. */
  readonly now?: (() => number) | undefined;
  readonly keyPolicy?: Partial<KeyPolicy> | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The outcome of a registration. */
export interface RegistrationResult {
  readonly accountId: AccountId;
  readonly deviceId: number;
  readonly number: E164;
  /** True when the number had an account before (its old identity and devices were replaced). */
  readonly reregistered: boolean;
}

function unauthenticatedApi(options: RegistrationOptions): ServiceApi {
  return new ServiceApi(new HttpTransport({ url: options.serverUrl, fetch: options.fetch }));
}

/** Asks the server to send a verification code to `number`; resolves to the code's lifetime in seconds. */
export async function requestVerificationCode(options: Omit<RegistrationOptions, 'crypto' | 'store'> & { readonly number: string }): Promise<number> {
  const api = new ServiceApi(new HttpTransport({ url: options.serverUrl, fetch: options.fetch }));
  return api.requestVerificationCode(asE164(options.number), { signal: options.signal });
}

/**
 * Registers this device for `number` with the verification `code`: generates the identity key, registration
 * id, signed prekey and last-resort Kyber prekey, registers, stores the account, then uploads a first batch
 * of one-time prekeys.
 */
export async function register(options: RegistrationOptions & { readonly number: string; readonly code: string }): Promise<RegistrationResult> {
  const number = asE164(options.number);
  const now = options.now ?? Date.now;
  const crypto = options.crypto;
  const identity = await KeyPair.generate(crypto);
  const registrationId = generateRegistrationId(crypto);
  const keys = await generateRegistrationKeys(crypto, identity, now());
  const requestOptions: RequestOptions = { signal: options.signal };

  const res = await unauthenticatedApi(options).register(
    {
      number,
      code: options.code,
      registrationId,
      identityKey: identity.publicKey.serialized,
      signedPreKey: signedPreKeyMessage(keys.signedPreKey),
      kyberLastResortPreKey: kyberPreKeyMessage(keys.lastResort),
    },
    requestOptions,
  );
  const accountId = asAccountId(res.accountId);
  await installAccount(
    options,
    {
      serverUrl: options.serverUrl,
      number,
      accountId,
      deviceId: res.deviceId,
      password: res.password,
      registrationId,
      identityPublicKey: identity.publicKey.serialized,
      identityPrivateKey: identity.privateKey.serialize(),
      registeredAt: now(),
    },
    keys,
  );
  return { accountId, deviceId: res.deviceId, number, reregistered: res.reregistered };
}

/**
 * Stores a newly registered (or linked) device's account and first keys, replacing a previous identity's
 * prekeys and sessions, then uploads a first batch of one-time prekeys with the new credentials.
 */
export async function installAccount(
  options: Pick<RegistrationOptions, 'crypto' | 'store' | 'fetch' | 'now' | 'keyPolicy' | 'signal'>,
  account: AccountRecord,
  keys: RegistrationKeys,
): Promise<void> {
  await options.store.transaction(async (tx) => {
    // A new identity: what belonged to the old one is useless now (and would only confuse peers).
    await tx.preKeys.clear();
    await tx.signedPreKeys.clear();
    await tx.kyberPreKeys.clear();
    await tx.sessions.clear();
    for (const entry of await tx.outbox.pending()) await tx.outbox.put({ ...entry, request: undefined });
    await tx.account.put(account);
    await storeRegistrationKeys(tx, keys);
  });
  const credentials = { accountId: account.accountId, deviceId: account.deviceId, password: account.password };
  const api = new ServiceApi(new HttpTransport({ url: account.serverUrl, fetch: options.fetch, credentials }));
  const keyManager = new KeyManager({ crypto: options.crypto, store: options.store, api: () => api, now: options.now ?? Date.now, policy: options.keyPolicy });
  await keyManager.uploadInitialKeys({ signal: options.signal });
}
