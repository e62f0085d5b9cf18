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
import { EnvelopeSchema, GroupUpdateSchema, type Envelope, type GroupUpdate } from '../protocol/gen/service_pb.js';
import {
  CiphertextMessageType,
  PreKeySignalMessage,
  ProtocolAddress,
  ProtocolError,
  ProtocolErrorCode,
  SenderKeyDistributionMessage,
  SignalMessage,
  groupDecrypt,
  processSenderKeyDistributionMessage,
  signalDecrypt,
  signalDecryptPreKey,
  toHex,
  type CryptoProvider,
} from '../protocol/index.js';
import { deferred, SerialQueue, type Deferred } from './async.js';
import { ReceiptType, TypingAction, decodeContent, deserializeContent, type Content } from './content.js';
import type { SyncMessage } from './gen/content_pb.js';
import { PRIMARY_DEVICE_ID } from '../protocol/device-identity.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ReceiptKind } from './events.js';
import { groupMessageStatus, upsertMemberReceipt } from './groups/receipts.js';
import { enqueueSenderKey } from './groups/sender.js';
import {
  adoptMasterKey,
  applyGroupState,
  isMember,
  placeholderGroup,
  recordGroupUpdate,
  rotated,
  senderKeyStore,
  updateRecordOf,
} from './groups/state.js';
import { isAccountId, isE164, isGroupId, messageId, type AccountId, type ConversationId, type GroupId, type MessageId } from './ids.js';
import { applyDelete, applyEdit, applyReaction, newMessageRecord, quoteOf } from './message-records.js';
import { attachmentsOf } from './media/pointers.js';
import { parseCallMessage, type CallSignal } from './calls/wire.js';
import { enqueueReceipt, enqueueRetryRequest, newOutboxEntry } from './outbox.js';
import { protocolStores, requireAccount, type IdentityChangeNotice } from './protocol-stores.js';
import { archiveSession } from './sessions.js';
import { errorCode } from './sender.js';
import { advanceStatus } from './status.js';
import type { AccountRecord, ClientStore, ContactRecord, GroupRecord, MessageRecord, StoreTx } from './store/types.js';

/** Settings key of a history bundle announced to this companion and not imported yet. */
export const PENDING_HISTORY_KEY = 'history.pending';

/** Envelope type of the server's group updates (content: a serialized GroupUpdate). */
export const GROUP_UPDATE_ENVELOPE_TYPE = 9;

/** Where an item came from. */
export interface Origin {
  readonly source: AccountId;
  readonly deviceId: number;
  /** The group it belongs to (undefined for 1:1). */
  readonly groupId?: GroupId | undefined;
}

/** What one envelope turned into (after commit). */
export type ReceivedItem =
  | { readonly kind: 'ignored' }
  | (Origin & { readonly kind: 'message'; readonly message: MessageRecord })
  | (Origin & {
      readonly kind: 'timer';
      readonly expireTimer: number;
      readonly timestamp: number;
      /** The conversation's `timer` system message (undefined when it was recorded before: a redelivery). */
      readonly message: MessageRecord | undefined;
    })
  | (Origin & {
      readonly kind: 'group-key';
      readonly groupId: GroupId;
      /** The group's master key arrived with it (its name and attributes can now be read). */
      readonly masterKey: boolean;
    })
  | (Origin & { readonly kind: 'reaction'; readonly targetId: MessageId; readonly emoji: string; readonly remove: boolean; readonly timestamp: number; readonly message: MessageRecord | undefined })
  | (Origin & { readonly kind: 'edit'; readonly targetId: MessageId; readonly body: string; readonly timestamp: number; readonly message: MessageRecord | undefined })
  | (Origin & {
      readonly kind: 'delete';
      readonly targetId: MessageId;
      readonly timestamp: number;
      /** Saved files of the deleted message's attachments, to remove once committed. */
      readonly files: readonly string[];
    })
  | (Origin & { readonly kind: 'receipt'; readonly receipt: ReceiptKind; readonly timestamp: number; readonly timestamps: readonly number[]; readonly updated: readonly MessageRecord[] })
  | (Origin & { readonly kind: 'typing'; readonly started: boolean; readonly timestamp: number })
  | (Origin & { readonly kind: 'retry-request'; readonly timestamp: number; readonly resent: boolean })
  | (Origin & { readonly kind: 'undecryptable'; readonly timestamp: number; readonly code: string; readonly retryRequested: boolean })
  | (Origin & { readonly kind: 'group-update'; readonly groupId: GroupId; readonly group: GroupRecord; readonly message: MessageRecord })
  | (Origin & { readonly kind: 'read-sync'; readonly messages: readonly MessageRecord[] })
  | (Origin & {
      readonly kind: 'call';
      /** The sender's timestamp of the call message (inside the encryption). */
      readonly timestamp: number;
      /** The envelope was ephemeral (online only). */
      readonly ephemeral: boolean;
      /** The validated call message, or undefined when it was malformed (`error` says why). */
      readonly signal: CallSignal | undefined;
      readonly error: ClientError | undefined;
    });

/** The committed outcome of one batch. */
export interface ReceivedBatch {
  readonly items: readonly ReceivedItem[];
  readonly identityChanges: readonly IdentityChangeNotice[];
  /** A PreKey message consumed one-time prekeys: time to check the server's key count. */
  readonly usedPreKeys: boolean;
  /** Outbox entries were added or re-armed. */
  readonly outboxChanged: boolean;
  /** Groups whose state should be fetched from the server (known only by a sender key so far, or behind). */
  readonly refreshGroups: readonly GroupId[];
  /** Our primary published a new device list: fetch ours. */
  readonly refreshOwnDevices: boolean;
  /** A history bundle for this device was announced (kept in the store until imported). */
  readonly history: boolean;
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
  readonly refreshGroups: Set<GroupId>;
  refreshOwnDevices: boolean;
  history: boolean;
}

/** The group context of a content: undefined for 1:1; otherwise the group and whether the sender is a member. */
interface GroupContext {
  readonly groupId: GroupId;
  readonly group: GroupRecord;
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
      const state: BatchState = {
        account: await requireAccount(tx),
        now,
        usedPreKeys: false,
        outboxChanged: false,
        identityChanges: [],
        refreshGroups: new Set(),
        refreshOwnDevices: false,
        history: false,
      };
      const items: ReceivedItem[] = [];
      for (const p of batch) items.push(await this.#one(tx, state, p.bytes));
      return {
        items,
        identityChanges: state.identityChanges,
        usedPreKeys: state.usedPreKeys,
        outboxChanged: state.outboxChanged,
        refreshGroups: [...state.refreshGroups],
        refreshOwnDevices: state.refreshOwnDevices,
        history: state.history,
      };
    });
  }

  async #one(tx: StoreTx, state: BatchState, bytes: Uint8Array): Promise<ReceivedItem> {
    let env: Envelope;
    try {
      env = fromBinary(EnvelopeSchema, bytes);
    } catch {
      return { kind: 'ignored' }; // not an envelope: acknowledge and drop, it can never be processed
    }
    if (env.type === GROUP_UPDATE_ENVELOPE_TYPE) {
      const guid = env.guid.length > 0 ? toHex(env.guid) : undefined;
      if (guid !== undefined && (await tx.envelopes.has(guid))) return { kind: 'ignored' };
      let item: ReceivedItem;
      try {
        item = await tx.savepoint(() => this.#groupUpdate(tx, state, env));
      } catch {
        item = { kind: 'ignored' }; // a malformed update: nothing to retry (the next one, or a refresh, brings the state)
      }
      if (guid !== undefined) await tx.envelopes.add(guid, state.now);
      return item;
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
    } else if (env.type === CiphertextMessageType.SenderKey) {
      if (!isGroupId(env.groupId)) throw new ClientError(ClientErrorCode.InvalidContent, 'a sender-key envelope without a group');
      // Only a key the sender distributed for this very group decrypts it (the adapter hides other groups' keys).
      plaintext = await groupDecrypt(this.#o.crypto, senderKeyStore(tx, env.groupId), address, env.content);
    } else {
      throw new ClientError(ClientErrorCode.InvalidContent, `unsupported envelope type ${env.type}`);
    }
    const content = decodeContent(plaintext);
    if (env.type === CiphertextMessageType.SenderKey && content.groupId !== env.groupId) {
      throw new ClientError(ClientErrorCode.InvalidContent, 'a group message whose content names another group');
    }
    const item = await this.#apply(tx, state, env, origin, content);
    state.identityChanges.push(...stores.identityChanges);
    return item;
  }

  async #apply(tx: StoreTx, state: BatchState, env: Envelope, origin: Origin, content: Content): Promise<ReceivedItem> {
    const { source } = origin;
    const now = state.now;
    const timestamp = content.timestamp > 0n ? Number(content.timestamp) : Number(env.timestamp);
    const body = content.body;
    const own = source === state.account.accountId;
    if (body.case === 'sync') {
      // Only our own devices keep us in step; anyone else's SyncMessage is dropped.
      if (!own || content.groupId !== '') return { kind: 'ignored' };
      return this.#sync(tx, state, origin, body.value);
    }
    if (body.case === 'call') {
      // Call signalling is 1:1 content (each leg of a group call too); nothing is stored here: the call manager
      // decides who may say what (after the commit), and records the call in the chat when it ends.
      if (content.groupId !== '') return { kind: 'ignored' };
      if (!own) await this.#noteContact(tx, source, content.senderNumber, now);
      try {
        return { ...origin, kind: 'call', timestamp, ephemeral: env.ephemeral, signal: parseCallMessage(body.value), error: undefined };
      } catch (err) {
        if (!ClientError.is(err)) throw err;
        return { ...origin, kind: 'call', timestamp, ephemeral: env.ephemeral, signal: undefined, error: err };
      }
    }
    // Our own account is no contact of ours.
    const contact = own ? undefined : await this.#noteContact(tx, source, content.senderNumber, now);
    if (body.case === 'senderKeyDistribution') return this.#senderKey(tx, state, origin, body.value);
    if (body.case === 'receipt' || body.case === 'retry') return this.#applyPairwise(tx, state, env, origin, content, timestamp);
    // Group content: filed under the group only when the sender is a member (as this device knows the group).
    let ctx: GroupContext | undefined;
    if (content.groupId !== '') {
      if (!isGroupId(content.groupId)) throw new ClientError(ClientErrorCode.InvalidContent, 'content with a malformed group id');
      const group = await tx.groups.get(content.groupId);
      if (!group || !isMember(group, source)) {
        if (group === undefined || group.revision < 0) state.refreshGroups.add(content.groupId);
        return { kind: 'ignored' };
      }
      ctx = { groupId: content.groupId, group };
      origin = { ...origin, groupId: content.groupId };
    }
    if (!ctx && !contact) return { kind: 'ignored' }; // 1:1 content from our own devices comes as SyncMessage only
    const conversationId: ConversationId = ctx ? ctx.groupId : source;
    switch (body.case) {
      case 'data': {
        const data = body.value;
        if (ctx) {
          if (data.expireTimer !== ctx.group.expireTimer) await tx.groups.put({ ...ctx.group, expireTimer: data.expireTimer, updatedAt: now });
        } else if (contact && data.expireTimer !== contact.expireTimer) {
          await tx.contacts.put({ ...contact, expireTimer: data.expireTimer, updatedAt: now });
        }
        if (data.expireTimerUpdate) {
          // Recorded in the chat (1:1 and group alike): "Alice set disappearing messages to 1 week".
          const message = await this.#timerNotice(tx, conversationId, source, own, timestamp, data.expireTimer, Number(env.serverTimestamp), now);
          return { ...origin, kind: 'timer', expireTimer: data.expireTimer, timestamp, message };
        }
        const id = messageId(source, timestamp);
        const existing = await tx.messages.get(id);
        if (existing && existing.kind !== 'undecryptable') return { kind: 'ignored' }; // the same message again
        // A group message from our own account was sent from our other device: it is ours (outgoing, sent).
        const message = newMessageRecord({
          id,
          conversationId,
          senderId: source,
          direction: own ? 'outgoing' : 'incoming',
          timestamp,
          serverTimestamp: Number(env.serverTimestamp),
          receivedAt: now,
          kind: 'text',
          body: data.body,
          quote: quoteOf(data),
          viewOnce: data.viewOnce,
          expireTimer: data.expireTimer,
          status: own ? 'sent' : 'received',
          attachments: attachmentsOf(data),
        });
        await tx.messages.put(message);
        if (this.#o.deliveryReceipts !== false && !own) {
          await enqueueReceipt(tx, source, ReceiptType.DELIVERY, [timestamp], this.#o.nextTimestamp(), now, state.account.number);
          state.outboxChanged = true;
        }
        return { ...origin, kind: 'message', message };
      }
      case 'reaction': {
        const r = body.value;
        if (!isAccountId(r.targetAuthorAccountId)) return { kind: 'ignored' };
        const targetId = messageId(r.targetAuthorAccountId, Number(r.targetTimestamp));
        const message = await applyReaction(tx, targetId, conversationId, { author: source, emoji: r.emoji, remove: r.remove, timestamp });
        return { ...origin, kind: 'reaction', targetId, emoji: r.emoji, remove: r.remove, timestamp, message };
      }
      case 'edit': {
        const targetId = messageId(source, Number(body.value.targetTimestamp));
        const text = body.value.data?.body ?? '';
        const message = await applyEdit(tx, targetId, conversationId, (m) => m.senderId === source, { body: text, timestamp });
        return { ...origin, kind: 'edit', targetId, body: text, timestamp, message };
      }
      case 'delete': {
        const targetId = messageId(source, Number(body.value.targetTimestamp));
        const files = await applyDelete(tx, targetId, conversationId, (m) => m.senderId === source);
        return { ...origin, kind: 'delete', targetId, timestamp, files };
      }
      case 'typing':
        return { ...origin, kind: 'typing', started: body.value.action === TypingAction.STARTED, timestamp };
      default:
        throw new ClientError(ClientErrorCode.InvalidContent, 'content has no known body');
    }
  }

  /**
   * A SyncMessage from another device of our own account: what it sent to a contact (stored as ours, sent, under
   * the same message id; edits, deletes and reactions applied), what it read (marked read here, no receipts),
   * a history bundle for this device (kept until imported), or a new device list of ours.
   */
  async #sync(tx: StoreTx, state: BatchState, origin: Origin, sync: SyncMessage): Promise<ReceivedItem> {
    const now = state.now;
    if (sync.read.length > 0) {
      const messages: MessageRecord[] = [];
      for (const r of sync.read) {
        if (!isAccountId(r.senderAccountId)) continue;
        const m = await tx.messages.get(messageId(r.senderAccountId, Number(r.timestamp)));
        if (!m || m.direction !== 'incoming' || m.status !== 'received') continue;
        const next: MessageRecord = { ...m, status: 'read', expiresAt: m.kind === 'text' && m.expireTimer > 0 ? now + m.expireTimer * 1000 : m.expiresAt };
        await tx.messages.put(next);
        messages.push(next);
      }
      return { ...origin, kind: 'read-sync', messages };
    }
    const kind = sync.kind;
    switch (kind.case) {
      case 'devicesChanged':
        state.refreshOwnDevices = true;
        return { kind: 'ignored' };
      case 'history': {
        const h = kind.value;
        if (h.deviceId !== state.account.deviceId || state.account.deviceId === PRIMARY_DEVICE_ID) return { kind: 'ignored' };
        await tx.settings.put(PENDING_HISTORY_KEY, {
          blobId: h.blobId,
          key: toHex(h.key),
          sha256: toHex(h.sha256),
          size: Number(h.size),
        });
        state.history = true;
        return { kind: 'ignored' };
      }
      case 'sent':
        return this.#syncSent(tx, state, origin, kind.value.destinationAccountId, kind.value.content);
      default:
        return { kind: 'ignored' };
    }
  }

  /** What our other device sent to a contact, filed here as ours. */
  async #syncSent(tx: StoreTx, state: BatchState, origin: Origin, destination: string, bytes: Uint8Array): Promise<ReceivedItem> {
    const self = state.account.accountId;
    const now = state.now;
    if (!isAccountId(destination) || destination === self) return { kind: 'ignored' };
    const content = deserializeContent(bytes);
    if (content.groupId !== '') return { kind: 'ignored' }; // group messages reach us through the group
    const timestamp = Number(content.timestamp);
    let contact = await tx.contacts.get(destination);
    if (!contact) {
      contact = { accountId: destination, number: undefined, numberVerified: false, expireTimer: 0, createdAt: now, updatedAt: now };
      await tx.contacts.put(contact);
    }
    const body = content.body;
    switch (body.case) {
      case 'data': {
        const data = body.value;
        if (data.expireTimer !== contact.expireTimer) await tx.contacts.put({ ...contact, expireTimer: data.expireTimer, updatedAt: now });
        const id = messageId(self, timestamp);
        const existing = await tx.messages.get(id);
        if (existing) return { kind: 'ignored' };
        const message = newMessageRecord({
          id,
          conversationId: destination,
          senderId: self,
          direction: 'outgoing',
          timestamp,
          serverTimestamp: undefined,
          receivedAt: now,
          kind: data.expireTimerUpdate ? 'timer' : 'text',
          body: data.expireTimerUpdate ? '' : data.body,
          quote: quoteOf(data),
          viewOnce: data.viewOnce,
          expireTimer: data.expireTimer,
          expiresAt: !data.expireTimerUpdate && data.expireTimer > 0 ? now + data.expireTimer * 1000 : undefined,
          status: 'sent',
          attachments: data.expireTimerUpdate ? [] : attachmentsOf(data),
        });
        await tx.messages.put(message);
        if (data.expireTimerUpdate) return { ...origin, kind: 'timer', expireTimer: data.expireTimer, timestamp, message };
        return { ...origin, kind: 'message', message };
      }
      case 'reaction': {
        const r = body.value;
        if (!isAccountId(r.targetAuthorAccountId)) return { kind: 'ignored' };
        const targetId = messageId(r.targetAuthorAccountId, Number(r.targetTimestamp));
        const message = await applyReaction(tx, targetId, destination, { author: self, emoji: r.emoji, remove: r.remove, timestamp });
        return { ...origin, kind: 'reaction', targetId, emoji: r.emoji, remove: r.remove, timestamp, message };
      }
      case 'edit': {
        const targetId = messageId(self, Number(body.value.targetTimestamp));
        const text = body.value.data?.body ?? '';
        const message = await applyEdit(tx, targetId, destination, (m) => m.direction === 'outgoing', { body: text, timestamp });
        return { ...origin, kind: 'edit', targetId, body: text, timestamp, message };
      }
      case 'delete': {
        const targetId = messageId(self, Number(body.value.targetTimestamp));
        const files = await applyDelete(tx, targetId, destination, (m) => m.direction === 'outgoing');
        return { ...origin, kind: 'delete', targetId, timestamp, files };
      }
      default:
        return { kind: 'ignored' };
    }
  }

  /** Receipts and retry requests: always 1:1 (a group's are sent to the one member they concern). */
  async #applyPairwise(tx: StoreTx, state: BatchState, env: Envelope, origin: Origin, content: Content, timestamp: number): Promise<ReceivedItem> {
    const { source } = origin;
    const now = state.now;
    const body = content.body;
    switch (body.case) {
      case 'receipt': {
        const kind = RECEIPT_KIND[body.value.type] ?? 'delivery';
        const timestamps = body.value.timestamps.map(Number);
        const updated: MessageRecord[] = [];
        const groups = new Map<GroupId, GroupRecord | undefined>();
        for (const t of timestamps) {
          const m = await tx.messages.get(messageId(state.account.accountId, t));
          if (!m || m.direction !== 'outgoing') continue;
          let next: MessageRecord;
          if (isGroupId(m.conversationId)) {
            // A member's receipt for our group message: kept per member; the status follows the slowest member.
            if (!groups.has(m.conversationId)) groups.set(m.conversationId, await tx.groups.get(m.conversationId));
            const group = groups.get(m.conversationId);
            if (!group || !isMember(group, source)) continue;
            const receipts = upsertMemberReceipt(m.receipts, source, RECEIPT_STATUS[kind], now);
            const withReceipts = { ...m, receipts };
            next = { ...withReceipts, status: groupMessageStatus(withReceipts, group, state.account.accountId) };
            if (next.status === m.status && receipts.every((r, i) => m.receipts[i]?.status === r.status && m.receipts[i]?.accountId === r.accountId) && receipts.length === m.receipts.length) continue;
          } else {
            if (m.conversationId !== source) continue;
            const status = advanceStatus(m.status, RECEIPT_STATUS[kind]);
            if (status === m.status) continue;
            next = { ...m, status };
          }
          await tx.messages.put(next);
          updated.push(next);
        }
        return { ...origin, kind: 'receipt', receipt: kind, timestamp, timestamps, updated };
      }
      case 'retry': {
        const failed = Number(body.value.timestamp);
        if (body.value.groupId !== '') return this.#groupRetry(tx, state, origin, body.value.groupId, failed);
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

  /**
   * A member could not decrypt one of our group messages: it no longer counts as holding our sender key, gets
   * it again (over the 1:1 session), and gets the message again over the 1:1 session (the content keeps its
   * group id, so it is filed under the group).
   */
  async #groupRetry(tx: StoreTx, state: BatchState, origin: Origin, rawGroupId: string, failed: number): Promise<ReceivedItem> {
    const { source } = origin;
    const now = state.now;
    if (!isGroupId(rawGroupId)) return { kind: 'ignored' };
    const group = await tx.groups.get(rawGroupId);
    if (!group?.active || !isMember(group, source)) return { ...origin, kind: 'retry-request', timestamp: failed, resent: false };
    const entry = await tx.outbox.findMessage(rawGroupId, failed);
    if (!entry || entry.retriesAnswered >= (this.#o.maxResends ?? 3) || now - entry.createdAt >= RESEND_WINDOW_MS) {
      return { ...origin, kind: 'retry-request', timestamp: failed, resent: false };
    }
    await tx.outbox.put({ ...entry, retriesAnswered: entry.retriesAnswered + 1 });
    const next: GroupRecord = { ...group, senderKeySharedWith: group.senderKeySharedWith.filter((k) => !k.startsWith(`${source}.`)) };
    await tx.groups.put(next);
    if (next.distributionId !== undefined && (await tx.senderKeys.get(state.account.accountId, state.account.deviceId, next.distributionId))) {
      await enqueueSenderKey(tx, this.#o.crypto, next, state.account, source, { timestamp: this.#o.nextTimestamp(), now });
    }
    await tx.outbox.put(
      newOutboxEntry({
        id: `resend:${rawGroupId}:${source}:${entry.timestamp}:${entry.retriesAnswered + 1}`,
        kind: 'message',
        recipientId: source,
        timestamp: entry.timestamp,
        content: entry.content,
        now,
      }),
    );
    state.outboxChanged = true;
    return { ...origin, groupId: rawGroupId, kind: 'retry-request', timestamp: failed, resent: true };
  }

  /**
   * A member's sender key for a group (over the 1:1 session): stored for that group, with the group's master
   * key when we lack it. From a non-member it is taken only when we may be behind (its revision is newer than
   * ours, or we know the group only by id), and the group's state is then fetched.
   */
  async #senderKey(
    tx: StoreTx,
    state: BatchState,
    origin: Origin,
    v: { groupId: string; masterKey: Uint8Array; distribution: Uint8Array; revision: number },
  ): Promise<ReceivedItem> {
    if (!isGroupId(v.groupId)) throw new ClientError(ClientErrorCode.InvalidContent, 'a sender key for a malformed group id');
    const skdm = SenderKeyDistributionMessage.deserialize(v.distribution);
    let group = await tx.groups.get(v.groupId);
    if (!group) {
      group = placeholderGroup(v.groupId, state.now);
      state.refreshGroups.add(v.groupId);
    } else if (!isMember(group, origin.source) || (!group.active && group.revision >= 0)) {
      // From a non-member, or for a group we left: taken only when we may be behind (a newer revision).
      if (group.revision >= v.revision && group.revision >= 0) return { kind: 'ignored' };
      state.refreshGroups.add(v.groupId);
    }
    await processSenderKeyDistributionMessage(this.#o.crypto, new ProtocolAddress(origin.source, origin.deviceId), skdm, senderKeyStore(tx, v.groupId));
    const adopt = !group.masterKey && v.masterKey.length === 32;
    if (adopt) group = await adoptMasterKey(this.#o.crypto, group, v.masterKey, state.now);
    await tx.groups.put(group);
    return { ...origin, groupId: v.groupId, kind: 'group-key', masterKey: adopt };
  }

  /**
   * The system message of a timer change in a conversation (a 1:1 chat or a group); undefined when it is
   * stored already (a redelivery). One from our own account (another device of ours, in a group) is ours.
   */
  async #timerNotice(
    tx: StoreTx,
    conversationId: ConversationId,
    source: AccountId,
    own: boolean,
    timestamp: number,
    expireTimer: number,
    serverTimestamp: number,
    now: number,
  ): Promise<MessageRecord | undefined> {
    const id = messageId(source, timestamp);
    const existing = await tx.messages.get(id);
    if (existing && existing.kind !== 'undecryptable') return undefined;
    const message = newMessageRecord({
      id,
      conversationId,
      senderId: source,
      direction: own ? 'outgoing' : 'incoming',
      timestamp,
      serverTimestamp,
      receivedAt: now,
      kind: 'timer',
      expireTimer,
      status: own ? 'sent' : 'received',
    });
    await tx.messages.put(message);
    return message;
  }

  /**
   * A GroupUpdate from the server (type 9; the authenticated connection vouches for it): applies its state
   * when newer, and writes the system message once.
   */
  async #groupUpdate(tx: StoreTx, state: BatchState, env: Envelope): Promise<ReceivedItem> {
    const update: GroupUpdate = fromBinary(GroupUpdateSchema, env.content);
    if (!isGroupId(update.groupId) || (env.groupId !== '' && env.groupId !== update.groupId) || !isAccountId(update.actorAccountId)) return { kind: 'ignored' };
    const groupId = update.groupId;
    const actor = update.actorAccountId;
    const self = state.account.accountId;
    let group: GroupRecord;
    const previous = await tx.groups.get(groupId);
    if (update.state) {
      if (update.state.groupId !== groupId) return { kind: 'ignored' };
      group = (await applyGroupState(tx, this.#o.crypto, self, update.state, { now: state.now })).group;
    } else {
      // The copy for removed members: we only learn that we are out.
      const existing = await tx.groups.get(groupId);
      if (!existing) return { kind: 'ignored' };
      const gone = new Set<string>([...update.removed, ...(update.left ? [actor] : [])]);
      if (!gone.has(self)) return { kind: 'ignored' };
      group = existing;
      if (existing.revision < update.revision) {
        group = rotated({
          ...existing,
          revision: update.revision,
          active: false,
          members: existing.members.filter((m) => !gone.has(m.accountId)),
          updatedAt: state.now,
        });
        await tx.senderKeys.removeGroup(groupId);
        await tx.groups.put(group);
      }
    }
    const record = updateRecordOf(update, actor, previous, group);
    const message = await recordGroupUpdate(tx, groupId, self, record, { now: state.now, serverTimestamp: Number(env.serverTimestamp) || undefined });
    if (!message) return { kind: 'ignored' };
    return { kind: 'group-update', source: actor, deviceId: env.sourceDeviceId, groupId, group, message };
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
    // A group message that could not be decrypted: the placeholder goes into the group, and the sender is asked
    // for its sender key and the message again (the 1:1 session is not at fault).
    const groupId = env.type === CiphertextMessageType.SenderKey && isGroupId(env.groupId) ? env.groupId : undefined;
    if (groupId !== undefined) {
      const group = await tx.groups.get(groupId);
      if (group && group.revision >= 0 && !isMember(group, origin.source)) return { kind: 'ignored' };
      if (!group || group.revision < 0) state.refreshGroups.add(groupId);
    }
    if (!(await tx.messages.get(id))) {
      await tx.messages.put(
        newMessageRecord({
          id,
          conversationId: groupId ?? origin.source,
          senderId: origin.source,
          direction: 'incoming',
          timestamp,
          serverTimestamp: Number(env.serverTimestamp),
          receivedAt: state.now,
          kind: 'undecryptable',
          status: 'received',
          error: code,
        }),
      );
    }
    if (groupId === undefined && SESSION_ERRORS.has(code)) await archiveSession(tx, origin.source, origin.deviceId);
    await this.#noteContact(tx, origin.source, '', state.now);
    const retryRequested = await enqueueRetryRequest(tx, {
      recipientId: origin.source,
      deviceId: origin.deviceId,
      failedTimestamp: timestamp,
      ciphertextType: env.type,
      timestamp: this.#o.nextTimestamp(),
      now: state.now,
      senderNumber: state.account.number,
      groupId,
    });
    if (retryRequested) state.outboxChanged = true;
    return { ...origin, groupId, kind: 'undecryptable', timestamp, code, retryRequested };
  }
}
