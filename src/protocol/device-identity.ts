/**
 * Linked devices (WhatsApp's "advanced device verification", on Parley's keys): the account signature by
 * which the primary vouches for a companion's identity key, the companion's counter-signature, and the
 * device list the primary signs. Byte layouts (docs/multi-device.md):
 *
 * - account signature: XEdDSA by the account key over `0x06 0x00 ‖ details ‖ companion identity key`;
 * - device signature: XEdDSA by the companion's identity key over
 *   `0x06 0x01 ‖ details ‖ companion identity key ‖ account key`;
 * - device list signature: XEdDSA by the account key over `0x06 0x02 ‖ serialized DeviceList`;
 *
 * where `details` is the serialized `DeviceIdentityDetails` exactly as carried in `DeviceIdentity.details`
 * and keys are 33-byte serialized public keys. Signatures cover the bytes as transmitted, so nothing here
 * re-encodes a message before verifying it.
 *
 * Pure and isomorphic. Failures are typed: `InvalidMessage` for bytes that do not decode (or fields of the
 * wrong size), `InvalidDeviceIdentity` for a companion identity whose signatures or details do not hold,
 * `InvalidDeviceList` for a list whose signature, account or entries do not hold.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { concatBytes, copyBytes } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { invalidMessage, ProtocolError, ProtocolErrorCode } from './errors.js';
import {
  DeviceIdentityDetailsSchema,
  DeviceIdentitySchema,
  DeviceListEntrySchema,
  DeviceListSchema,
  SignedDeviceListSchema,
  type DeviceIdentity,
  type DeviceList,
  type SignedDeviceList,
} from './gen/service_pb.js';
import { PublicKey, SIGNATURE_LENGTH, type KeyPair } from './keys.js';

export type { DeviceIdentity, DeviceList, DeviceListEntry, SignedDeviceList } from './gen/service_pb.js';

/** The primary's device id; its identity key is the account key. */
export const PRIMARY_DEVICE_ID = 1;
/** Most companions an account links besides its primary. */
export const MAX_COMPANION_DEVICES = 4;
/** Largest device id a device list may name (device ids are positive 31-bit integers on the server). */
export const MAX_LINKED_DEVICE_ID = 0x7fff_ffff;
/** Largest serialized `SignedDeviceList` (or `DeviceList`) accepted: four entries need well under 2 KiB. */
export const MAX_DEVICE_LIST_BYTES = 16 * 1024;
/** Largest serialized `DeviceIdentity` (or its details) accepted. */
export const MAX_DEVICE_IDENTITY_BYTES = 4 * 1024;

/** Prefixes of the three signed messages. */
export const ACCOUNT_SIGNATURE_PREFIX: Uint8Array = new Uint8Array([0x06, 0x00]);
export const DEVICE_SIGNATURE_PREFIX: Uint8Array = new Uint8Array([0x06, 0x01]);
export const DEVICE_LIST_SIGNATURE_PREFIX: Uint8Array = new Uint8Array([0x06, 0x02]);

/** The decoded `DeviceIdentityDetails`: what the primary signs about one companion. */
export interface DeviceIdentityDetailsFields {
  readonly accountId: string;
  readonly deviceId: number;
  /** ms, when the primary approved the link. */
  readonly timestamp: number;
}

/** A companion whose identity verified: its id, its identity key and the details the account signed. */
export interface VerifiedDeviceIdentity {
  readonly deviceId: number;
  readonly identityKey: PublicKey;
  readonly details: DeviceIdentityDetailsFields;
}

/** A signed device list that verified: its version and timestamp, and each companion's identity key. */
export interface VerifiedDeviceList {
  readonly accountId: string;
  readonly version: bigint;
  /** ms. */
  readonly timestamp: number;
  /** Companion device id → its identity key (device 1, the primary, is implied and not in the map). */
  readonly devices: ReadonlyMap<number, PublicKey>;
  /** The verified entries in list order, with the details the account signed. */
  readonly entries: readonly VerifiedDeviceIdentity[];
}

/** What the primary puts in a device list. */
export interface DeviceListInput {
  readonly accountId: string;
  readonly version: bigint | number;
  /** ms. */
  readonly timestamp: number;
  readonly devices: readonly { readonly deviceId: number; readonly identity: DeviceIdentity }[];
}

function invalidIdentity(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidDeviceIdentity, message);
}

function invalidList(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidDeviceList, message);
}

function invalidArgument(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidArgument, message);
}

function checkDeviceId(deviceId: number, what: string, toError: (message: string) => ProtocolError): void {
  if (!Number.isInteger(deviceId) || deviceId <= PRIMARY_DEVICE_ID || deviceId > MAX_LINKED_DEVICE_ID) {
    throw toError(`${what}: a companion's device id is 2..${MAX_LINKED_DEVICE_ID}`);
  }
}

function decodeKey(bytes: Uint8Array, what: string): PublicKey {
  let key: PublicKey;
  try {
    key = PublicKey.deserialize(bytes);
  } catch (cause) {
    throw invalidMessage(`invalid ${what}`, cause);
  }
  if (!key.isCanonical()) throw invalidMessage(`invalid ${what}: not a canonical point`);
  return key;
}

function toSafeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidMessage(`${what} out of range`);
  return Number(value);
}

// --- Details -----------------------------------------------------------------------------------------

/** Serializes the details the account signature covers. */
export function encodeDeviceIdentityDetails(details: DeviceIdentityDetailsFields): Uint8Array {
  if (details.accountId.length === 0) throw invalidArgument('details need an account id');
  checkDeviceId(details.deviceId, 'details', invalidArgument);
  if (!Number.isSafeInteger(details.timestamp) || details.timestamp < 0) throw invalidArgument('details timestamp must be a non-negative safe integer');
  return toBinary(DeviceIdentityDetailsSchema, create(DeviceIdentityDetailsSchema, { accountId: details.accountId, deviceId: details.deviceId, timestamp: BigInt(details.timestamp) }));
}

/** Decodes serialized details; `InvalidMessage` when they do not decode or lack the account or device id. */
export function decodeDeviceIdentityDetails(bytes: Uint8Array): DeviceIdentityDetailsFields {
  if (bytes.length === 0) throw invalidMessage('empty device identity details');
  if (bytes.length > MAX_DEVICE_IDENTITY_BYTES) throw invalidMessage('device identity details too large');
  let proto;
  try {
    proto = fromBinary(DeviceIdentityDetailsSchema, copyBytes(bytes));
  } catch (cause) {
    throw invalidMessage('device identity details do not decode', cause);
  }
  if (proto.accountId.length === 0) throw invalidMessage('device identity details without an account id');
  if (proto.deviceId === 0) throw invalidMessage('device identity details without a device id');
  return { accountId: proto.accountId, deviceId: proto.deviceId, timestamp: toSafeNumber(proto.timestamp, 'details timestamp') };
}

// --- Signed messages ----------------------------------------------------------------------------------

/** `0x06 0x00 ‖ details ‖ companion identity key`: what the account signature covers. */
export function accountSignatureMessage(details: Uint8Array, companionKey: PublicKey): Uint8Array {
  return concatBytes(ACCOUNT_SIGNATURE_PREFIX, details, companionKey.serialized);
}

/** `0x06 0x01 ‖ details ‖ companion identity key ‖ account key`: what the device signature covers. */
export function deviceSignatureMessage(details: Uint8Array, companionKey: PublicKey, accountKey: PublicKey): Uint8Array {
  return concatBytes(DEVICE_SIGNATURE_PREFIX, details, companionKey.serialized, accountKey.serialized);
}

/** `0x06 0x02 ‖ serialized DeviceList`: what the device list signature covers. */
export function deviceListSignatureMessage(list: Uint8Array): Uint8Array {
  return concatBytes(DEVICE_LIST_SIGNATURE_PREFIX, list);
}

/** The primary's account signature over `details` and the companion's key (made with the account key pair). */
export function createAccountSignature(crypto: CryptoProvider, account: KeyPair, details: Uint8Array, companionKey: PublicKey): Uint8Array {
  return account.sign(crypto, accountSignatureMessage(details, companionKey));
}

/** Checks an account signature; `InvalidDeviceIdentity` when it does not verify with `accountKey`. */
export async function verifyAccountSignature(crypto: CryptoProvider, accountKey: PublicKey, details: Uint8Array, companionKey: PublicKey, signature: Uint8Array): Promise<void> {
  if (signature.length !== SIGNATURE_LENGTH || !(await accountKey.verifySignature(crypto, accountSignatureMessage(details, companionKey), signature))) {
    throw invalidIdentity('the account signature does not verify');
  }
}

/**
 * The companion's side of linking: checks the primary's account signature (with the account key the
 * provisioning message carried) and that the details name `expected` (the account id and the device id
 * the companion was given), then counter-signs. Returns the complete `DeviceIdentity`.
 */
export async function createDeviceIdentity(
  crypto: CryptoProvider,
  companion: KeyPair,
  accountKey: PublicKey,
  details: Uint8Array,
  accountSignature: Uint8Array,
  expected: { readonly accountId: string; readonly deviceId: number },
): Promise<DeviceIdentity> {
  const fields = decodeDeviceIdentityDetails(details);
  if (fields.accountId !== expected.accountId) throw invalidIdentity('the details name another account');
  if (fields.deviceId !== expected.deviceId) throw invalidIdentity('the details name another device id');
  await verifyAccountSignature(crypto, accountKey, details, companion.publicKey, accountSignature);
  const deviceSignature = companion.sign(crypto, deviceSignatureMessage(details, companion.publicKey, accountKey));
  return create(DeviceIdentitySchema, {
    details: copyBytes(details),
    identityKey: copyBytes(companion.publicKey.serialized),
    accountSignature: copyBytes(accountSignature),
    deviceSignature,
  });
}

// --- Device identities --------------------------------------------------------------------------------

/** Decodes a serialized `DeviceIdentity`; `InvalidMessage` when it does not decode. */
export function decodeDeviceIdentity(bytes: Uint8Array): DeviceIdentity {
  if (bytes.length === 0) throw invalidMessage('empty device identity');
  if (bytes.length > MAX_DEVICE_IDENTITY_BYTES) throw invalidMessage('device identity too large');
  try {
    return fromBinary(DeviceIdentitySchema, copyBytes(bytes));
  } catch (cause) {
    throw invalidMessage('device identity does not decode', cause);
  }
}

/** Serializes a `DeviceIdentity`. */
export function encodeDeviceIdentity(identity: DeviceIdentity): Uint8Array {
  return toBinary(DeviceIdentitySchema, identity);
}

/**
 * Verifies one companion's identity against the account key: both signatures, and that the details name
 * `expected.accountId` and `expected.deviceId`. Malformed fields are `InvalidMessage`; anything that does
 * not hold is `InvalidDeviceIdentity`.
 */
export async function verifyDeviceIdentity(
  crypto: CryptoProvider,
  accountKey: PublicKey,
  identity: DeviceIdentity | Uint8Array,
  expected: { readonly accountId: string; readonly deviceId: number },
): Promise<VerifiedDeviceIdentity> {
  const id = identity instanceof Uint8Array ? decodeDeviceIdentity(identity) : identity;
  const details = decodeDeviceIdentityDetails(id.details);
  const identityKey = decodeKey(id.identityKey, 'companion identity key');
  if (id.accountSignature.length !== SIGNATURE_LENGTH) throw invalidMessage('account signature of the wrong length');
  if (id.deviceSignature.length !== SIGNATURE_LENGTH) throw invalidMessage('device signature of the wrong length');
  if (details.accountId !== expected.accountId) throw invalidIdentity('the details name another account');
  if (details.deviceId !== expected.deviceId) throw invalidIdentity('the details name another device id');
  if (identityKey.equals(accountKey)) throw invalidIdentity("a companion's identity key must not be the account key");
  await verifyAccountSignature(crypto, accountKey, id.details, identityKey, id.accountSignature);
  if (!(await identityKey.verifySignature(crypto, deviceSignatureMessage(id.details, identityKey, accountKey), id.deviceSignature))) {
    throw invalidIdentity('the device signature does not verify');
  }
  return { deviceId: details.deviceId, identityKey, details };
}

// --- Device lists ---------------------------------------------------------------------------------------

/** Serializes a device list (the bytes the list signature covers). */
export function encodeDeviceList(list: DeviceListInput): Uint8Array {
  if (list.accountId.length === 0) throw invalidArgument('a device list needs an account id');
  if (list.devices.length > MAX_COMPANION_DEVICES) throw invalidArgument(`a device list names at most ${MAX_COMPANION_DEVICES} companions`);
  const version = BigInt(list.version);
  if (version < 0n) throw invalidArgument('a device list version is non-negative');
  if (!Number.isSafeInteger(list.timestamp) || list.timestamp < 0) throw invalidArgument('device list timestamp must be a non-negative safe integer');
  const seen = new Set<number>();
  for (const d of list.devices) {
    checkDeviceId(d.deviceId, 'device list entry', invalidArgument);
    if (seen.has(d.deviceId)) throw invalidArgument('a device list names a device once');
    seen.add(d.deviceId);
  }
  return toBinary(
    DeviceListSchema,
    create(DeviceListSchema, {
      accountId: list.accountId,
      version,
      timestamp: BigInt(list.timestamp),
      devices: list.devices.map((d) => create(DeviceListEntrySchema, { deviceId: d.deviceId, identity: d.identity })),
    }),
  );
}

/** Decodes a serialized `DeviceList`; `InvalidMessage` when it does not decode. */
export function decodeDeviceList(bytes: Uint8Array): DeviceList {
  if (bytes.length > MAX_DEVICE_LIST_BYTES) throw invalidMessage('device list too large');
  try {
    return fromBinary(DeviceListSchema, copyBytes(bytes));
  } catch (cause) {
    throw invalidMessage('device list does not decode', cause);
  }
}

/** Signs a device list with the account key pair. */
export function createSignedDeviceList(crypto: CryptoProvider, account: KeyPair, list: DeviceListInput): SignedDeviceList {
  const bytes = encodeDeviceList(list);
  return create(SignedDeviceListSchema, { list: bytes, signature: account.sign(crypto, deviceListSignatureMessage(bytes)) });
}

/** Decodes a serialized `SignedDeviceList`; `InvalidMessage` when it does not decode or lacks its parts. */
export function decodeSignedDeviceList(bytes: Uint8Array): SignedDeviceList {
  if (bytes.length === 0) throw invalidMessage('empty signed device list');
  if (bytes.length > MAX_DEVICE_LIST_BYTES) throw invalidMessage('signed device list too large');
  let signed: SignedDeviceList;
  try {
    signed = fromBinary(SignedDeviceListSchema, copyBytes(bytes));
  } catch (cause) {
    throw invalidMessage('signed device list does not decode', cause);
  }
  if (signed.list.length === 0) throw invalidMessage('signed device list without a list');
  return signed;
}

/** Serializes a `SignedDeviceList`. */
export function encodeSignedDeviceList(signed: SignedDeviceList): Uint8Array {
  return toBinary(SignedDeviceListSchema, signed);
}

/**
 * Verifies a signed device list as a sender (or the server) must before trusting any companion of the
 * account: the list signature with `accountKey`, that the list names `accountId`, and for every entry a
 * companion device id (2 and up, each once, at most {@link MAX_COMPANION_DEVICES}), details naming that
 * account and that device id, an identity key distinct from the account key and from the other entries',
 * and valid account and device signatures. Returns the verified entries; throws `InvalidMessage` for bytes
 * that do not decode, `InvalidDeviceList` or `InvalidDeviceIdentity` for anything that does not hold.
 */
export async function verifySignedDeviceList(
  crypto: CryptoProvider,
  accountKey: PublicKey,
  signed: SignedDeviceList | Uint8Array,
  accountId: string,
): Promise<VerifiedDeviceList> {
  const s = signed instanceof Uint8Array ? decodeSignedDeviceList(signed) : signed;
  if (s.list.length === 0) throw invalidMessage('signed device list without a list');
  if (s.list.length > MAX_DEVICE_LIST_BYTES) throw invalidMessage('device list too large');
  if (s.signature.length !== SIGNATURE_LENGTH) throw invalidMessage('device list signature of the wrong length');
  if (!(await accountKey.verifySignature(crypto, deviceListSignatureMessage(s.list), s.signature))) {
    throw invalidList('the device list signature does not verify');
  }
  const list = decodeDeviceList(s.list);
  if (list.accountId !== accountId) throw invalidList('the device list names another account');
  if (list.devices.length > MAX_COMPANION_DEVICES) throw invalidList(`a device list names at most ${MAX_COMPANION_DEVICES} companions`);
  const timestamp = toSafeNumber(list.timestamp, 'device list timestamp');
  const devices = new Map<number, PublicKey>();
  const entries: VerifiedDeviceIdentity[] = [];
  for (const entry of list.devices) {
    checkDeviceId(entry.deviceId, 'device list entry', invalidList);
    if (devices.has(entry.deviceId)) throw invalidList('the device list names a device twice');
    if (entry.identity === undefined) throw invalidMessage('device list entry without an identity');
    const verified = await verifyDeviceIdentity(crypto, accountKey, entry.identity, { accountId, deviceId: entry.deviceId });
    for (const other of devices.values()) {
      if (other.equals(verified.identityKey)) throw invalidList('two devices of the list share an identity key');
    }
    devices.set(entry.deviceId, verified.identityKey);
    entries.push(verified);
  }
  return { accountId, version: list.version, timestamp, devices, entries };
}

