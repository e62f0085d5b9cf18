/**
 * {@link MediaFiles} in memory: for tests, and for a browser that keeps media in memory (or as a base for one
 * over IndexedDB / OPFS). Isomorphic. Saved files are `mem:<n>/<name>` locations; staging files are per blob id.
 */
import type { MediaFiles, MediaWriter, StagedFile } from './types.js';

/** How many bytes {@link InMemoryMediaFiles.read} yields at a time. */
const READ_CHUNK = 64 * 1024;

function* chunksOf(parts: readonly Uint8Array[]): Generator<Uint8Array> {
  for (const p of parts) {
    for (let at = 0; at < p.length; at += READ_CHUNK) yield p.slice(at, at + READ_CHUNK);
  }
}

function join(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A file name without directories or control characters (never empty). */
export function sanitizeFileName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = (name.split(/[\\/]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return base === '' || base === '.' || base === '..' ? 'file' : base.slice(0, 255);
}

export class InMemoryMediaFiles implements MediaFiles {
  readonly #staging = new Map<string, Uint8Array[]>();
  readonly #saved = new Map<string, { readonly bytes: Uint8Array; readonly contentType: string }>();
  #next = 0;

  async staging(blobId: string): Promise<StagedFile> {
    const parts = (): Uint8Array[] => {
      let p = this.#staging.get(blobId);
      if (!p) {
        p = [];
        this.#staging.set(blobId, p);
      }
      return p;
    };
    parts();
    return {
      size: async () => (this.#staging.get(blobId) ?? []).reduce((n, p) => n + p.length, 0),
      read: () => {
        const snapshot = [...(this.#staging.get(blobId) ?? [])];
        return (async function* () {
          yield* chunksOf(snapshot);
        })();
      },
      append: async (chunk) => {
        parts().push(chunk.slice());
      },
      remove: async () => {
        this.#staging.delete(blobId);
      },
    };
  }

  async output(name: string, contentType: string): Promise<MediaWriter> {
    const parts: Uint8Array[] = [];
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const location = `mem:${++this.#next}/${sanitizeFileName(name)}`;
    return {
      write: async (chunk) => {
        if (state !== 'open') throw new Error('the media writer is closed');
        parts.push(chunk.slice());
      },
      commit: async () => {
        if (state !== 'open') throw new Error('the media writer is closed');
        state = 'committed';
        this.#saved.set(location, { bytes: join(parts), contentType });
        return location;
      },
      abort: async () => {
        state = 'aborted';
        parts.length = 0;
      },
    };
  }

  read(location: string): AsyncIterable<Uint8Array> {
    const saved = this.#saved;
    return (async function* () {
      const file = saved.get(location);
      if (!file) throw new Error(`no saved file at ${location}`);
      yield* chunksOf([file.bytes]);
    })();
  }

  async remove(location: string): Promise<void> {
    this.#saved.delete(location);
  }

  // ---- inspection (tests, and a browser UI that shows files from memory) ----------------------------------

  /** The bytes of a saved file, or undefined. */
  bytes(location: string): Uint8Array | undefined {
    return this.#saved.get(location)?.bytes.slice();
  }

  /** The locations of the saved files. */
  savedLocations(): string[] {
    return [...this.#saved.keys()];
  }

  /** The blob ids that have staged bytes (or an empty staging file). */
  stagedBlobIds(): string[] {
    return [...this.#staging.keys()];
  }

  /** Staged bytes of a blob (0 when none). */
  stagedSize(blobId: string): number {
    return (this.#staging.get(blobId) ?? []).reduce((n, p) => n + p.length, 0);
  }
}
