// Node-only helpers for the NIST round-3 Kyber known-answer tests (KAT): a parser for the .rsp files that the
// devDependency crystals-kyber ships (PQCkemKAT_3168.rsp is Kyber1024), and NIST's AES-256-CTR-DRBG
// (rng.c of the NIST PQC submission package), which the KAT generator seeds with each entry's `seed` and
// which supplies all of that entry's randomness. Used by test/vectors/generate-session-vectors.ts and
// test/interop/kem.interop.test.ts; the isomorphic unit tests read the extracted JSON instead.
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** One KAT entry; byte strings are upper-case hex as in the .rsp file. */
export interface KatEntry {
  count: number;
  seed: string;
  pk: string;
  sk: string;
  ct: string;
  ss: string;
}

/** Path of crystals-kyber's round-3 Kyber1024 KAT file. */
export function kyber1024KatPath(): string {
  const require = createRequire(import.meta.url);
  return require.resolve('crystals-kyber/PQCkemKAT_3168.rsp');
}

/** Parses a NIST KEM .rsp file (`count = n` starts an entry; `name = hex` lines fill it). */
export function parseRsp(text: string): KatEntry[] {
  const entries: KatEntry[] = [];
  let current: Partial<Record<keyof KatEntry, string>> | undefined;
  const flush = (): void => {
    if (!current) return;
    const { count, seed, pk, sk, ct, ss } = current;
    if (count === undefined || !seed || !pk || !sk || !ct || !ss) throw new Error(`incomplete KAT entry ${String(count)}`);
    entries.push({ count: Number(count), seed, pk, sk, ct, ss });
  };
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\w+) = ([0-9A-Fa-f]*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, value] = m as unknown as [string, keyof KatEntry, string];
    if (key === 'count') {
      flush();
      current = {};
    }
    if (current) current[key] = value;
  }
  flush();
  return entries;
}

/** Reads and parses crystals-kyber's Kyber1024 KAT file. */
export function readKyber1024Kat(): KatEntry[] {
  return parseRsp(readFileSync(kyber1024KatPath(), 'utf8'));
}

/**
 * NIST's AES-256-CTR-DRBG as the PQC KAT generator uses it (randombytes_init with a 48-byte entropy input and
 * no personalization string; randombytes; no reseeding). The state is a 32-byte key and a 16-byte counter V.
 */
export class NistDrbg {
  #key = new Uint8Array(32);
  #v = new Uint8Array(16);

  constructor(entropy: Uint8Array) {
    if (entropy.length !== 48) throw new RangeError('the NIST DRBG takes 48 bytes of entropy');
    this.#update(entropy);
  }

  /** The next `length` bytes (one randombytes call: whole 16-byte blocks, then a state update). */
  randomBytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += 16) {
      const block = this.#nextBlock();
      out.set(block.subarray(0, Math.min(16, length - offset)), offset);
    }
    this.#update(undefined);
    return out;
  }

  #nextBlock(): Uint8Array {
    for (let i = 15; i >= 0; i--) {
      this.#v[i] = ((this.#v[i] as number) + 1) & 0xff;
      if (this.#v[i] !== 0) break;
    }
    const aes = createCipheriv('aes-256-ecb', this.#key, null).setAutoPadding(false);
    return new Uint8Array(aes.update(this.#v));
  }

  #update(provided: Uint8Array | undefined): void {
    const temp = new Uint8Array(48);
    for (let i = 0; i < 3; i++) temp.set(this.#nextBlock(), 16 * i);
    if (provided) for (let i = 0; i < 48; i++) temp[i] = (temp[i] as number) ^ (provided[i] as number);
    this.#key = temp.slice(0, 32);
    this.#v = temp.slice(32, 48);
  }
}

/**
 * The randomness round-3 Kyber1024's reference code draws for KAT entry `seed`: keygen's coins d, keygen's
 * implicit-rejection secret z (the last 32 bytes of sk), then encapsulation's message m0 (which it hashes
 * with SHA3-256 before use: "don't release system RNG output").
 */
export function katRandomness(seedHex: string): { d: Uint8Array; z: Uint8Array; m0: Uint8Array } {
  const drbg = new NistDrbg(new Uint8Array(Buffer.from(seedHex, 'hex')));
  const d = drbg.randomBytes(32);
  const z = drbg.randomBytes(32);
  const m0 = drbg.randomBytes(32);
  return { d, z, m0 };
}
