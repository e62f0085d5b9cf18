/**
 * Where a browser profile keeps its data: the client store (identity, sessions, prekeys, messages; IndexedDB,
 * sealed under a non-extractable key) and the media cache (decrypted attachments, IndexedDB). This is the one
 * place that picks the implementation.
 */
import type { ClientStore, ConversationId, FetchLike, MediaFiles, MessageId, MessageRecord } from '../../client/index.js';
import { openBrowserMediaFiles, openBrowserStore, requestPersistentStorage } from '../store/index.js';

/** A profile's storage. */
export interface Profile {
  readonly name: string;
  readonly store: ClientStore;
  readonly media: MediaFiles;
  /** Whether what is stored survives a reload. */
  readonly persistent: boolean;
  /**
   * A page of a conversation, oldest first: the `limit` messages just older than `before` (a page read on its
   * own, however long the chat), or the newest `limit` without `before`.
   */
  messagesBefore(conversationId: ConversationId, before: { readonly timestamp: number; readonly id: MessageId } | undefined, limit: number): Promise<MessageRecord[]>;
  /** A `blob:` URL of a saved attachment (owned by the media cache: do not revoke it). */
  objectUrl(location: string): Promise<string>;
  /** Deletes everything the profile holds (logging out). */
  destroy(): Promise<void>;
}

/** The default profile of this origin. */
export const DEFAULT_PROFILE = 'parley';

/**
 * Opens (creating when new) the profile `name`. Rejects with `StoreInUseError` while another tab has it open,
 * and `CLIENT_STORE_CORRUPT` when its database is damaged or from a newer release.
 */
export async function openProfile(name: string = DEFAULT_PROFILE): Promise<Profile> {
  const store = await openBrowserStore(name);
  let media;
  try {
    media = await openBrowserMediaFiles(name);
  } catch (err) {
    await store.close();
    throw err;
  }
  // Ask the browser not to evict the keys and history under storage pressure (no prompt in Chromium).
  requestPersistentStorage().catch(() => false);
  return {
    name,
    store,
    media,
    persistent: true,
    messagesBefore: (conversationId, before, limit) => store.messagesBefore(conversationId, before, limit),
    objectUrl: (location) => media.objectUrl(location),
    destroy: async () => {
      await media.destroy();
      await store.destroy();
    },
  };
}

/** The browser's fetch as the SDK calls it (bound: an unbound `fetch` throws "Illegal invocation"). */
export const browserFetch: FetchLike = (input, init) => fetch(input, { ...init, body: init.body as Uint8Array<ArrayBuffer> | undefined });
