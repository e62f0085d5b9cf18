/**
 * The outbox: what this device still has to send (messages, receipts, retry requests), kept in the store so
 * that nothing is lost to a crash or a dropped connection. Entries are written in the same transaction as the
 * change that causes them (a sent message, a received one that needs a receipt), and the drainer delivers
 * them once committed.
 *
 * Receipts to one peer are coalesced: while a receipt entry has not been encrypted yet, later timestamps are
 * added to it (up to MAX_RECEIPT_TIMESTAMPS), and receipts wait `receiptDelayMs` before going out, so a burst
 * of messages is answered with one receipt rather than one per message.
 */
import { drop } from './async.js';
import { MAX_RECEIPT_TIMESTAMPS, ReceiptType, deserializeContent, makeContent, serializeContent } from './content.js';
import type { AccountId, ConversationId, GroupId, MessageId } from './ids.js';
import type { MessageSender } from './sender.js';
import type { ClientStore, OutboxEntry, StoreTx } from './store/types.js';

/** A new pending entry. */
export function newOutboxEntry(fields: Pick<OutboxEntry, 'id' | 'kind' | 'recipientId' | 'timestamp' | 'content'> & { messageId?: MessageId | undefined; now: number }): OutboxEntry {
  return {
    id: fields.id,
    kind: fields.kind,
    recipientId: fields.recipientId,
    timestamp: fields.timestamp,
    content: fields.content,
    state: 'pending',
    request: undefined,
    attempts: 0,
    messageId: fields.messageId,
    createdAt: fields.now,
    sentAt: undefined,
    retriesAnswered: 0,
    error: undefined,
  };
}

/** Queues a message (in the transaction that stores it). */
export async function enqueueMessage(
  tx: StoreTx,
  fields: { recipientId: ConversationId; timestamp: number; content: Uint8Array; messageId: MessageId | undefined; now: number },
): Promise<OutboxEntry> {
  const entry = newOutboxEntry({ id: `message:${fields.recipientId}:${fields.timestamp}`, kind: 'message', ...fields });
  await tx.outbox.put(entry);
  return entry;
}

/**
 * Queues a receipt for `timestamps` to `recipientId`, merged into an open receipt entry of the same type when
 * there is one. `timestamp` is the sender timestamp the receipt itself carries.
 */
export async function enqueueReceipt(tx: StoreTx, recipientId: AccountId, type: ReceiptType, timestamps: readonly number[], timestamp: number, now: number, senderNumber: string): Promise<void> {
  let rest = [...timestamps];
  const base = `receipt:${recipientId}:${type}`;
  for (let n = 0; rest.length > 0 && n < 1000; n++) {
    const id = n === 0 ? base : `${base}#${n}`;
    const existing = await tx.outbox.get(id);
    if (existing && (existing.state !== 'pending' || existing.request)) continue; // in flight or done with
    const content = existing ? deserializeContent(existing.content) : makeContent({ timestamp: BigInt(timestamp + n), senderNumber, body: { case: 'receipt', value: { type, timestamps: [] } } });
    if (content.body.case !== 'receipt') continue;
    const have = new Set(content.body.value.timestamps.map(Number));
    const room = MAX_RECEIPT_TIMESTAMPS - have.size;
    if (room <= 0) continue;
    const adding = rest.filter((t) => !have.has(t)).slice(0, room);
    rest = rest.filter((t) => !adding.includes(t) && !have.has(t));
    content.body.value.timestamps.push(...adding.map(BigInt));
    const bytes = serializeContent(content);
    await tx.outbox.put(existing ? { ...existing, content: bytes } : newOutboxEntry({ id, kind: 'receipt', recipientId, timestamp: Number(content.timestamp), content: bytes, now }));
  }
}

/** Queues a RetryRequest for a message from `recipientId`'s device that could not be decrypted (once per message). */
export async function enqueueRetryRequest(
  tx: StoreTx,
  fields: {
    recipientId: AccountId;
    deviceId: number;
    failedTimestamp: number;
    ciphertextType: number;
    timestamp: number;
    now: number;
    senderNumber: string;
    /** For a group message: its group. */
    groupId?: GroupId | undefined;
  },
): Promise<boolean> {
  const id = `retry:${fields.recipientId}:${fields.deviceId}:${fields.failedTimestamp}`;
  if (await tx.outbox.get(id)) return false;
  const content = makeContent({
    timestamp: BigInt(fields.timestamp),
    senderNumber: fields.senderNumber,
    body: { case: 'retry', value: { timestamp: BigInt(fields.failedTimestamp), ciphertextType: fields.ciphertextType, groupId: fields.groupId ?? '' } },
  });
  await tx.outbox.put(newOutboxEntry({ id, kind: 'retry-request', recipientId: fields.recipientId, timestamp: fields.timestamp, content: serializeContent(content), now: fields.now }));
  return true;
}

export interface OutboxOptions {
  readonly store: ClientStore;
  readonly sender: MessageSender;
  readonly now: () => number;
  /** Entries delivered at the same time (default 4). */
  readonly concurrency?: number | undefined;
  /** How long a receipt waits for more timestamps before it goes out, ms (default 200). */
  readonly receiptDelayMs?: number | undefined;
  /** How long an entry whose delivery failed (and may work later) waits before the next try, ms (default 30,000). */
  readonly retryLaterMs?: number | undefined;
  /** Failures of background deliveries (the entry says what happened; this is for logs). */
  readonly onError: (err: unknown, entry: OutboxEntry) => void;
}

/** Delivers outbox entries in the background, and on demand. */
export class Outbox {
  readonly #o: OutboxOptions;
  readonly #inFlight = new Map<string, Promise<OutboxEntry>>();
  /** Entries that failed for now: not before this time. */
  readonly #notBefore = new Map<string, number>();
  #draining = false;
  #again = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #abort = new AbortController();
  #idleWaiters: Array<() => void> = [];

  constructor(options: OutboxOptions) {
    this.#o = options;
  }

  /** Delivers `id` now (or joins the delivery under way) and resolves with the final entry. */
  deliver(id: string, signal?: AbortSignal): Promise<OutboxEntry> {
    const running = this.#inFlight.get(id);
    if (running) return running;
    const signals = signal ? AbortSignal.any([signal, this.#abort.signal]) : this.#abort.signal;
    const p = this.#o.sender.deliver(id, { signal: signals }).finally(() => {
      this.#inFlight.delete(id);
      this.kick();
    });
    this.#inFlight.set(id, p);
    return p;
  }

  /** Looks for pending entries and delivers them (call after committing new entries, and on reconnect). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#draining) {
      this.#again = true;
      return;
    }
    this.#draining = true;
    drop(
      this.#drain().finally(() => {
        this.#draining = false;
        if (this.#again) {
          this.#again = false;
          this.kick();
        } else {
          this.#wakeIdle();
        }
      }),
    );
  }

  /** Lets entries that failed earlier be tried again at the next kick (after reconnecting). */
  retryFailedSoon(): void {
    this.#notBefore.clear();
    this.kick();
  }

  /** Resolves when nothing is being delivered and nothing deliverable is pending (entries waiting after a failure do not count). */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops background deliveries (aborting those under way; their entries stay pending). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    this.#wakeIdle(true);
  }

  #isIdle(): boolean {
    return this.#stopped || (this.#inFlight.size === 0 && !this.#draining && this.#timer === undefined);
  }

  #wakeIdle(force = false): void {
    if (!force && !this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  async #drain(): Promise<void> {
    try {
      const now = this.#o.now();
      const concurrency = this.#o.concurrency ?? 4;
      // Enough to find `concurrency` entries that are neither in flight nor waiting after a failure.
      const pending = await this.#o.store.transaction((tx) => tx.outbox.pending(this.#inFlight.size + this.#notBefore.size + concurrency + 8));
      let wakeAt = Infinity;
      for (const entry of pending) {
        if (this.#stopped || this.#inFlight.size >= concurrency) break;
        if (this.#inFlight.has(entry.id)) continue;
        const notBefore = Math.max(
          this.#notBefore.get(entry.id) ?? 0,
          entry.kind === 'receipt' ? entry.createdAt + (this.#o.receiptDelayMs ?? 200) : 0,
        );
        if (notBefore > now) {
          if (entry.kind === 'receipt') wakeAt = Math.min(wakeAt, notBefore);
          continue;
        }
        drop(
          this.deliver(entry.id).catch((err: unknown) => {
            this.#notBefore.set(entry.id, this.#o.now() + (this.#o.retryLaterMs ?? 30_000));
            this.#o.onError(err, entry);
          }),
        );
      }
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (wakeAt !== Infinity && !this.#stopped) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.kick();
        }, Math.max(0, wakeAt - now));
      }
    } catch (err) {
      if (!this.#stopped) throw err;
    }
  }
}
