/**
 * Sending: check the sender's envelopes against the recipient's required devices (its primary and the
 * companions its signed device list names; Signal-Server's semantics:
 * first the device set, 409 MismatchedDevices with missing and extra ids; then registration ids, 410
 * StaleDevices for every id that is non-zero and differs), then queue them durably and only then answer.
 * After the commit each envelope is published on the bus for the socket of its device. Ephemeral
 * envelopes skip the store: they are published to connected devices and dropped otherwise.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { MismatchedDevicesSchema, StaleDevicesSchema, type SendMessageRequest } from '../../protocol/gen/service_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { MessageBus } from '../bus/bus.js';
import type { ServerConfig } from '../config.js';
import { badRequest, notFound, ServerError, ServerErrorCode } from '../errors.js';
import { parseDeviceId, type AccountId, type DeviceId } from '../ids.js';
import type { ServerMetrics } from '../metrics.js';
import { RandomPool } from '../random-pool.js';
import { RateLimiter } from '../rate-limiter.js';
import type { AccountStore, BlobFetchRegistration, DeviceRecord, MessageStore, NewEnvelope } from '../storage/stores.js';

/** Ciphertext types an envelope may carry: Whisper, PreKey, SenderKey, Plaintext (never 9, group updates: the server writes those). */
const ENVELOPE_TYPES: ReadonlySet<number> = new Set([2, 3, 7, 8]);
const IDEMPOTENCY_KEY_BYTES = 16;
/** Most blob ids one send may name. */
export const MAX_BLOB_IDS = 32;
const BLOB_ID = /^[0-9a-f]{64}$/;

/** A sender's timestamp (ms, positive, a safe integer), or 400. */
export function parseTimestamp(timestamp: bigint): number {
  if (timestamp <= 0n || timestamp > BigInt(Number.MAX_SAFE_INTEGER)) throw badRequest('timestamp out of range');
  return Number(timestamp);
}

/** An idempotency key is absent (empty) or 16 bytes; 400 otherwise. */
export function checkIdempotencyKey(key: Uint8Array): void {
  if (key.length !== 0 && key.length !== IDEMPOTENCY_KEY_BYTES) throw badRequest(`idempotency key must be ${IDEMPOTENCY_KEY_BYTES} bytes`);
}

/** A send's `blob_ids`: at most {@link MAX_BLOB_IDS}, each 64 lowercase hex digits; 400 otherwise. */
export function checkBlobIds(ids: readonly string[]): void {
  if (ids.length > MAX_BLOB_IDS) throw badRequest(`at most ${MAX_BLOB_IDS} blob ids per message`);
  for (const id of ids) if (!BLOB_ID.test(id)) throw badRequest('malformed blob id');
}

/**
 * What to register with a send's envelopes: with retention `fetched`, the destination devices become
 * pending fetchers of the named blobs (unexpired ones); with `expiry`, or no blob ids, nothing.
 */
export function blobFetches(config: ServerConfig, ids: readonly string[], now: number): BlobFetchRegistration | undefined {
  if (config.blobRetention !== 'fetched' || ids.length === 0) return undefined;
  return { blobIds: ids, notBefore: now - config.blobTtlMs };
}

/** Envelope content is non-empty (400) and at most `maxBytes` (413). */
export function checkContent(content: Uint8Array, maxBytes: number): void {
  if (content.length === 0) throw badRequest('empty envelope content');
  if (content.length > maxBytes) throw new ServerError(ServerErrorCode.PayloadTooLarge, `envelope content above ${maxBytes} bytes`);
}

/** 507: a destination queue is full. */
export function queueFull(): ServerError {
  return new ServerError(ServerErrorCode.QueueFull, "the recipient's queue is full", { retryAfterMs: 60_000 });
}

/** Accepts sends and queues their envelopes. */
export class MessageService {
  readonly #accounts: AccountStore;
  readonly #messages: MessageStore;
  readonly #bus: MessageBus;
  readonly #config: ServerConfig;
  readonly #metrics: ServerMetrics;
  readonly #limiter: RateLimiter;
  readonly #random = new RandomPool();

  constructor(accounts: AccountStore, messages: MessageStore, bus: MessageBus, config: ServerConfig, metrics: ServerMetrics) {
    this.#accounts = accounts;
    this.#messages = messages;
    this.#bus = bus;
    this.#config = config;
    this.#metrics = metrics;
    this.#limiter = new RateLimiter(config.rateLimits.messagesPerSender, config.clock);
  }

  /** Queues (or, for ephemeral sends, pushes) one envelope per device; returns how many were stored. */
  async send(sender: AuthenticatedDevice, destination: AccountId, request: SendMessageRequest): Promise<number> {
    this.#limiter.check(`${sender.accountId}.${sender.deviceId}`, 'messages');
    const timestamp = this.#validate(request);
    if ((await this.#accounts.byId(destination)) === undefined) throw notFound('account');
    // The required devices: the primary and the companions the account's signed device list names.
    const devices = new Map((await this.#accounts.devices(destination)).filter((d) => d.listed).map((d) => [d.deviceId, d]));
    if (destination === sender.accountId) devices.delete(sender.deviceId);
    this.#checkDeviceSet(request, devices);

    const now = this.#config.clock.now();
    const envelopes: NewEnvelope[] = request.messages.map((m) => ({
      ref: (devices.get(m.destinationDeviceId as DeviceId) as DeviceRecord).ref,
      guid: this.#random.take(16),
      type: m.type,
      sourceAccountId: sender.accountId,
      sourceDeviceId: sender.deviceId,
      destinationDeviceId: m.destinationDeviceId as DeviceId,
      timestamp,
      serverTimestamp: now,
      content: m.content,
    }));

    if (request.ephemeral) {
      for (const envelope of envelopes) this.#bus.publishToDevice(envelope.ref, { kind: 'ephemeral', envelope });
      return 0;
    }

    const idempotency = request.idempotencyKey.length === 0 ? undefined : { scope: `${sender.accountId}.${sender.deviceId}`, key: request.idempotencyKey };
    const blobs = blobFetches(this.#config, request.blobIds, now);
    const result = await this.#messages.insert(envelopes, { maxQueueDepth: this.#config.limits.maxQueueDepth, idempotency, now, ...(blobs === undefined ? {} : { blobFetches: blobs }) });
    switch (result.kind) {
      case 'duplicate':
        return result.stored;
      case 'queue-full':
        throw queueFull();
      case 'device-gone':
        throw new ServerError(ServerErrorCode.StaleDevices, 'devices re-registered', {
          detail: toBinary(StaleDevicesSchema, create(StaleDevicesSchema, { staleDevices: request.messages.map((m) => m.destinationDeviceId) })),
        });
      case 'stored':
        // Durable now: publish, in commit order, for the sockets of the destination devices.
        this.#metrics.messagesStored.inc(result.envelopes.length);
        for (const envelope of result.envelopes) this.#bus.publishToDevice(envelope.ref, { kind: 'stored', envelope });
        return result.envelopes.length;
    }
  }

  /** Checks shapes and sizes; returns the timestamp as a number. */
  #validate(request: SendMessageRequest): number {
    const timestamp = parseTimestamp(request.timestamp);
    checkIdempotencyKey(request.idempotencyKey);
    checkBlobIds(request.blobIds);
    const seen = new Set<number>();
    for (const m of request.messages) {
      parseDeviceId(m.destinationDeviceId);
      if (seen.has(m.destinationDeviceId)) throw badRequest('two envelopes for one device');
      seen.add(m.destinationDeviceId);
      if (!ENVELOPE_TYPES.has(m.type)) throw badRequest('unknown envelope type');
      checkContent(m.content, this.#config.limits.maxEnvelopeBytes);
    }
    return timestamp;
  }

  /** 409 when the addressed devices are not exactly the recipient's; 410 for changed registration ids. */
  #checkDeviceSet(request: SendMessageRequest, devices: ReadonlyMap<DeviceId, DeviceRecord>): void {
    const addressed = new Set(request.messages.map((m) => m.destinationDeviceId));
    const missing = [...devices.keys()].filter((id) => !addressed.has(id)).sort((a, b) => a - b);
    const extra = [...addressed].filter((id) => !devices.has(id as DeviceId)).sort((a, b) => a - b);
    if (missing.length > 0 || extra.length > 0) {
      throw new ServerError(ServerErrorCode.MismatchedDevices, 'the device list does not match', {
        detail: toBinary(MismatchedDevicesSchema, create(MismatchedDevicesSchema, { missingDevices: missing, extraDevices: extra })),
      });
    }
    const stale = request.messages
      .filter((m) => m.destinationRegistrationId > 0 && devices.get(m.destinationDeviceId as DeviceId)?.registrationId !== m.destinationRegistrationId)
      .map((m) => m.destinationDeviceId)
      .sort((a, b) => a - b);
    if (stale.length > 0) {
      throw new ServerError(ServerErrorCode.StaleDevices, 'some devices re-registered', {
        detail: toBinary(StaleDevicesSchema, create(StaleDevicesSchema, { staleDevices: stale })),
      });
    }
  }
}
