/**
 * Linking a companion, the companion's side (docs/multi-device.md): {@link startLinking} makes the device's
 * identity key, a linking secret and a link id, and shows them as a `parley://link/...` URI (a QR code). It
 * then waits for the primary's encrypted ProvisionMessage, checks it (MAC before decryption, the account
 * signature over its details and our key, that the details name the device id it was given), counter-signs,
 * and registers with the provisioning code. Private keys never leave this device.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { createDeviceIdentity, decodeDeviceIdentityDetails, PRIMARY_DEVICE_ID } from '../protocol/device-identity.js';
import { generateRegistrationId, KeyPair, ProtocolError, PublicKey, type CryptoProvider } from '../protocol/index.js';
import { ServiceApi } from './api.js';
import { sleep } from './async.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { ProvisionMessageSchema, type ProvisionMessage } from './gen/content_pb.js';
import { isAccountId, isE164 } from './ids.js';
import { generateRegistrationKeys, kyberPreKeyMessage, signedPreKeyMessage, type KeyPolicy } from './keys.js';
import { decryptProvisioning, encodeLinkUri, encryptDeviceName, LINK_ID_BYTES, LINKING_SECRET_BYTES, linkIdHex } from './link-crypto.js';
import { installAccount } from './registration.js';
import { Backoff } from './transport/backoff.js';
import { HttpTransport, type FetchLike } from './transport/http.js';
import type { AccountRecord, ClientStore } from './store/types.js';

export interface LinkingOptions {
  /** The server's base URL (the primary's server). */
  readonly serverUrl: string;
  readonly crypto: CryptoProvider;
  /** An empty store: the companion's profile. */
  readonly store: ClientStore;
  /** Default `globalThis.fetch`. */
  readonly fetch?: FetchLike | undefined;
  /** A name for this device, shown in the account's device list (sent to the server as given: keep it generic). */
  readonly deviceName?: string | undefined;
  /** Default `Date.now`. */
  readonly now?: (() => number) | undefined;
  readonly keyPolicy?: Partial<KeyPolicy> | undefined;
  /** How long the code is waited for, ms (default 10 minutes, the provisioning code's lifetime). */
  readonly timeoutMs?: number | undefined;
  /** Polling backoff, ms (default 500 to 5,000). */
  readonly poll?: { readonly baseMs?: number; readonly maxMs?: number } | undefined;
}

/** A linking code being shown. */
export interface PendingLink {
  /** `parley://link/...`: show it as a QR code and as text. */
  readonly uri: string;
  /**
   * Resolves with the stored account once linked; rejects with `CLIENT_LINK_FAILED` (refused, tampered with,
   * expired or not picked up in time), `CLIENT_ABORTED` after {@link cancel}, or a transport error.
   */
  readonly done: Promise<AccountRecord>;
  /** Stops waiting (nothing is stored). */
  cancel(): void;
}

/** How long a linking code is waited for by default (the server's provisioning codes live 10 minutes). */
export const LINK_TIMEOUT_MS = 10 * 60_000;

const MAX_DEVICE_NAME_BYTES = 64;
/** Settings key of this companion's own name (the server has it only encrypted to the account key). */
export const DEVICE_NAME_KEY = 'deviceName';

function linkFailed(message: string, cause?: unknown): ClientError {
  return new ClientError(ClientErrorCode.LinkFailed, message, cause === undefined ? {} : { cause });
}

/** Starts linking this (empty) profile as a companion: returns the URI to show and a promise of the account. */
export async function startLinking(options: LinkingOptions): Promise<PendingLink> {
  const { crypto } = options;
  const existing = await options.store.transaction((tx) => tx.account.get());
  if (existing) throw new ClientError(ClientErrorCode.InvalidArgument, 'this profile already holds an account: link a new, empty profile');
  const deviceName = new TextEncoder().encode(options.deviceName ?? '');
  if (deviceName.length > MAX_DEVICE_NAME_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, `a device name is at most ${MAX_DEVICE_NAME_BYTES} bytes`);
  const identity = await KeyPair.generate(crypto);
  const linkId = crypto.randomBytes(LINK_ID_BYTES);
  const linkingSecret = crypto.randomBytes(LINKING_SECRET_BYTES);
  const uri = encodeLinkUri({ linkId, linkingSecret, identityKey: identity.publicKey.serialized });
  const abort = new AbortController();
  const done = complete(options, { identity, linkId, linkingSecret, deviceName }, abort.signal);
  done.catch(() => undefined); // the caller may never wait for it (cancelled); it still rejects for those who do
  return { uri, done, cancel: () => abort.abort(new ClientError(ClientErrorCode.Aborted, 'linking cancelled')) };
}

async function complete(
  options: LinkingOptions,
  secrets: { identity: KeyPair; linkId: Uint8Array; linkingSecret: Uint8Array; deviceName: Uint8Array },
  signal: AbortSignal,
): Promise<AccountRecord> {
  const { crypto } = options;
  const now = options.now ?? Date.now;
  const api = new ServiceApi(new HttpTransport({ url: options.serverUrl, fetch: options.fetch }));
  const body = await poll(api, linkIdHex(secrets.linkId), options, signal);
  const message = parseProvisionMessage(await decryptProvisioning(crypto, secrets.linkingSecret, body));
  if (Number(message.expiresAt) <= now()) throw linkFailed('the provisioning code expired before it was used: link again');
  let accountKey: PublicKey;
  try {
    accountKey = PublicKey.deserialize(message.accountIdentityKey);
  } catch (cause) {
    throw linkFailed('the provisioning message carries no valid account key', cause);
  }
  let identity;
  try {
    identity = await createDeviceIdentity(crypto, secrets.identity, accountKey, message.details, message.accountSignature, {
      accountId: message.accountId,
      deviceId: message.deviceId,
    });
  } catch (cause) {
    if (cause instanceof ProtocolError) throw linkFailed('the account signature of the provisioning message does not hold', cause);
    throw cause;
  }
  const registrationId = generateRegistrationId(crypto);
  const keys = await generateRegistrationKeys(crypto, secrets.identity, now());
  const res = await api.linkDevice(
    {
      code: message.code,
      registrationId,
      identity,
      signedPreKey: signedPreKeyMessage(keys.signedPreKey),
      kyberLastResortPreKey: kyberPreKeyMessage(keys.lastResort),
      // Encrypted to the account key: the server keeps ciphertext, the primary reads it.
      deviceName: secrets.deviceName.length > 0 ? await encryptDeviceName(crypto, accountKey, secrets.deviceName) : new Uint8Array(0),
    },
    { signal },
  );
  if (res.accountId !== message.accountId || res.deviceId !== message.deviceId) throw linkFailed('the server linked another account or device than the primary approved');
  const account: AccountRecord = {
    serverUrl: options.serverUrl,
    number: message.number as AccountRecord['number'],
    accountId: message.accountId as AccountRecord['accountId'],
    deviceId: res.deviceId,
    password: res.password,
    registrationId,
    identityPublicKey: secrets.identity.publicKey.serialized,
    identityPrivateKey: secrets.identity.privateKey.serialize(),
    registeredAt: now(),
    accountIdentityKey: accountKey.serialized,
  };
  await installAccount({ crypto, store: options.store, fetch: options.fetch, now, keyPolicy: options.keyPolicy, signal }, account, keys);
  if (secrets.deviceName.length > 0) {
    const name = new TextDecoder().decode(secrets.deviceName);
    await options.store.transaction((tx) => tx.settings.put(DEVICE_NAME_KEY, name));
  }
  return account;
}

/** Waits (bounded, with backoff) until the primary left the provisioning message. */
async function poll(api: ServiceApi, id: string, options: LinkingOptions, signal: AbortSignal): Promise<Uint8Array> {
  const now = options.now ?? Date.now;
  const deadline = now() + (options.timeoutMs ?? LINK_TIMEOUT_MS);
  const backoff = new Backoff({ baseMs: options.poll?.baseMs ?? 500, maxMs: options.poll?.maxMs ?? 5_000 });
  for (;;) {
    if (signal.aborted) throw signal.reason as Error;
    let body: Uint8Array | undefined;
    try {
      body = await api.getProvisioning(id, { signal, timeoutMs: 15_000 });
    } catch (err) {
      if (!ClientError.is(err) || !err.retryable || signal.aborted) throw err;
    }
    if (body) return body;
    const left = deadline - now();
    if (left <= 0) throw linkFailed('the primary did not approve the link in time: show a new code');
    // A growing pause (full jitter), never below a tenth of the base, never past the deadline.
    await sleep(Math.min(left, Math.max(backoff.next(), (options.poll?.baseMs ?? 500) / 10)), signal);
  }
}

/** Decodes and checks the fields of a decrypted ProvisionMessage (`CLIENT_LINK_FAILED`). */
function parseProvisionMessage(bytes: Uint8Array): ProvisionMessage {
  let m: ProvisionMessage;
  try {
    m = fromBinary(ProvisionMessageSchema, bytes);
  } catch (cause) {
    throw linkFailed('the provisioning message does not decode', cause);
  }
  if (!isAccountId(m.accountId) || !isE164(m.number)) throw linkFailed('the provisioning message names no valid account or number');
  if (!Number.isInteger(m.deviceId) || m.deviceId <= PRIMARY_DEVICE_ID || m.code.length === 0) throw linkFailed('the provisioning message lacks a device id or code');
  try {
    const details = decodeDeviceIdentityDetails(m.details);
    if (details.accountId !== m.accountId || details.deviceId !== m.deviceId) throw new Error('details name another device');
  } catch (cause) {
    throw linkFailed('the provisioning message carries details for another device', cause);
  }
  return m;
}
