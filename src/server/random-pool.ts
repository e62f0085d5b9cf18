import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for ids (envelope guids), drawn from a pool refilled 4 KiB at a time: one
 * `randomFillSync` call per 256 guids instead of one each. The bytes come from the CSPRNG all the same.
 */
export class RandomPool {
  readonly #pool = new Uint8Array(4096);
  #offset = this.#pool.length;

  /** `length` fresh random bytes (a copy, at most 4096). */
  take(length: number): Uint8Array {
    if (this.#offset + length > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const out = this.#pool.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }
}
