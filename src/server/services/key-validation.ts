/**
 * Checks of uploaded public keys: type byte and length, and for signed keys the XEdDSA signature by
 * the account's identity key (src/protocol's `PublicKey.verifySignature` on the node:crypto provider).
 * A signed EC prekey is signed over its 33-byte serialization, a Kyber prekey over its 1,569 bytes.
 */
import { NodeCryptoProvider } from '../../node/crypto-provider.js';
import { KemPublicKey } from '../../protocol/kem.js';
import { PublicKey } from '../../protocol/keys.js';
import { ServerError, ServerErrorCode } from '../errors.js';
import type { OneTimeKey, SignedKey } from '../storage/stores.js';

const crypto = new NodeCryptoProvider();

/** Largest key id accepted (libsignal ids are 24-bit for prekeys; leave the full u32 minus one). */
const MAX_KEY_ID = 0xffff_fffe;

function invalid(what: string, cause?: unknown): ServerError {
  return new ServerError(ServerErrorCode.InvalidKey, `invalid ${what}`, { cause });
}

/** Parses a 33-byte identity (or EC) public key. */
export function parseIdentityKey(bytes: Uint8Array): PublicKey {
  let key: PublicKey;
  try {
    key = PublicKey.deserialize(bytes);
  } catch (cause) {
    throw invalid('identity key', cause);
  }
  if (!key.isCanonical()) throw invalid('identity key');
  return key;
}

function checkId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_KEY_ID) throw invalid(`${what} id`);
}

/** A one-time EC prekey: a valid EC public key. */
export function checkOneTimeKey(key: { id: number; publicKey: Uint8Array }): OneTimeKey {
  checkId(key.id, 'prekey');
  try {
    PublicKey.deserialize(key.publicKey);
  } catch (cause) {
    throw invalid('prekey', cause);
  }
  return { id: key.id, publicKey: key.publicKey };
}

/** A signed EC prekey: a valid EC public key signed by the identity key. */
export async function checkSignedPreKey(identity: PublicKey, key: { id: number; publicKey: Uint8Array; signature: Uint8Array } | undefined): Promise<SignedKey> {
  if (key === undefined) throw invalid('signed prekey: missing');
  checkId(key.id, 'signed prekey');
  try {
    PublicKey.deserialize(key.publicKey);
  } catch (cause) {
    throw invalid('signed prekey', cause);
  }
  if (!(await identity.verifySignature(crypto, key.publicKey, key.signature))) throw invalid('signed prekey signature');
  return { id: key.id, publicKey: key.publicKey, signature: key.signature };
}

/** A Kyber prekey (one-time or last resort): a valid KEM public key signed by the identity key. */
export async function checkKyberPreKey(identity: PublicKey, key: { id: number; publicKey: Uint8Array; signature: Uint8Array } | undefined): Promise<SignedKey> {
  if (key === undefined) throw invalid('Kyber prekey: missing');
  checkId(key.id, 'Kyber prekey');
  try {
    KemPublicKey.deserialize(key.publicKey);
  } catch (cause) {
    throw invalid('Kyber prekey', cause);
  }
  if (!(await identity.verifySignature(crypto, key.publicKey, key.signature))) throw invalid('Kyber prekey signature');
  return { id: key.id, publicKey: key.publicKey, signature: key.signature };
}
