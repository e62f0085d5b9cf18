// A crypto provider that hands out given bytes from randomBytes (for known-answer tests of randomized
// operations, e.g. KEM encapsulation with a KAT's randomness) and delegates everything else. Isomorphic.
import type { CryptoProvider } from '../../src/protocol/index.ts';

/**
 * `base` with randomBytes answered from `chunks`, in order; each call must ask for exactly the next chunk's
 * length, and running out is an error (a test that draws more randomness than it planned is wrong).
 */
export function withRandomBytes(base: CryptoProvider, ...chunks: Uint8Array[]): CryptoProvider {
  const queue = [...chunks];
  return {
    randomBytes(length: number): Uint8Array {
      const next = queue.shift();
      if (!next) throw new Error(`unexpected randomBytes(${length}): no fixed randomness left`);
      if (next.length !== length) throw new Error(`randomBytes(${length}) but the next fixed chunk has ${next.length} bytes`);
      return next.slice();
    },
    sha512: (...parts) => base.sha512(...parts),
    hmacSha256: (key, ...parts) => base.hmacSha256(key, ...parts),
    hkdfSha256: (ikm, salt, info, length) => base.hkdfSha256(ikm, salt, info, length),
    aes256CbcEncrypt: (key, iv, plaintext) => base.aes256CbcEncrypt(key, iv, plaintext),
    aes256CbcDecrypt: (key, iv, ciphertext) => base.aes256CbcDecrypt(key, iv, ciphertext),
    x25519GenerateKeyPair: () => base.x25519GenerateKeyPair(),
    x25519PublicKey: (privateKey) => base.x25519PublicKey(privateKey),
    x25519: (privateKey, publicKey, ourPublicKey) => base.x25519(privateKey, publicKey, ourPublicKey),
    ed25519Verify: (publicKey, message, signature) => base.ed25519Verify(publicKey, message, signature),
  };
}
