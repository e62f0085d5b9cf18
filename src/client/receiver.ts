/**
 * The receive pipeline, after Signal-Desktop's MessageReceiver:
 *
 *   decode envelope -> decrypt -> apply (persist the message, or the failure) -> commit -> ack -> emit events
 *
 * Envelopes pushed close together are handled as one batch in one store transaction; each envelope runs in its
 * own savepoint, so one that fails rolls back alone and becomes a "could not decrypt" record instead. Only
 * after the commit are the pushes answered with 200 (the ack that lets the server delete them), so a crash
 * at any point loses nothing: the server redelivers what was not acked, and what was committed but not acked
 * is recognised by its envelope guid (and by the ratchet, which refuses a message key used twice).
 *
 * Events are emitted after the ack, in envelope order. Side effects that must survive a crash (delivery
 * receipts, retry requests, resends) are outbox entries written in the same transaction.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { EnvelopeSchema, type Envelope } from '../protocol/gen/service_pb.js';
import {
  CiphertextMessageType,
  PreKeySignalMessage,
  ProtocolAddress,
  ProtocolError,
  ProtocolErrorCode,
  SignalMessage,
  signalDecrypt,
  signalDecryptPreKey,
  toHex,
  type CryptoProvider,
} from '../protocol/index.js';
import { deferred, SerialQueue, type Deferred } from './async.js';
import { ReceiptType, TypingAction, decodeContent, type Content } from './content.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ReceiptKind } from './events.js';
import { isAccountId, isE164, messageId, type AccountId, type MessageId } from './ids.js';
import { enqueueReceipt, enqueueRetryRequest } from './outbox.js';
import { protocolStores, requireAccount, type IdentityChangeNotice } from './protocol-stores.js';
import { archiveSession } from './sessions.js';
import { errorCode } from './sender.js';
import { advanceStatus } from './status.js';
import type { AccountRecord, ClientStore, ContactRecord, MessageRecord, StoreTx } from './store/types.js';

/** Where an item came from. */
export interface Origin {
  readonly source: AccountId;
  readonly deviceId: number;
}

/** What one envelope turned into (after commit). */
export type ReceivedItem =
  | { readonly kind: 'ignored' }
  | (Origin & { readonly kind: 'message'; readonly message: MessageRecord })
  | (Origin & { readonly kind: 'timer'; readonly expireTimer: number; readonly timestamp: number })
  | (Origin & { readonly kind: 'reaction'; readonly targetId: MessageId; readonly emoji: string; readonly remove: boolean; readonly timestamp: number; readonly message: MessageRecord | undefined })
  | (Origin & { readonly kind: 'edit'; readonly targetId: MessageId; readonly body: string; readonly timestamp: number; readonly message: MessageRecord | undefined })
  | (Origin & { readonly kind: 'delete'; readonly targetId: MessageId; readonly timestamp: number })
  | (Origin & { readonly kind: 'receipt'; readonly receipt: ReceiptKind; readonly timestamp: number; readonly timestamps: readonly number[]; readonly updated: readonly MessageRecord[] })
  | (Origin & { readonly kind: 'typing'; readonly started: boolean; readonly timestamp: number })
  | (Origin & { readonly kind: 'retry-request'; readonly timestamp: number; readonly resent: boolean })
  | (Origin & { readonly kind: 'undecryptable'; readonly timestamp: number; readonly code: string; readonly retryRequested: boolean });

/** The committed outcome of one batch. */
export interface ReceivedBatch {
  readonly items: readonly ReceivedItem[];
  readonly identityChanges: readonly IdentityChangeNotice[];
  /** A PreKey message consumed one-time prekeys: time to check the server's key count. */
  readonly usedPreKeys: boolean;
  /** Outbox entries were added or re-armed. */
  readonly outboxChanged: boolean;
}

export interface ReceiverOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly now: () => number;
  /** Hands out sender timestamps for what the pipeline sends (receipts, retry requests): unique per sender. */
  readonly nextTimestamp: () => number;
  /** Envelopes per transaction at most (default 100). */
  readonly batchSize?: number | undefined;
  /** How long to wait for more envelopes before processing a batch, ms (default 0: the next tick). */
  readonly batchDelayMs?: number | undefined;
  /** Send delivery receipts for received messages (default true). */
  readonly deliveryReceipts?: boolean | undefined;
  /** How many RetryRequests for one message are answered with a resend (default 3). */
  readonly maxResends?: number | undefined;
  /** Receives each committed batch, in order, after its envelopes were acked. */
  readonly onBatch: (batch: ReceivedBatch) => void;
}

/** RetryRequests older than this are not answered with a resend (the outbox keeps messages a day). */
export const RESEND_WINDOW_MS = 24 * 3600_000;

const RECEIPT_KIND: Readonly<Record<number, ReceiptKind>> = {
  [ReceiptType.DELIVERY]: 'delivery',
  [ReceiptType.READ]: 'read',
  [ReceiptType.VIEWED]: 'viewed',
};
const RECEIPT_STATUS = { delivery: 'delivered', read: 'read', viewed: 'viewed' } as const;

/**
 * Failures that mean the session with the sending device is unusable: it is archived, so that the retry
 * request (and what follows) runs over a new session. Undecodable bytes do not count: they say nothing about
 * the session, and archiving on them would let anyone who can inject envelopes reset sessions.
 */
const SESSION_ERRORS: ReadonlySet<string> = new Set<string>([
  ProtocolErrorCode.BadMac,
  ProtocolErrorCode.NoSession,
  ProtocolErrorCode.InvalidPreKeyId,
  ProtocolErrorCode.InvalidSignedPreKeyId,
  ProtocolErrorCode.InvalidKyberPreKeyId,
  ProtocolErrorCode.InvalidRecord,
  ProtocolErrorCode.TooFarInFuture,
  ProtocolErrorCode.SessionExpired,
]);

interface Pending {
  readonly bytes: Uint8Array;
  readonly done: Deferred<void>;
}

interface BatchState {
  readonly account: AccountRecord;
  readonly now: number;
  usedPreKeys: boolean;
  outboxChanged: boolean;
  readonly identityChanges: IdentityChangeNotice[];
}

export class MessageReceiver {
  readonly #o: ReceiverOptions;
  readonly #queue = new SerialQueue();
  #batch: Pending[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inProgress = 0;

  constructor(options: ReceiverOptions) {
    this.#o = options;
  }

  /**
   * Takes one pushed envelope; resolves once it is durably processed (answer the push with 200 then), rejects
   * when the batch's transaction failed (answer with an error: the server keeps the envelope).
   */
  receive(bytes: Uint8Array): Promise<void> {
    const done = deferred<void>();
    this.#batch.push({ bytes, done });
    this.#inProgress++;
    if (this.#batch.length >= (this.#o.batchSize ?? 100)) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), this.#o.batchDelayMs ?? 0);
    return done.promise.finally(() => {
      this.#inProgress--;
    });
  }

  /** Resolves when every envelope received so far has been processed. */
  async whenIdle(): Promise<void> {
    while (this.#inProgress > 0 || this.#batch.length > 0) {
      this.#flush();
      await this.#queue.run(async () => undefined);
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    void this.#queue
      .run(() => this.#process(batch))
      .then(
        (result) => {
          for (const p of batch) p.done.resolve();
          this.#o.onBatch(result);
        },
        (err: unknown) => {
          for (const p of batch) p.done.reject(err);
        },
      );
  }

  async #process(batch: readonly Pending[]): Promise<ReceivedBatch> {
    const now = this.#o.now();
    return this.#o.store.transaction(async (tx) => {
      const state: BatchState = { account: await requireAccount(tx), now, usedPreKeys: false, outboxChanged: false, identityChanges: [] };
      const items: ReceivedItem[] = [];
      for (const p of batch) items.push(await this.#one(tx, state, p.bytes));
      return { items, identityChanges: state.identityChanges, usedPreKeys: state.usedPreKeys, outboxChanged: state.outboxChanged };
    });
  }

  async #one(tx: StoreTx, state: BatchState, bytes: Uint8Array): Promise<ReceivedItem> {
    let env: Envelope;
    try {
      env = fromBinary(EnvelopeSchema, bytes);
    } catch {
      return { kind: 'ignored' }; // not an envelope: acknowledge and drop, it can never be processed
    }
    if (!isAccountId(env.sourceAccountId)) return { kind: 'ignored' };
    const origin: Origin = { source: env.sourceAccountId, deviceId: env.sourceDeviceId };
    const guid = env.guid.length > 0 ? toHex(env.guid) : undefined;
    if (guid !== undefined && (await tx.envelopes.has(guid))) return { kind: 'ignored' };
    let item: ReceivedItem;
    try {
      item = await tx.savepoint(() => this.#decryptAndApply(tx, state, env, origin));
    } catch (err) {
      item = await tx.savepoint(() => this.#recordFailure(tx, state, env, origin, err));
    }
    if (guid !== undefined && !env.ephemeral) await tx.envelopes.add(guid, state.now);
    return item;
  }

  async #decryptAndApply(tx: StoreTx, state: BatchState, env: Envelope, origin: Origin): Promise<ReceivedItem> {
    const stores = protocolStores(tx, state.now);
    const address = new ProtocolAddress(origin.source, origin.deviceId);
    let plaintext: Uint8Array;
    if (env.type === CiphertextMessageType.PreKey) {
      const message = PreKeySignalMessage.deserialize(env.content);
      plaintext = await signalDecryptPreKey(this.#o.crypto, message, address, stores);
      state.usedPreKeys = true;
    } else if (env.type === CiphertextMessageType.Whisper) {
      plaintext = await signalDecrypt(this.#o.crypto, SignalMessage.deserialize(env.content), address, stores);
    } else {
      throw new ClientError(ClientErrorCode.InvalidContent, `unsupported envelope type ${env.type}`);
    }
    const content = decodeContent(plaintext);
    const item = await this.#apply(tx, state, env, origin, content);
    state.identityChanges.push(...stores.identityChanges);
    return item;
  }

  async #apply(tx: StoreTx, state: BatchState, env: Envelope, origin: Origin, content: Content): Promise<ReceivedItem> {
    const { source } = origin;
    const now = state.now;
    const timestamp = content.timestamp > 0n ? Number(content.timestamp) : Number(env.timestamp);
    const contact = await this.#noteContact(tx, source, content.senderNumber, now);
    const body = content.body;
    switch (body.case) {
      case 'data': {
        const data = body.value;
        if (data.expireTimer !== contact.expireTimer) await tx.contacts.put({ ...contact, expireTimer: data.expireTimer, updatedAt: now });
        if (data.expireTimerUpdate) return { ...origin, kind: 'timer', expireTimer: data.expireTimer, timestamp };
        const id = messageId(source, timestamp);
        const existing = await tx.messages.get(id);
        if (existing && existing.kind !== 'undecryptable') return { kind: 'ignored' }; // the same message again
        const message: MessageRecord = {
          id,
          conversationId: source,
          senderId: source,
          direction: 'incoming',
          timestamp,
          serverTimestamp: Number(env.serverTimestamp),
          receivedAt: now,
          kind: 'text',
          body: data.body,
          quote: data.quote && isAccountId(data.quote.authorAccountId)
            ? { timestamp: Number(data.quote.id), authorId: data.quote.authorAccountId, text: data.quote.text }
            : undefined,
          reactions: [],
          editedAt: undefined,
          deleted: false,
          viewOnce: data.viewOnce,
          expireTimer: data.expireTimer,
          expiresAt: undefined,
          status: 'received',
          error: undefined,
        };
        await tx.messages.put(message);
        if (this.#o.deliveryReceipts !== false) {
          await enqueueReceipt(tx, source, ReceiptType.DELIVERY, [timestamp], this.#o.nextTimestamp(), now, state.account.number);
          state.outboxChanged = true;
        }
        return { ...origin, kind: 'message', message };
      }
      case 'reaction': {
        const r = body.value;
        const targetId = isAccountId(r.targetAuthorAccountId) ? messageId(r.targetAuthorAccountId, Number(r.targetTimestamp)) : undefined;
        if (!targetId) return { kind: 'ignored' };
        let message = await tx.messages.get(targetId);
        if (message && message.conversationId === source && !message.deleted) {
          const others = message.reactions.filter((x) => x.authorId !== source);
          message = { ...message, reactions: r.remove ? others : [...others, { authorId: source, emoji: r.emoji, timestamp }] };
          await tx.messages.put(message);
        } else {
          message = undefined;
        }
        return { ...origin, kind: 'reaction', targetId, emoji: r.emoji, remove: r.remove, timestamp, message };
      }
      case 'edit': {
        const e = body.value;
        const targetId = messageId(source, Number(e.targetTimestamp));
        let message = await tx.messages.get(targetId);
        const text = e.data?.body ?? '';
        if (message && message.direction === 'incoming' && !message.deleted && (message.editedAt ?? 0) < timestamp) {
          message = { ...message, body: text, editedAt: timestamp };
          await tx.messages.put(message);
        } else {
          message = undefined;
        }
        return { ...origin, kind: 'edit', targetId, body: text, timestamp, message };
      }
      case 'delete': {
        const targetId = messageId(source, Number(body.value.targetTimestamp));
        const message = await tx.messages.get(targetId);
        if (message && message.direction === 'incoming') {
          await tx.messages.put({ ...message, body: '', quote: undefined, reactions: [], deleted: true });
        }
        return { ...origin, kind: 'delete', targetId, timestamp };
      }
      case 'receipt': {
        const kind = RECEIPT_KIND[body.value.type] ?? 'delivery';
        const timestamps = body.value.timestamps.map(Number);
        const updated: MessageRecord[] = [];
        for (const t of timestamps) {
          const m = await tx.messages.get(messageId(state.account.accountId, t));
          if (!m || m.conversationId !== source || m.direction !== 'outgoing') continue;
          const status = advanceStatus(m.status, RECEIPT_STATUS[kind]);
          if (status === m.status) continue;
          const next = { ...m, status };
          await tx.messages.put(next);
          updated.push(next);
        }
        return { ...origin, kind: 'receipt', receipt: kind, timestamp, timestamps, updated };
      }
      case 'typing':
        return { ...origin, kind: 'typing', started: body.value.action === TypingAction.STARTED, timestamp };
      case 'retry': {
        const failed = Number(body.value.timestamp);
        // A request that came in a PreKey message arrived on a session the requester has just started: that
        // session is the reset. Otherwise start one ourselves (the next send fetches a fresh bundle).
        if (env.type !== CiphertextMessageType.PreKey) await archiveSession(tx, source, origin.deviceId);
        const entry = await tx.outbox.findMessage(source, failed);
        let resent = false;
        if (entry && entry.retriesAnswered < (this.#o.maxResends ?? 3) && now - entry.createdAt < RESEND_WINDOW_MS) {
          await tx.outbox.put({ ...entry, state: 'pending', request: undefined, retriesAnswered: entry.retriesAnswered + 1 });
          state.outboxChanged = true;
          resent = true;
        }
        return { ...origin, kind: 'retry-request', timestamp: failed, resent };
      }
      default:
        throw new ClientError(ClientErrorCode.InvalidContent, 'content has no known body');
    }
  }

  /** The contact record of `source`, created on first contact; a number the sender claims is kept as unconfirmed. */
  async #noteContact(tx: StoreTx, source: AccountId, claimedNumber: string, now: number): Promise<ContactRecord> {
    const claim = isE164(claimedNumber) ? claimedNumber : undefined;
    const contact = await tx.contacts.get(source);
    if (!contact) {
      const created: ContactRecord = { accountId: source, number: claim, numberVerified: false, expireTimer: 0, createdAt: now, updatedAt: now };
      await tx.contacts.put(created);
      return created;
    }
    if (contact.number === undefined && claim !== undefined) {
      const updated: ContactRecord = { ...contact, number: claim, numberVerified: false, updatedAt: now };
      await tx.contacts.put(updated);
      return updated;
    }
    return contact;
  }

  /**
   * Records an envelope that could not be processed: a duplicate is dropped silently; anything else leaves a
   * placeholder message, archives the session with the sending device when the failure was the session's,
   * and queues a RetryRequest so the sender resends over a new session.
   */
  async #recordFailure(tx: StoreTx, state: BatchState, env: Envelope, origin: Origin, err: unknown): Promise<ReceivedItem> {
    if (ProtocolError.is(err, ProtocolErrorCode.DuplicateMessage)) return { kind: 'ignored' };
    if (env.ephemeral) return { kind: 'ignored' }; // a lost typing indicator is not worth a retry
    const timestamp = Number(env.timestamp);
    const code = errorCode(err);
    const id = messageId(origin.source, timestamp);
    if (!(await tx.messages.get(id))) {
      await tx.messages.put({
        id,
        conversationId: origin.source,
        senderId: origin.source,
        direction: 'incoming',
        timestamp,
        serverTimestamp: Number(env.serverTimestamp),
        receivedAt: state.now,
        kind: 'undecryptable',
        body: '',
        quote: undefined,
        reactions: [],
        editedAt: undefined,
        deleted: false,
        viewOnce: false,
        expireTimer: 0,
        expiresAt: undefined,
        status: 'received',
        error: code,
      });
    }
    if (SESSION_ERRORS.has(code)) await archiveSession(tx, origin.source, origin.deviceId);
    await this.#noteContact(tx, origin.source, '', state.now);
    const retryRequested = await enqueueRetryRequest(tx, {
      recipientId: origin.source,
      deviceId: origin.deviceId,
      failedTimestamp: timestamp,
      ciphertextType: env.type,
      timestamp: this.#o.nextTimestamp(),
      now: state.now,
      senderNumber: state.account.number,
    });
    if (retryRequested) state.outboxChanged = true;
    return { ...origin, kind: 'undecryptable', timestamp, code, retryRequested };
  }
}
