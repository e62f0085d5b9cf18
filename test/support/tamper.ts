// Ways the tests damage or tweak bytes and keys. Isomorphic (the protocol tests also run in Chromium).
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { PublicKey } from '../../src/protocol/index.ts';

/** The field prime of Curve25519, 2^255 - 19. */
export const P = 2n ** 255n - 19n;

/** A copy of `bytes` with `mask` XORed into byte `index` (a negative index counts from the end). */
export function flip(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  const i = index < 0 ? out.length + index : index;
  out[i] = (out[i] as number) ^ mask;
  return out;
}

/** A little-endian byte string as a number. */
export const leToBigInt = (bytes: Uint8Array): bigint => bytesToNumberLE(bytes);

/** `n` as `length` little-endian bytes (32 by default). */
export const bigIntToLe = (n: bigint, length = 32): Uint8Array => numberToBytesLE(n, length);

/**
 * The same X25519 key moved by the curve's point of order 2 ((0, 0) on the Montgomery curve maps u to 1/u):
 * a clamped scalar (a multiple of 8) gives the same shared secret with it, but it is a different encoding.
 * libsignal refuses such a base key ("incoming base key is invalid": not torsion-free).
 */
export function torsionTweaked(key: PublicKey): PublicKey {
  return PublicKey.fromRaw(bigIntToLe(ed25519.Point.Fp.inv(leToBigInt(key.raw))));
}
