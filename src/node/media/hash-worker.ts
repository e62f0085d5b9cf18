/**
 * SHA-256 on a worker thread ({@link MediaHashing}, src/client/media/types.ts): a file's encryption runs on
 * the main thread at the speed of AES-256-CBC plus HMAC-SHA256, and its two SHA-256s (of the plaintext and of
 * the encrypted file; on download of the encrypted file and of the plaintext) would take as long again there.
 * Here they run on another core, and so can a download's HMAC (checked before anything is decrypted), in the
 * same pass as the SHA-256 of the same bytes: then the main thread only receives and stores the bytes.
 *
 * Bytes travel in blocks of {@link BLOCK_BYTES} of shared memory: each hash has {@link BLOCKS_PER_HASH}
 * SharedArrayBuffers, handed to the worker once when the hash starts; after that a message names only a block
 * and a length, and the worker answers when it is done with the block. No buffer is allocated or transferred
 * per block: transferring an ArrayBuffer creates a new one on each side, which V8 counts as fresh external
 * memory, and at a gigabyte per file that alone triggered a full garbage collection every few megabytes.
 * When every block is at the worker, `update` returns a promise that resolves when one comes back. One worker
 * serves every hash of the process; it is started on first use and does not keep the process alive while no
 * hash waits for it.
 */
import { Worker } from 'node:worker_threads';
import type { MediaHashing, ParallelDigests, ParallelSha256 } from '../../client/media/types.js';

/** Bytes per message to the worker. */
const BLOCK_BYTES = 1024 * 1024;
/** Blocks one hash has (its memory bound). */
const BLOCKS_PER_HASH = 4;

/** The worker's code: plain JavaScript, so that it needs no loader for TypeScript. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash, createHmac } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'open') {
    // A SHA-256 of every byte, and optionally an HMAC of a prefix, then of the first macBytes bytes.
    const mac = m.hmac === undefined ? undefined : createHmac('sha256', m.hmac.key).update(m.hmac.prefix);
    hashes.set(m.id, { sha: createHash('sha256'), mac, macLeft: m.hmac === undefined ? 0 : m.hmac.bytes, blocks: m.blocks.map((b) => new Uint8Array(b)) });
  } else if (m.op === 'update') {
    const h = hashes.get(m.id);
    if (h !== undefined) {
      const bytes = h.blocks[m.block].subarray(0, m.length);
      h.sha.update(bytes);
      if (h.mac !== undefined && h.macLeft > 0) {
        const n = Math.min(h.macLeft, bytes.length);
        h.mac.update(bytes.subarray(0, n));
        h.macLeft -= n;
      }
    }
    parentPort.postMessage({ op: 'ack', id: m.id, block: m.block });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id);
    hashes.delete(m.id);
    const copy = (d) => d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength);
    const sha256 = copy((h === undefined ? createHash('sha256') : h.sha).digest());
    const mac = h === undefined || h.mac === undefined ? undefined : copy(h.mac.digest());
    parentPort.postMessage({ op: 'digest', id: m.id, sha256, mac });
  } else if (m.op === 'discard') {
    hashes.delete(m.id);
  }
});
`;

type Reply = { op: 'ack'; id: number; block: number } | { op: 'digest'; id: number; sha256: ArrayBuffer; mac: ArrayBuffer | undefined };
type Request =
  | { op: 'open'; id: number; blocks: SharedArrayBuffer[]; hmac: MacSpec | undefined }
  | { op: 'update'; id: number; block: number; length: number }
  | { op: 'digest' | 'discard'; id: number };

/** The HMAC a job computes besides its SHA-256: under `key`, of `prefix` and then the first `bytes` bytes fed. */
interface MacSpec {
  readonly key: Uint8Array;
  readonly prefix: Uint8Array;
  readonly bytes: number;
}

interface Digests {
  readonly sha256: Uint8Array;
  readonly mac: Uint8Array | undefined;
}

interface HashState {
  onAck(block: number): void;
  onDigest(digests: Digests): void;
  fail(err: Error): void;
}

/** The worker and the hashes it serves. */
class HashWorker {
  readonly #worker: Worker;
  readonly #hashes = new Map<number, HashState>();
  #nextId = 1;
  /** Messages awaiting a reply: the worker is referenced (keeps the process alive) while there are any. */
  #outstanding = 0;
  #dead: Error | undefined;

  constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    this.#worker.unref();
    this.#worker.on('message', (m: Reply) => {
      this.#settled();
      const state = this.#hashes.get(m.id);
      if (state === undefined) return;
      if (m.op === 'ack') state.onAck(m.block);
      else state.onDigest({ sha256: new Uint8Array(m.sha256), mac: m.mac === undefined ? undefined : new Uint8Array(m.mac) });
    });
    const die = (err: Error): void => {
      this.#dead ??= err;
      for (const state of this.#hashes.values()) state.fail(err);
      this.#hashes.clear();
      this.#outstanding = 0;
    };
    this.#worker.on('error', die);
    this.#worker.on('exit', (code) => die(new Error(`the hash worker exited (${code})`)));
  }

  get dead(): Error | undefined {
    return this.#dead;
  }

  register(state: HashState): number {
    if (this.#dead) throw this.#dead;
    const id = this.#nextId++;
    this.#hashes.set(id, state);
    return id;
  }

  forget(id: number): void {
    this.#hashes.delete(id);
  }

  post(message: Request): void {
    if (this.#dead) throw this.#dead;
    // `update` and `digest` are answered; the worker stays referenced until they are.
    if (message.op === 'update' || message.op === 'digest') this.#expect();
    this.#worker.postMessage(message);
  }

  #expect(): void {
    if (this.#outstanding++ === 0) this.#worker.ref();
  }

  #settled(): void {
    if (this.#outstanding > 0 && --this.#outstanding === 0) this.#worker.unref();
  }
}

let shared: HashWorker | undefined;

function worker(): HashWorker {
  if (shared === undefined || shared.dead !== undefined) shared = new HashWorker();
  return shared;
}

/** One SHA-256 (and optionally an HMAC-SHA256 of a prefix of the same bytes) computed by the worker. */
class WorkerDigest {
  readonly #worker: HashWorker;
  readonly #id: number;
  /** This hash's blocks of shared memory, and which of them are here (not at the worker), ready to fill. */
  readonly #blocks: Uint8Array[] = [];
  readonly #free: number[] = [];
  /** The block being filled, and how far. */
  #block: number | undefined;
  #filled = 0;
  #waitingForBlock: { resolve(): void; reject(err: Error): void } | undefined;
  #digest: { resolve(d: Digests): void; reject(err: Error): void } | undefined;
  #failure: Error | undefined;
  #state: 'open' | 'digesting' | 'done' = 'open';

  constructor(w: HashWorker, hmac: MacSpec | undefined) {
    this.#worker = w;
    this.#id = w.register({
      onAck: (block) => {
        this.#free.push(block);
        const waiting = this.#waitingForBlock;
        this.#waitingForBlock = undefined;
        waiting?.resolve();
      },
      onDigest: (d) => {
        this.#state = 'done';
        this.#worker.forget(this.#id);
        this.#digest?.resolve(d);
      },
      fail: (err) => {
        this.#failure = err;
        this.#waitingForBlock?.reject(err);
        this.#digest?.reject(err);
      },
    });
    const memory: SharedArrayBuffer[] = [];
    for (let i = 0; i < BLOCKS_PER_HASH; i++) {
      const sab = new SharedArrayBuffer(BLOCK_BYTES);
      memory.push(sab);
      this.#blocks.push(new Uint8Array(sab));
      this.#free.push(i);
    }
    w.post({ op: 'open', id: this.#id, blocks: memory, hmac });
  }

  update(bytes: Uint8Array): Promise<void> | undefined {
    if (this.#failure) throw this.#failure;
    if (this.#state !== 'open') throw new Error('the hash was digested or discarded');
    let at = 0;
    while (at < bytes.length) {
      if (this.#block === undefined) {
        const free = this.#free.pop();
        if (free === undefined) {
          // Every block is at the worker: continue with the rest once one is back.
          const rest = bytes.subarray(at);
          return new Promise<void>((resolve, reject) => (this.#waitingForBlock = { resolve, reject })).then(() => this.update(rest));
        }
        this.#block = free;
        this.#filled = 0;
      }
      const n = Math.min(bytes.length - at, BLOCK_BYTES - this.#filled);
      (this.#blocks[this.#block] as Uint8Array).set(bytes.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === BLOCK_BYTES) this.#send();
    }
    return undefined;
  }

  #send(): void {
    const block = this.#block;
    if (block === undefined || this.#filled === 0) return;
    this.#block = undefined;
    this.#worker.post({ op: 'update', id: this.#id, block, length: this.#filled });
    this.#filled = 0;
  }

  digest(): Promise<Digests> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#state !== 'open') return Promise.reject(new Error('the hash was digested or discarded'));
    this.#state = 'digesting';
    const result = new Promise<Digests>((resolve, reject) => (this.#digest = { resolve, reject }));
    this.#send();
    this.#worker.post({ op: 'digest', id: this.#id });
    return result;
  }

  discard(): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#worker.forget(this.#id);
    if (this.#worker.dead === undefined) this.#worker.post({ op: 'discard', id: this.#id });
  }
}

/** {@link MediaHashing} on the process's hash worker thread. */
export const workerHashing: MediaHashing = {
  sha256(): ParallelSha256 {
    const job = new WorkerDigest(worker(), undefined);
    return { update: (bytes) => job.update(bytes), digest: async () => (await job.digest()).sha256, discard: () => job.discard() };
  },
  sha256AndHmac(key, prefix, macBytes): ParallelDigests {
    const job = new WorkerDigest(worker(), { key: key.slice(), prefix: prefix.slice(), bytes: macBytes });
    return {
      update: (bytes) => job.update(bytes),
      digest: async () => {
        const { sha256, mac } = await job.digest();
        if (mac === undefined) throw new Error('the hash worker gave no MAC');
        return { sha256, mac };
      },
      discard: () => job.discard(),
    };
  },
};
