/**
 * Cross-node presence on a JetStream key-value bucket: one key per (account, node) while the account has
 * a socket on that node, `<accountId>.<node>`. A node puts its keys on the account's first socket,
 * re-puts them every third of the TTL (a heartbeat), and deletes them on the last socket (a goodbye).
 * Every node watches the bucket into a local map, so {@link NatsPresenceDirectory.isOnline} answers
 * without a round trip. An entry not refreshed within the TTL counts as gone: that is how the accounts
 * of a node that died (or lost NATS) without saying goodbye go offline, and the directory reports them
 * through `onExpired` so that their "last seen" is recorded by the survivors. The bucket's own max age
 * is the TTL too, so the server forgets dead entries as well.
 *
 * Freshness compares the entry's creation time on the NATS server with this node's clock: clocks must
 * agree to well within the TTL (30 s by default), as NTP keeps them.
 */
import type { KV, KvEntry, NatsConnection, QueuedIterator } from 'nats';
import { drop } from '../drop.js';
import { isAccountId, type AccountId } from '../ids.js';
import type { Logger } from '../log.js';
import type { PresenceDirectory } from './bus.js';

/** The value of a presence key: a format version, for later changes. */
const VALUE = Uint8Array.of(1);
/** How long close() waits for this node's goodbye deletes. */
const CLOSE_TIMEOUT_MS = 3000;
/** Puts in flight at once during a refresh. */
const REFRESH_BATCH = 256;

/** Options of {@link NatsPresenceDirectory}. */
export interface NatsPresenceOptions {
  readonly nodeId: string;
  readonly bucket: string;
  /** How long an entry lives without a refresh, ms. */
  readonly ttlMs: number;
  readonly logger: Logger;
}

/** The node id as a KV key token: characters outside `A-Za-z0-9_-` become `=XX` (hex). */
export function presenceNodeToken(nodeId: string): string {
  return nodeId.replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** {@link PresenceDirectory} on a JetStream KV bucket. */
export class NatsPresenceDirectory implements PresenceDirectory {
  readonly #nc: NatsConnection;
  readonly #options: NatsPresenceOptions;
  readonly #node: string;
  readonly #logger: Logger;
  /** Accounts with a socket on this node. */
  readonly #local = new Set<AccountId>();
  /** Other nodes' entries: account -> node token -> when last refreshed (ms, server clock). */
  readonly #remote = new Map<AccountId, Map<string, number>>();
  readonly #expiredListeners = new Set<(accountId: AccountId, lastOnlineAt: number) => void>();
  readonly #pending = new Set<Promise<unknown>>();
  #kv: KV | undefined;
  #watch: QueuedIterator<KvEntry> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshing = false;
  #closed = false;
  /** The watch ended with an error: the next heartbeat starts it again. */
  #watchBroken = false;

  private constructor(nc: NatsConnection, options: NatsPresenceOptions) {
    this.#nc = nc;
    this.#options = options;
    this.#node = presenceNodeToken(options.nodeId);
    this.#logger = options.logger;
  }

  /** Opens (creating when needed) the bucket and starts watching it. */
  static async open(nc: NatsConnection, options: NatsPresenceOptions): Promise<NatsPresenceDirectory> {
    const directory = new NatsPresenceDirectory(nc, options);
    await directory.#openBucket();
    await directory.#startWatch();
    const interval = Math.max(50, Math.floor(options.ttlMs / 3));
    directory.#timer = setInterval(() => directory.#tick(), interval);
    directory.#timer.unref();
    return directory;
  }

  join(accountId: AccountId): void {
    if (this.#closed || this.#local.has(accountId)) return;
    this.#local.add(accountId);
    this.#track(this.#put(accountId));
  }

  leave(accountId: AccountId): void {
    if (!this.#local.delete(accountId)) return;
    if (this.#closed) return;
    this.#track(this.#delete(accountId));
  }

  isOnline(accountId: AccountId): boolean {
    if (this.#local.has(accountId)) return true;
    const nodes = this.#remote.get(accountId);
    if (nodes === undefined) return false;
    const freshAfter = Date.now() - this.#options.ttlMs;
    for (const at of nodes.values()) if (at > freshAfter) return true;
    return false;
  }

  onExpired(listener: (accountId: AccountId, lastOnlineAt: number) => void): () => void {
    this.#expiredListeners.add(listener);
    return () => this.#expiredListeners.delete(listener);
  }

  /** After a NATS outage: re-create the bucket if the server lost it, re-put this node's keys, re-watch. */
  async reconnected(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#openBucket();
      await this.#startWatch();
      await this.#refresh();
    } catch (err) {
      this.#logger.warn({ err }, 'presence: resync after reconnect failed; retrying at the next heartbeat');
    }
  }

  /** Says goodbye: deletes this node's keys and stops watching. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const accounts = [...this.#local];
    this.#local.clear();
    for (const accountId of accounts) this.#track(this.#delete(accountId));
    // Bounded: with NATS down the deletes cannot complete, and the entries expire with the TTL anyway.
    await Promise.race([Promise.allSettled([...this.#pending]), new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref())]);
    this.#watch?.stop();
    this.#watch = undefined;
  }

  #key(accountId: AccountId): string {
    return `${accountId}.${this.#node}`;
  }

  async #openBucket(): Promise<void> {
    const js = this.#nc.jetstream();
    try {
      this.#kv = await js.views.kv(this.#options.bucket, { history: 1, ttl: this.#options.ttlMs });
    } catch (err) {
      // The bucket exists with another configuration (another TTL): use it as it is.
      this.#logger.warn({ err, bucket: this.#options.bucket }, 'presence bucket exists with another configuration; binding to it');
      this.#kv = await js.views.kv(this.#options.bucket, { bindOnly: true });
    }
  }

  async #startWatch(): Promise<void> {
    const kv = this.#kv;
    if (kv === undefined) return;
    this.#watch?.stop();
    let initialized: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      initialized = resolve;
    });
    const watch = await kv.watch({ key: '>', initializedFn: () => initialized() });
    this.#watch = watch;
    this.#watchBroken = false;
    drop(
      (async () => {
        for await (const entry of watch) this.#onEntry(entry);
      })(),
      (err) => {
        if (this.#closed || this.#watch !== watch) return;
        this.#watchBroken = true;
        this.#logger.warn({ err }, 'presence watch failed; restarting it at the next heartbeat');
      },
    );
    // The initial values (one per live key) arrive before `initializedFn`; bounded, the watch goes on.
    await Promise.race([ready, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  }

  #onEntry(entry: KvEntry): void {
    const key = entry.key;
    const account = key.slice(0, 36);
    const node = key.slice(37);
    if (key[36] !== '.' || node.length === 0 || !isAccountId(account)) {
      this.#logger.warn({ bucket: this.#options.bucket }, 'presence: malformed key ignored');
      return;
    }
    if (node === this.#node) return; // this node's own accounts are in #local
    const accountId = account as AccountId;
    if (entry.operation === 'PUT') {
      let nodes = this.#remote.get(accountId);
      if (nodes === undefined) {
        nodes = new Map();
        this.#remote.set(accountId, nodes);
      }
      nodes.set(node, entry.created.getTime());
      return;
    }
    const nodes = this.#remote.get(accountId);
    nodes?.delete(node);
    if (nodes?.size === 0) this.#remote.delete(accountId);
  }

  #tick(): void {
    this.#expire();
    if (this.#watchBroken && !this.#nc.isClosed()) {
      this.#watchBroken = false;
      drop(this.#startWatch(), (err) => {
        this.#watchBroken = true;
        this.#logger.debug({ err }, 'presence watch restart failed');
      });
    }
    drop(this.#refresh(), (err) => this.#logger.debug({ err }, 'presence refresh failed'));
  }

  /** Drops entries older than the TTL; reports accounts that thereby went offline. */
  #expire(): void {
    const freshAfter = Date.now() - this.#options.ttlMs;
    for (const [accountId, nodes] of this.#remote) {
      let newest = 0;
      let stale = 0;
      for (const [node, at] of nodes) {
        if (at > freshAfter) continue;
        nodes.delete(node);
        stale = Math.max(stale, at);
      }
      for (const at of nodes.values()) newest = Math.max(newest, at);
      if (nodes.size === 0) this.#remote.delete(accountId);
      if (stale > 0 && newest === 0 && !this.#local.has(accountId)) {
        for (const listener of this.#expiredListeners) listener(accountId, stale);
      }
    }
  }

  /** Re-puts every local key (the heartbeat). */
  async #refresh(): Promise<void> {
    if (this.#refreshing || this.#closed) return;
    this.#refreshing = true;
    try {
      const accounts = [...this.#local];
      for (let i = 0; i < accounts.length; i += REFRESH_BATCH) {
        await Promise.allSettled(accounts.slice(i, i + REFRESH_BATCH).map((a) => this.#put(a)));
      }
    } finally {
      this.#refreshing = false;
    }
  }

  async #put(accountId: AccountId): Promise<void> {
    if (this.#kv === undefined || this.#nc.isClosed()) return;
    try {
      await this.#kv.put(this.#key(accountId), VALUE);
    } catch (err) {
      this.#logger.debug({ err }, 'presence put failed; the heartbeat retries');
    }
  }

  async #delete(accountId: AccountId): Promise<void> {
    if (this.#kv === undefined || this.#nc.isClosed()) return;
    try {
      await this.#kv.delete(this.#key(accountId));
    } catch (err) {
      this.#logger.debug({ err }, 'presence delete failed; the entry expires with the TTL');
    }
  }

  #track(promise: Promise<unknown>): void {
    this.#pending.add(promise);
    drop(promise.finally(() => this.#pending.delete(promise)));
  }
}
