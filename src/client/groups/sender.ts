/**
 * Sending to a group with Sender Keys: our sender key goes (inside the 1:1 sessions, as durable `sender-key`
 * outbox entries) to every member device that lacks it; then each message is encrypted once with it and
 * submitted once (PUT /v1/groups/{id}/messages), and the server fans it out.
 *
 * Exactly-once as for 1:1 sends: the SendGroupMessageRequest (ciphertext, idempotency key, devices digest)
 * is written to the outbox entry in the same transaction that advances our sender key, so a retry sends the
 * same bytes. A 409 names the devices the server expects (GroupDevices): ours goes to the missing ones,
 * devices no longer listed are dropped, and when an account that held our key is no longer a member at all
 * the key is replaced (rotated) before the message is encrypted again, so that account cannot read it.
 */
import {
  createSenderKeyDistributionMessage,
  groupEncrypt,
  SessionRecord,
  type CryptoProvider,
} from '../../protocol/index.js';
import type { GroupDevices } from '../../protocol/gen/service_pb.js';
import { encodeSendGroupMessageRequest, type ServiceApi } from '../api.js';
import { blobIdsOf } from '../media/pointers.js';
import { sleep } from '../async.js';
import { deserializeContent, encodeContent, makeContent, serializeContent } from '../content.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { isAccountId, type AccountId, type GroupId } from '../ids.js';
import { newOutboxEntry } from '../outbox.js';
import { requireAccount, type IdentityChangeNotice } from '../protocol-stores.js';
import type { SendPolicy } from '../sender.js';
import type { SessionManager } from '../sessions.js';
import { Backoff } from '../transport/backoff.js';
import type { RequestOptions } from '../transport/types.js';
import type { AccountRecord, ClientStore, GroupRecord, OutboxEntry, StoreTx } from '../store/types.js';
import { deviceKey, devicesDigest, newDistributionId, parseDeviceKey } from './crypto.js';
import { forgetDeparted, isAdmin, requireActiveGroup, rotated, selfAddress, senderKeyStore } from './state.js';

/** How many accounts get our sender key at the same time during a repair. */
const DISTRIBUTION_CONCURRENCY = 4;

export interface GroupSenderOptions {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly api: () => ServiceApi;
  readonly sessions: SessionManager;
  readonly now: () => number;
  readonly nextTimestamp: () => number;
  readonly policy: SendPolicy;
  /** Delivers a 1:1 outbox entry (the outbox's deliver, so the drainer does not send it twice). */
  readonly deliverPairwise: (id: string, signal: AbortSignal | undefined) => Promise<OutboxEntry>;
  /** Marks an entry sent or failed and advances its message (the 1:1 sender's bookkeeping). */
  readonly finish: (entry: OutboxEntry, state: 'sent' | 'failed', error?: unknown) => Promise<OutboxEntry>;
  readonly onIdentityChanged: (notice: IdentityChangeNotice) => void;
}

/**
 * Makes sure we have a sender key of our own for `group` (a new distribution id after a rotation), in `tx`.
 * Returns the group as it must be stored.
 */
export async function ensureOwnSenderKey(tx: StoreTx, crypto: CryptoProvider, group: GroupRecord, account: AccountRecord): Promise<GroupRecord> {
  if (group.distributionId !== undefined && (await tx.senderKeys.get(account.accountId, account.deviceId, group.distributionId))) return group;
  const distributionId = newDistributionId(crypto);
  await createSenderKeyDistributionMessage(crypto, senderKeyStore(tx, group.id), selfAddress(account.accountId, account.deviceId), distributionId);
  return { ...group, distributionId, senderKeySharedWith: [] };
}

/**
 * Queues our current sender key (and the group's master key) for `recipient` as a `sender-key` entry; the
 * group must already have our key (see {@link ensureOwnSenderKey}). Resolves with the entry's id.
 */
export async function enqueueSenderKey(
  tx: StoreTx,
  crypto: CryptoProvider,
  group: GroupRecord,
  account: AccountRecord,
  recipient: AccountId,
  fields: { timestamp: number; now: number },
): Promise<string> {
  if (group.distributionId === undefined) throw new ClientError(ClientErrorCode.InvalidArgument, 'the group has no sender key of ours yet');
  const skdm = await createSenderKeyDistributionMessage(crypto, senderKeyStore(tx, group.id), selfAddress(account.accountId, account.deviceId), group.distributionId);
  const content = makeContent({
    timestamp: BigInt(fields.timestamp),
    senderNumber: account.number,
    groupId: group.id,
    body: {
      case: 'senderKeyDistribution',
      value: { groupId: group.id, masterKey: group.masterKey ?? new Uint8Array(0), distribution: skdm.serialize(), revision: Math.max(0, group.revision) },
    },
  });
  const id = `sender-key:${group.id}:${recipient}:${group.distributionId}:${fields.timestamp}`;
  await tx.outbox.put(newOutboxEntry({ id, kind: 'sender-key', recipientId: recipient, timestamp: fields.timestamp, content: serializeContent(content), now: fields.now }));
  return id;
}

/** Runs `work` over `items`, at most `limit` at a time; rejects with the first failure once all settled. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const errors: unknown[] = [];
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  if (errors.length > 0) throw errors[0];
}

function isAbort(err: unknown): boolean {
  return ClientError.is(err, ClientErrorCode.Aborted) || ClientError.is(err, ClientErrorCode.Closed);
}

const FORBIDDEN_SEND = 'only admins can send messages in this group';

export class GroupSender {
  readonly #o: GroupSenderOptions;

  constructor(options: GroupSenderOptions) {
    this.#o = options;
  }

  /** Delivers the group outbox entry `id` (see MessageSender.deliver for the contract). */
  async deliver(id: string, options: { signal?: AbortSignal | undefined } = {}): Promise<OutboxEntry> {
    const policy = this.#o.policy;
    const backoff = new Backoff(policy.backoff);
    const requestOptions: RequestOptions = { signal: options.signal, timeoutMs: policy.requestTimeoutMs };
    let attempts = 0;
    let repairs = 0;
    for (;;) {
      let entry = await this.#o.store.transaction((tx) => tx.outbox.get(id));
      if (!entry) throw new ClientError(ClientErrorCode.InvalidArgument, 'no such outbox entry');
      if (entry.state !== 'pending') return entry;
      const groupId = entry.recipientId as GroupId;
      try {
        if (!entry.request) entry = await this.#prepare(entry, groupId, requestOptions);
        const outcome = await this.#o.api().sendGroupMessage(groupId, entry.request as Uint8Array, { ...requestOptions, forbidden: FORBIDDEN_SEND });
        if (outcome.kind === 'ok') return await this.#o.finish(entry, 'sent');
        if (++repairs > policy.maxRepairs) throw new ClientError(ClientErrorCode.DeviceRepairFailed, 'the group\'s devices kept changing');
        await this.#repair(groupId, outcome.devices, requestOptions);
        await this.#clearRequest(entry.id);
      } catch (err) {
        const retryable = ClientError.is(err) && err.retryable && !options.signal?.aborted;
        if (retryable && ++attempts < policy.maxAttempts) {
          await sleep(Math.max(err.retryAfterMs ?? 0, backoff.next()), options.signal);
          continue;
        }
        if (!retryable && !isAbort(err)) await this.#o.finish(entry, 'failed', err);
        throw err;
      }
    }
  }

  /** Sends ephemeral content (typing) to the group once, with our sender key; never stored by the server. */
  async sendEphemeral(groupId: GroupId, content: Uint8Array, timestamp: number, options: RequestOptions = {}): Promise<void> {
    for (let repairs = 0; ; repairs++) {
      const request = await this.#o.store.transaction(async (tx) => this.#encryptInTx(tx, groupId, content, timestamp, true));
      const outcome = await this.#o.api().sendGroupMessage(groupId, request, { ...options, forbidden: FORBIDDEN_SEND });
      if (outcome.kind === 'ok') return;
      if (repairs >= this.#o.policy.maxRepairs) throw new ClientError(ClientErrorCode.DeviceRepairFailed, 'the group\'s devices kept changing');
      await this.#repair(groupId, outcome.devices, options);
    }
  }

  /**
   * Gives our sender key (and the master key) to every member device that lacks it, as the server lists them
   * now (after creating, joining or adding members, and before the first message).
   */
  async distribute(groupId: GroupId, options: RequestOptions = {}): Promise<void> {
    await this.#repair(groupId, await this.#o.api().groupDevices(groupId, options), options);
  }

  async #prepare(entry: OutboxEntry, groupId: GroupId, options: RequestOptions): Promise<OutboxEntry> {
    const fresh = await this.#o.store.transaction(async (tx) => {
      const g = await tx.groups.get(groupId);
      return g !== undefined && g.senderKeySharedWith.length === 0 && g.members.length > 1;
    });
    // Nobody has our key yet (first message, or just rotated): give it out first rather than wait for a 409.
    if (fresh) await this.distribute(groupId, options);
    return this.#o.store.transaction(async (tx) => {
      const current = await tx.outbox.get(entry.id);
      if (!current || current.state !== 'pending') throw new ClientError(ClientErrorCode.InvalidArgument, 'outbox entry is gone');
      if (current.request) return current;
      const request = await this.#encryptInTx(tx, groupId, current.content, current.timestamp, false);
      const prepared: OutboxEntry = { ...current, request, attempts: current.attempts + 1 };
      await tx.outbox.put(prepared);
      return prepared;
    });
  }

  /** Encrypts the content once with our sender key (advancing it) and builds the request, in `tx`. */
  async #encryptInTx(tx: StoreTx, groupId: GroupId, content: Uint8Array, timestamp: number, ephemeral: boolean): Promise<Uint8Array> {
    const account = await requireAccount(tx);
    let group = await requireActiveGroup(tx, groupId, account.accountId);
    if (group.settings.adminsSend && !isAdmin(group, account.accountId)) throw new ClientError(ClientErrorCode.Forbidden, FORBIDDEN_SEND);
    const before = group;
    group = await ensureOwnSenderKey(tx, this.#o.crypto, group, account);
    if (group !== before) await tx.groups.put(group);
    const parsed = deserializeContent(content);
    const message = await groupEncrypt(
      this.#o.crypto,
      senderKeyStore(tx, groupId),
      selfAddress(account.accountId, account.deviceId),
      group.distributionId as string,
      encodeContent(parsed),
    );
    return encodeSendGroupMessageRequest({
      // The blobs the message names, for the server's retention rule (docs/media.md).
      blobIds: blobIdsOf(parsed),
      content: message.serialize(),
      timestamp: BigInt(timestamp),
      ephemeral,
      idempotencyKey: this.#o.crypto.randomBytes(16),
      devicesDigest: devicesDigest(group.senderKeySharedWith),
    });
  }

  /**
   * Brings the set of devices holding our key in line with `devices` (the server's list): drops devices no
   * longer listed, rotates the key when an account that held it is gone, then sends the key to each listed
   * device that lacks it, over the 1:1 sessions (made or refreshed as needed), several accounts at a time.
   */
  async #repair(groupId: GroupId, devices: GroupDevices, options: RequestOptions): Promise<void> {
    const listed = new Map<AccountId, Map<number, number>>();
    for (const d of devices.devices) {
      if (!isAccountId(d.accountId)) throw new ClientError(ClientErrorCode.BadResponse, 'the server listed a group device with a malformed account id');
      const m = listed.get(d.accountId) ?? new Map<number, number>();
      m.set(d.deviceId, d.registrationId);
      listed.set(d.accountId, m);
    }
    const now = this.#o.now();
    const plan = await this.#o.store.transaction(async (tx) => {
      const account = await requireAccount(tx);
      let group = await requireActiveGroup(tx, groupId, account.accountId);
      const holders = new Set(group.senderKeySharedWith.map((k) => parseDeviceKey(k).accountId as AccountId));
      const gone = [...holders].filter((a) => !listed.has(a));
      if (gone.length > 0) group = rotated(await forgetDeparted(tx, group, gone, account.accountId));
      const listedKeys = new Set([...listed].flatMap(([a, ds]) => [...ds].map(([d, r]) => deviceKey(a, d, r))));
      group = { ...group, senderKeySharedWith: group.senderKeySharedWith.filter((k) => listedKeys.has(k)) };
      group = await ensureOwnSenderKey(tx, this.#o.crypto, group, account);
      const have = new Set(group.senderKeySharedWith);
      const work: Array<{ accountId: AccountId; devices: Map<number, number>; entryId: string }> = [];
      for (const [accountId, ds] of listed) {
        if ([...ds].every(([d, r]) => have.has(deviceKey(accountId, d, r)))) continue;
        const entryId = await enqueueSenderKey(tx, this.#o.crypto, group, account, accountId, { timestamp: this.#o.nextTimestamp(), now });
        work.push({ accountId, devices: ds, entryId });
      }
      await tx.groups.put({ ...group, updatedAt: now });
      return { work, distributionId: group.distributionId as string };
    });
    await pool(plan.work, DISTRIBUTION_CONCURRENCY, async (w) => {
      await this.#sessionsFor(w.accountId, w.devices, options);
      const done = await this.#o.deliverPairwise(w.entryId, options.signal);
      if (done.state !== 'sent') throw new ClientError(ClientErrorCode.DeviceRepairFailed, 'the sender key could not be delivered');
      await this.#o.store.transaction(async (tx) => {
        const g = await tx.groups.get(groupId);
        if (!g || g.distributionId !== plan.distributionId) return; // rotated meanwhile: the new key goes out later
        const reached: string[] = [];
        for (const [d, r] of w.devices) {
          const bytes = await tx.sessions.get(w.accountId, d);
          const state = bytes ? SessionRecord.deserialize(bytes).current : undefined;
          if (state && state.remoteRegistrationId === r) reached.push(deviceKey(w.accountId, d, r));
        }
        await tx.groups.put({ ...g, senderKeySharedWith: [...new Set([...g.senderKeySharedWith, ...reached])] });
      });
    });
  }

  /** Sessions with exactly the listed devices of `accountId`: new ones for unknown devices, fresh ones for re-registered ones. */
  async #sessionsFor(accountId: AccountId, devices: Map<number, number>, options: RequestOptions): Promise<void> {
    const { add, refresh } = await this.#o.store.transaction(async (tx) => {
      const add: number[] = [];
      const refresh: number[] = [];
      for (const [d, r] of devices) {
        const bytes = await tx.sessions.get(accountId, d);
        const state = bytes ? SessionRecord.deserialize(bytes).current : undefined;
        if (!state) add.push(d);
        else if (state.remoteRegistrationId !== r) refresh.push(d);
      }
      return { add, refresh };
    });
    if (refresh.length > 0) await this.#o.sessions.refreshDevices(accountId, refresh, options);
    if (add.length > 0) await this.#o.sessions.addDevices(accountId, add, options);
    await this.#o.sessions.ensureSessions(accountId, options);
  }

  async #clearRequest(id: string): Promise<void> {
    await this.#o.store.transaction(async (tx) => {
      const e = await tx.outbox.get(id);
      if (e) await tx.outbox.put({ ...e, request: undefined });
    });
  }
}
