/**
 * The web app's storage: the SDK's `ClientStore` over IndexedDB (records sealed at rest under a
 * non-extractable WebCrypto key) and its `MediaFiles` media cache over IndexedDB Blobs. No DOM beyond
 * IndexedDB, WebCrypto, Web Locks and object URLs.
 */
import { BrowserClientStore, type BrowserStoreOptions } from './idb-store.js';
import { BrowserMediaFiles } from './media-files.js';

export { BrowserClientStore, StoreInUseError, storeDatabaseName, mediaDatabaseName, type BrowserStoreOptions } from './idb-store.js';
export { BrowserMediaFiles, type SavedFileInfo } from './media-files.js';
export { SCHEMA_VERSION } from './schema.js';

/**
 * Opens the store of profile `name` (creating it on first use). One tab at a time: rejects with
 * `StoreInUseError` while the profile is open elsewhere; `CLIENT_STORE_CORRUPT` when the database is from a
 * newer release or damaged. `close()` releases it; `destroy()` deletes the profile's databases (log-out).
 */
export async function openBrowserStore(name: string, options?: BrowserStoreOptions): Promise<BrowserClientStore> {
  return BrowserClientStore.open(name, options);
}

/** Opens the media cache of profile `name` (for `ClientOptions.media`); `objectUrl(location)` shows a saved file. */
export async function openBrowserMediaFiles(name: string): Promise<BrowserMediaFiles> {
  return BrowserMediaFiles.open(name);
}

/**
 * Asks the browser to keep this origin's storage under storage pressure (otherwise it may evict IndexedDB,
 * keys and history with it). Resolves with whether storage is persistent; Chromium decides without a prompt
 * (an installed app or a bookmarked, engaged site is granted), Firefox may ask the user.
 */
export async function requestPersistentStorage(): Promise<boolean> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (!storage?.persist) return false;
  return (await storage.persisted()) || storage.persist();
}
