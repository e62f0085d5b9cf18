/**
 * The local profile: a folder (default `~/.parley`, or `--profile DIR`, or `PARLEY_PROFILE`) holding the
 * SQLite database with this device's keys, sessions, contacts and messages, and `media/` with the files
 * received. Several accounts live on one machine as several profiles.
 */
import { availableParallelism, homedir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Client, type ClientOptions } from '../client/client.js';
import type { WebSocketConstructor } from '../client/transport/websocket.js';
import { NodeCryptoProvider } from '../node/crypto-provider.js';
import { FileMediaFiles } from '../node/media/files.js';
import { workerHashing } from '../node/media/hash-worker.js';
import type { MediaHashing } from '../client/media/types.js';
import { nodeFetch } from './http-fetch.js';
import { mediaDir } from './media.js';
import { SqliteClientStore } from './store/sqlite-store.js';

/** The profile folder: the flag, else `PARLEY_PROFILE`, else `~/.parley`. */
export function profileDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.PARLEY_PROFILE ?? path.join(homedir(), '.parley'));
}

/** The crypto provider of the terminal client. */
export const crypto = new NodeCryptoProvider();

/** Opens the profile's store (creating the folder and database when new). */
export function openStore(dir: string): SqliteClientStore {
  return SqliteClientStore.open(dir);
}

/**
 * Where the terminal client hashes files it sends and receives: on a worker thread when there is another core
 * (the main thread then does AES and moves the bytes; docs/media.md, "Speed"), else inline.
 */
export const MEDIA_HASHING: MediaHashing | undefined = availableParallelism() > 1 ? workerHashing : undefined;

/**
 * A Client over the profile's store, with Node's WebSocket (`ws`) and HTTP ({@link nodeFetch}), keeping received files in the
 * profile's media folder. Attachments are downloaded by the commands that show them (`receive`, the daemon,
 * `download`), not in the background.
 */
export async function openClient(profile: string, store: SqliteClientStore, options: Partial<ClientOptions> = {}): Promise<Client> {
  return Client.open({
    store,
    crypto,
    WebSocket: WebSocket satisfies WebSocketConstructor,
    fetch: nodeFetch,
    media: new FileMediaFiles(mediaDir(profile)),
    autoDownloadBytes: 0,
    mediaTransfer: { hashing: MEDIA_HASHING },
    ...options,
  });
}
