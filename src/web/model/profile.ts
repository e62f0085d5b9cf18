/**
 * Where a browser profile keeps its data: the client store (identity, sessions, prekeys, messages) and the
 * media files (decrypted attachments). This is the one place that picks the implementation, so switching
 * stores is one line.
 */
import { InMemoryClientStore, InMemoryMediaFiles, type ClientStore, type FetchLike, type MediaFiles } from '../../client/index.js';

/** A profile's storage. */
export interface Profile {
  readonly name: string;
  readonly store: ClientStore;
  readonly media: MediaFiles;
  /** Whether what is stored survives a reload (false while the in-memory stores are in use). */
  readonly persistent: boolean;
  /** Deletes everything the profile holds (logging out). */
  destroy(): Promise<void>;
}

/** The default profile of this origin. */
export const DEFAULT_PROFILE = 'parley';

/** Opens (creating when new) the profile `name`. */
export async function openProfile(name: string = DEFAULT_PROFILE): Promise<Profile> {
  const store = new InMemoryClientStore();
  const media = new InMemoryMediaFiles();
  return {
    name,
    store,
    media,
    persistent: false,
    destroy: () => store.close(),
  };
}

/** The bytes of a saved attachment as a `blob:` URL (the caller revokes it). */
export async function objectUrlOf(media: MediaFiles, location: string, contentType: string): Promise<string> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for await (const chunk of media.read(location)) parts.push(new Uint8Array(chunk));
  return URL.createObjectURL(new Blob(parts, { type: contentType }));
}

/** The browser's fetch as the SDK calls it (bound: an unbound `fetch` throws "Illegal invocation"). */
export const browserFetch: FetchLike = (input, init) => fetch(input, { ...init, body: init.body as Uint8Array<ArrayBuffer> | undefined });
