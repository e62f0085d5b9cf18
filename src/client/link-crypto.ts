/**
 * The pure parts of linking and history sync (docs/multi-device.md):
 *
 * - the linking URI a new companion shows: `parley://link/<base64url(link id (16) ‖ linking secret (32) ‖
 *   companion identity key (33))>`;
 * - the provisioning encryption: `HKDF-SHA256(linking secret, salt none, "Parley provisioning v1", 64)` =
 *   AES-256 key ‖ HMAC-SHA256 key; body = `0x01 ‖ iv (16) ‖ AES-256-CBC(plaintext) ‖ HMAC(0x01 ‖ iv ‖ ciphertext)`;
 * - encrypted blobs (the history bundle): the same layout under a fresh 64-byte key (AES-256 key ‖ HMAC key),
 *   named by the SHA-256 of the encrypted bytes.
 *
 * - device names: encrypted to the account key (an ephemeral X25519 agreement with it; HKDF-SHA256 with the
 *   ephemeral public key as salt and "Parley device name v1" as info gives the two keys), so that the server
 *   stores only ciphertext and the primary, which holds the account key, reads them:
 *   `ephemeral public key (33) ‖ 0x01 ‖ iv ‖ ciphertext ‖ HMAC`.
 *
 * The MAC is checked (in constant time) before anything is decrypted.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { calculateAgreement, concatBytes, constantTimeEqual, KeyPair, PublicKey, toHex, utf8, type CryptoProvider } from '../protocol/index.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { deriveSealKeys, open, seal, splitSealKey, type SealKeys } from './sealed-box.js';

/** Linking URIs start with this. */
export const LINK_URI_PREFIX = 'parley://link/';
export const LINK_ID_BYTES = 16;
export const LINKING_SECRET_BYTES = 32;
const IDENTITY_KEY_BYTES = 33;
/** AES-256 key ‖ HMAC-SHA256 key. */
export const BLOB_KEY_BYTES = 64;
const PROVISIONING_INFO = utf8('Parley provisioning v1');

/** What a linking URI carries. */
export interface LinkUri {
  readonly linkId: Uint8Array;
  readonly linkingSecret: Uint8Array;
  /** The companion's identity key (33 bytes). */
  readonly identityKey: Uint8Array;
}

function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const bin = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** The URI of a linking code. */
export function encodeLinkUri(link: LinkUri): string {
  if (link.linkId.length !== LINK_ID_BYTES || link.linkingSecret.length !== LINKING_SECRET_BYTES || link.identityKey.length !== IDENTITY_KEY_BYTES) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'a linking code is a 16-byte link id, a 32-byte secret and a 33-byte identity key');
  }
  return LINK_URI_PREFIX + base64url(concatBytes(link.linkId, link.linkingSecret, link.identityKey));
}

/** Parses a linking URI (surrounding white space allowed); `CLIENT_BAD_LINK_URI` when it is not one. */
export function parseLinkUri(uri: string): LinkUri {
  const text = uri.trim();
  if (!text.startsWith(LINK_URI_PREFIX)) throw new ClientError(ClientErrorCode.BadLinkUri, `a linking code starts with ${LINK_URI_PREFIX}`);
  const bytes = fromBase64url(text.slice(LINK_URI_PREFIX.length));
  if (!bytes || bytes.length !== LINK_ID_BYTES + LINKING_SECRET_BYTES + IDENTITY_KEY_BYTES) {
    throw new ClientError(ClientErrorCode.BadLinkUri, 'the linking code is damaged (wrong length or characters)');
  }
  const identityKey = bytes.slice(LINK_ID_BYTES + LINKING_SECRET_BYTES);
  try {
    if (!PublicKey.deserialize(identityKey).isCanonical()) throw new Error('not canonical');
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadLinkUri, 'the linking code carries no valid identity key', { cause });
  }
  return { linkId: bytes.slice(0, LINK_ID_BYTES), linkingSecret: bytes.slice(LINK_ID_BYTES, LINK_ID_BYTES + LINKING_SECRET_BYTES), identityKey };
}

/** The link id as the provisioning route names it (32 lowercase hex digits). */
export function linkIdHex(linkId: Uint8Array): string {
  return toHex(linkId);
}

async function provisioningKeys(crypto: CryptoProvider, linkingSecret: Uint8Array): Promise<SealKeys> {
  if (linkingSecret.length !== LINKING_SECRET_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, 'a linking secret is 32 bytes');
  return deriveSealKeys(crypto, linkingSecret, undefined, PROVISIONING_INFO);
}

/** Encrypts a serialized ProvisionMessage under the keys of the linking secret. */
export async function encryptProvisioning(crypto: CryptoProvider, linkingSecret: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  return seal(crypto, await provisioningKeys(crypto, linkingSecret), plaintext);
}

/** Decrypts a provisioning body; `CLIENT_LINK_FAILED` when it fails its MAC (not ours, or tampered with) or does not decrypt. */
export async function decryptProvisioning(crypto: CryptoProvider, linkingSecret: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
  return open(crypto, await provisioningKeys(crypto, linkingSecret), body, ClientErrorCode.LinkFailed, 'provisioning message');
}

const DEVICE_NAME_INFO = utf8('Parley device name v1');
const PUBLIC_KEY_BYTES = 33;

/** Encrypts a device name (UTF-8) to the account key: only the holder of the account key can read it. */
export async function encryptDeviceName(crypto: CryptoProvider, accountKey: PublicKey, name: Uint8Array): Promise<Uint8Array> {
  const ephemeral = await KeyPair.generate(crypto);
  const keys = await deriveSealKeys(crypto, await calculateAgreement(crypto, ephemeral, accountKey), ephemeral.publicKey.serialized, DEVICE_NAME_INFO);
  return concatBytes(ephemeral.publicKey.serialized, await seal(crypto, keys, name));
}

/** Decrypts a device name with the account key pair; `CLIENT_BAD_BLOB` when it is not one (or tampered with). */
export async function decryptDeviceName(crypto: CryptoProvider, account: KeyPair, body: Uint8Array): Promise<string> {
  if (body.length <= PUBLIC_KEY_BYTES) throw new ClientError(ClientErrorCode.BadBlob, 'device name: too short');
  let ephemeral: PublicKey;
  try {
    ephemeral = PublicKey.deserialize(body.subarray(0, PUBLIC_KEY_BYTES));
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadBlob, 'device name: no valid ephemeral key', { cause });
  }
  const keys = await deriveSealKeys(crypto, await calculateAgreement(crypto, account, ephemeral), ephemeral.serialized, DEVICE_NAME_INFO);
  const plain = await open(crypto, keys, body.subarray(PUBLIC_KEY_BYTES), ClientErrorCode.BadBlob, 'device name');
  return new TextDecoder('utf-8', { fatal: false }).decode(plain);
}

/** An encrypted blob and what its reader needs: the id (hex SHA-256 of the bytes), the key, the hash and the size. */
export interface EncryptedBlob {
  readonly id: string;
  readonly bytes: Uint8Array;
  readonly key: Uint8Array;
  readonly sha256: Uint8Array;
}

/** Encrypts `plaintext` under a fresh 64-byte key. */
export async function encryptBlob(crypto: CryptoProvider, plaintext: Uint8Array): Promise<EncryptedBlob> {
  const key = crypto.randomBytes(BLOB_KEY_BYTES);
  const bytes = await seal(crypto, splitSealKey(key), plaintext);
  const hash = sha256(bytes);
  return { id: toHex(hash), bytes, key, sha256: hash };
}

/**
 * Checks a downloaded blob against what the encrypted message announced (size, SHA-256, then the MAC) and
 * decrypts it; `CLIENT_BAD_BLOB` when anything does not match.
 */
export async function decryptBlob(crypto: CryptoProvider, bytes: Uint8Array, expected: { key: Uint8Array; sha256: Uint8Array; size: number }): Promise<Uint8Array> {
  if (expected.key.length !== BLOB_KEY_BYTES) throw new ClientError(ClientErrorCode.BadBlob, 'a blob key is 64 bytes');
  if (bytes.length !== expected.size) throw new ClientError(ClientErrorCode.BadBlob, 'the blob has another size than announced');
  if (!constantTimeEqual(sha256(bytes), expected.sha256)) throw new ClientError(ClientErrorCode.BadBlob, 'the blob has another hash than announced');
  return open(crypto, splitSealKey(expected.key), bytes, ClientErrorCode.BadBlob, 'blob');
}
