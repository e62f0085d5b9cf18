import type { CryptoProvider } from './crypto.js';
import { calculateAgreement, type KeyPair, type PublicKey } from './keys.js';
import { utf8 } from './bytes.js';
import type { ChainKey } from './session-record.js';

const MESSAGE_KEY_SEED = new Uint8Array([0x01]);
const CHAIN_KEY_SEED = new Uint8Array([0x02]);
const INFO_RATCHET = utf8('WhisperRatchet');
const INFO_MESSAGE_KEYS = utf8('WhisperMessageKeys');

/** The keys of one message: AES-256 key, HMAC key, CBC IV. */
export interface MessageKeys {
  readonly cipherKey: Uint8Array;
  readonly macKey: Uint8Array;
  readonly iv: Uint8Array;
}

/** The message-key seed of a chain position: HMAC-SHA256(chain key, 0x01). */
export function messageKeySeed(crypto: CryptoProvider, chainKey: ChainKey): Promise<Uint8Array> {
  return crypto.hmacSha256(chainKey.key, MESSAGE_KEY_SEED);
}

/** The next chain key: HMAC-SHA256(chain key, 0x02), one index further. */
export async function nextChainKey(crypto: CryptoProvider, chainKey: ChainKey): Promise<ChainKey> {
  return { key: await crypto.hmacSha256(chainKey.key, CHAIN_KEY_SEED), index: chainKey.index + 1 };
}

/** Expands a message-key seed: HKDF(salt none, seed, "WhisperMessageKeys") → key 32, MAC key 32, IV 16. */
export async function deriveMessageKeys(crypto: CryptoProvider, seed: Uint8Array): Promise<MessageKeys> {
  const okm = await crypto.hkdfSha256(seed, undefined, INFO_MESSAGE_KEYS, 80);
  return { cipherKey: okm.subarray(0, 32), macKey: okm.subarray(32, 64), iv: okm.subarray(64, 80) };
}

/**
 * One root-key step of the Double Ratchet: HKDF(salt = root key, ikm = DH(ours, theirs), "WhisperRatchet")
 * → new root key and a new chain key at index 0.
 */
export async function createChain(
  crypto: CryptoProvider,
  rootKey: Uint8Array,
  theirRatchetKey: PublicKey,
  ourRatchetKey: KeyPair,
): Promise<{ rootKey: Uint8Array; chainKey: ChainKey }> {
  const shared = await calculateAgreement(crypto, ourRatchetKey, theirRatchetKey);
  const okm = await crypto.hkdfSha256(shared, rootKey, INFO_RATCHET, 64);
  return { rootKey: okm.subarray(0, 32), chainKey: { key: okm.subarray(32, 64), index: 0 } };
}
