/**
 * Sending: encrypts content for every device of the recipient, submits one envelope per device, and repairs
 * the device set when the server says it changed (409 / 410) before trying again.
 *
 * Exactly-once: the encrypted request and its idempotency key are written to the outbox entry in the same
 * transaction that advances the sessions, before anything leaves the device. A request whose answer was lost
 * (timeout, dropped connection, crash) is sent again byte for byte with the same key, and the server stores it
 * at most once. Only a repaired device set produces a new request (new ciphertexts, new key), and the server
 * had refused the old one, so it stored nothing.
 */
import {
  CiphertextMessageType,
  ProtocolAddress,
  ProtocolError,
  ProtocolErrorCode,
  SessionRecord,
  UntrustedIdentityError,
  signalEncrypt,
  type CryptoProvider,
} from '../protocol/index.js';
import { encodeSendMessageRequest, type ServiceApi } from './api.js';
import { sleep } from './async.js';
import { encodeContent, deserializeContent } from './content.js';
import { blobIdsOf } from './media/pointers.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { isGroupId, type AccountId } from './ids.js';
import { protocolStores, type IdentityChangeNotice } from './protocol-stores.js';
import { archiveSession, type SessionManager } from './sessions.js';
import { Backoff, type BackoffOptions } from './transport/backoff.js';
import type { RequestOptions } from './transport/types.js';
import type { ClientStore, MessageRecord, OutboxEntry, StoreTx } from './store/types.js';
import { advanceStatus } from './status.js';

/** How hard to try. */
export interface SendPolicy {
  /** Attempts at one request on retryable failures (timeouts, lost connections, 429, 5xx). */
  readonly maxAttempts: number;
  /** Device-set repairs (409/410) per message before giving up with `CLIENT_DEVICE_REPAIR_FAILED`. */
  readonly maxRepairs: number;
  readonly backoff: BackoffOptions;
  /** Per-request timeout, ms. */
  readonly requestTimeoutMs: number;
}

export const DEFAULT_SEND_POLICY: SendPolicy = {
  maxAttempts: 6,
  maxRepairs: 3,
  backoff: { baseMs: 250, maxMs: 8_000 },
  requestTimeoutMs: 15_000,
};

export interface MessageSenderOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly api: () => ServiceApi;
  readonly sessions: SessionManager;
  readonly now: () => number;
  readonly policy?: Partial<SendPolicy> | undefined;
  readonly onIdentityChanged: (notice: IdentityChangeNotice) => void;
  /** Called after an outgoing message's status changed (committed). */
  readonly onMessageStatus: (message: MessageRecord) => void;
  /** Delivers entries addressed to a group (Sender Keys; see groups/sender.ts). */
  readonly deliverGroup?: ((id: string, options: { signal?: AbortSignal | undefined }) => Promise<OutboxEntry>) | undefined;
}

/** 16 random bytes: a request's idempotency key. */
function idempotencyKey(crypto: CryptoProvider): Uint8Array {
  return crypto.randomBytes(16);
}

export class MessageSender {
  readonly #o: MessageSenderOptions;
  readonly #policy: SendPolicy;

  constructor(options: MessageSenderOptions) {
    this.#o = options;
    this.#policy = { ...DEFAULT_SEND_POLICY, ...options.policy };
  }

  /**
   * Delivers the outbox entry `id` to the server: resolves with the entry once accepted for every device
   * (state `sent`); rejects when that is impossible (the entry is marked `failed`) or when the attempts ran out
   * or the signal aborted (the entry stays `pending`, to be resumed later).
   */
  async deliver(id: string, options: { signal?: AbortSignal | undefined } = {}): Promise<OutboxEntry> {
    const first = await this.#o.store.transaction((tx) => tx.outbox.get(id));
    if (first && isGroupId(first.recipientId)) {
      if (!this.#o.deliverGroup) throw new ClientError(ClientErrorCode.InvalidArgument, 'this sender does not send to groups');
      return this.#o.deliverGroup(id, options);
    }
    const backoff = new Backoff(this.#policy.backoff);
    const requestOptions: RequestOptions = { signal: options.signal, timeoutMs: this.#policy.requestTimeoutMs };
    let attempts = 0;
    let repairs = 0;
    for (;;) {
      let entry = await this.#o.store.transaction((tx) => tx.outbox.get(id));
      if (!entry) throw new ClientError(ClientErrorCode.InvalidArgument, 'no such outbox entry');
      if (entry.state !== 'pending') return entry;
      const recipient = entry.recipientId as AccountId;
      try {
        if (!entry.request) entry = await this.#prepare(entry, requestOptions);
        const outcome = await this.#o.api().sendMessage(recipient, entry.request as Uint8Array, requestOptions);
        if (outcome.kind === 'ok') return await this.finish(entry, 'sent');
        if (++repairs > this.#policy.maxRepairs) {
          throw new ClientError(ClientErrorCode.DeviceRepairFailed, 'the recipient\'s devices kept changing');
        }
        if (outcome.kind === 'mismatched') {
          await this.#o.sessions.removeDevices(recipient, outcome.extra, requestOptions);
          await this.#o.sessions.addDevices(recipient, outcome.missing, requestOptions);
        } else {
          await this.#o.sessions.refreshDevices(recipient, outcome.stale, requestOptions);
        }
        await this.#clearRequest(entry.id);
      } catch (err) {
        const retryable = ClientError.is(err) && err.retryable && !options.signal?.aborted;
        if (retryable && ++attempts < this.#policy.maxAttempts) {
          await sleep(Math.max(err.retryAfterMs ?? 0, backoff.next()), options.signal);
          continue;
        }
        if (!retryable && !isAbort(err)) await this.finish(entry, 'failed', err);
        throw err;
      }
    }
  }

  /**
   * Sends `content` once to every device of `recipient` as an ephemeral message (typing): never stored by the
   * server, not kept in the outbox; a device-set mismatch is repaired and the send tried again.
   */
  async sendEphemeral(recipient: AccountId, content: Uint8Array, timestamp: number, options: RequestOptions = {}): Promise<void> {
    for (let repairs = 0; ; repairs++) {
      await this.#o.sessions.ensureSessions(recipient, options);
      const request = await this.#encryptRequest(recipient, content, timestamp, true);
      const outcome = await this.#o.api().sendMessage(recipient, request, options);
      if (outcome.kind === 'ok') return;
      if (repairs >= this.#policy.maxRepairs) throw new ClientError(ClientErrorCode.DeviceRepairFailed, 'the recipient\'s devices kept changing');
      if (outcome.kind === 'mismatched') {
        await this.#o.sessions.removeDevices(recipient, outcome.extra, options);
        await this.#o.sessions.addDevices(recipient, outcome.missing, options);
      } else {
        await this.#o.sessions.refreshDevices(recipient, outcome.stale, options);
      }
    }
  }

  /** Establishes sessions as needed, then encrypts and records the request (one transaction). */
  async #prepare(entry: OutboxEntry, options: RequestOptions): Promise<OutboxEntry> {
    const recipient = entry.recipientId as AccountId;
    await this.#o.sessions.ensureSessions(recipient, options);
    const now = this.#o.now();
    const { prepared, notices } = await this.#o.store.transaction(async (tx) => {
      const current = await tx.outbox.get(entry.id);
      if (!current || current.state !== 'pending') throw new ClientError(ClientErrorCode.InvalidArgument, 'outbox entry is gone');
      if (current.request) return { prepared: current, notices: [] };
      const stores = protocolStores(tx, now);
      const request = await this.#encryptInTx(tx, stores, recipient, current.content, current.timestamp, false, now);
      const prepared: OutboxEntry = { ...current, request, attempts: current.attempts + 1 };
      await tx.outbox.put(prepared);
      return { prepared, notices: stores.identityChanges };
    });
    for (const n of notices) this.#o.onIdentityChanged(n);
    return prepared;
  }

  async #encryptRequest(recipient: AccountId, content: Uint8Array, timestamp: number, ephemeral: boolean): Promise<Uint8Array> {
    const now = this.#o.now();
    return this.#o.store.transaction(async (tx) => this.#encryptInTx(tx, protocolStores(tx, now), recipient, content, timestamp, ephemeral, now));
  }

  /**
   * Encrypts the (serialized, unpadded) content for each device with a session. A device whose session cannot
   * send (expired) is archived and left out: the server then reports it missing and the repair starts a new
   * session. A session whose identity is no longer trusted gives `CLIENT_IDENTITY_NOT_VERIFIED`.
   */
  async #encryptInTx(
    tx: StoreTx,
    stores: ReturnType<typeof protocolStores>,
    recipient: AccountId,
    content: Uint8Array,
    timestamp: number,
    ephemeral: boolean,
    now: number,
  ): Promise<Uint8Array> {
    const parsed = deserializeContent(content);
    const plaintext = encodeContent(parsed);
    const messages = [];
    for (const deviceId of await tx.sessions.devices(recipient)) {
      const bytes = await tx.sessions.get(recipient, deviceId);
      const state = bytes ? SessionRecord.deserialize(bytes).current : undefined;
      if (!state) continue;
      try {
        const ciphertext = await signalEncrypt(this.#o.crypto, plaintext, new ProtocolAddress(recipient, deviceId), stores, now);
        messages.push({
          destinationDeviceId: deviceId,
          destinationRegistrationId: state.remoteRegistrationId,
          type: ciphertext.type === CiphertextMessageType.PreKey ? CiphertextMessageType.PreKey : CiphertextMessageType.Whisper,
          content: ciphertext.serialized,
        });
      } catch (err) {
        if (err instanceof UntrustedIdentityError) {
          throw new ClientError(ClientErrorCode.IdentityNotVerified, 'the safety number of this verified contact changed: verify it again before sending', {
            cause: err,
          });
        }
        if (ProtocolError.is(err, ProtocolErrorCode.SessionExpired) || ProtocolError.is(err, ProtocolErrorCode.NoSession)) {
          await archiveSession(tx, recipient, deviceId);
          continue;
        }
        throw err;
      }
    }
    // The blobs the message names (its attachments, or those of a sync copy's), for the server's retention rule.
    return encodeSendMessageRequest({ messages, timestamp: BigInt(timestamp), ephemeral, idempotencyKey: idempotencyKey(this.#o.crypto), blobIds: blobIdsOf(parsed) });
  }

  async #clearRequest(id: string): Promise<void> {
    await this.#o.store.transaction(async (tx) => {
      const e = await tx.outbox.get(id);
      if (e) await tx.outbox.put({ ...e, request: undefined });
    });
  }

  /** Marks the entry sent (or failed) and advances its message's status, in one transaction. */
  async finish(entry: OutboxEntry, state: 'sent' | 'failed', error?: unknown): Promise<OutboxEntry> {
    const now = this.#o.now();
    const { done, message } = await this.#o.store.transaction(async (tx) => {
      const current = (await tx.outbox.get(entry.id)) ?? entry;
      const done: OutboxEntry = {
        ...current,
        state,
        request: undefined,
        sentAt: state === 'sent' ? now : current.sentAt,
        error: state === 'failed' ? errorCode(error) : undefined,
      };
      // Receipts and retry requests are done with once sent; messages stay a day for RetryRequests.
      if (state === 'sent' && done.kind !== 'message') await tx.outbox.remove(done.id);
      else await tx.outbox.put(done);
      let message: MessageRecord | undefined;
      if (done.messageId) {
        const m = await tx.messages.get(done.messageId);
        if (m) {
          const status = state === 'sent' ? advanceStatus(m.status, 'sent') : m.status === 'pending' ? 'failed' : m.status;
          const expiresAt = state === 'sent' && m.kind === 'text' && m.expireTimer > 0 && m.expiresAt === undefined ? now + m.expireTimer * 1000 : m.expiresAt;
          if (status !== m.status || expiresAt !== m.expiresAt) {
            message = { ...m, status, expiresAt };
            await tx.messages.put(message);
          }
        }
      }
      return { done, message };
    });
    if (message) this.#o.onMessageStatus(message);
    return done;
  }
}

function isAbort(err: unknown): boolean {
  return ClientError.is(err, ClientErrorCode.Aborted) || ClientError.is(err, ClientErrorCode.Closed);
}

/** A stable code for an error, for storage (never its message). */
export function errorCode(err: unknown): string {
  if (ClientError.is(err) || ProtocolError.is(err)) return err.code;
  return 'UNKNOWN';
}
