/**
 * Groups: create, read, change, join, leave, the devices of a group, and group messages (one
 * SenderKeyMessage stored once and queued for every device of every member except the sending one).
 *
 * Every accepted create, change, join and leave is one store transaction that also queues a type 9
 * `GroupUpdate` for every device of every member after the change (with the state) and for every device of
 * the members it removed (without the state); the answer waits until that is durable, then the envelopes
 * are published for connected sockets. The rules themselves are pure (`group-rules.ts`) and run inside the
 * transaction on the state they apply to. The server sees membership, roles, sizes and timing; the
 * attributes and messages are ciphertext to it.
 */
import { createHash } from 'node:crypto';
import { toBinary } from '@bufbuild/protobuf';
import {
  GroupDevicesSchema,
  type CreateGroupRequest,
  type GroupChangeRequest,
  type GroupDevices,
  type GroupState,
  type JoinGroupRequest,
  type SendGroupMessageRequest,
} from '../../protocol/gen/service_pb.js';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { MessageBus } from '../bus/bus.js';
import type { ServerConfig } from '../config.js';
import { badRequest, forbidden, notFound, ServerError, ServerErrorCode } from '../errors.js';
import { parseAccountId, type AccountId, type GroupId } from '../ids.js';
import type { Logger } from '../log.js';
import type { ServerMetrics } from '../metrics.js';
import { RandomPool } from '../random-pool.js';
import { RateLimiter } from '../rate-limiter.js';
import type { AccountStore, FanOutEnvelope, GroupDecision, GroupDeviceRecord, GroupNotice, GroupRecord, GroupStore, StoredEnvelope } from '../storage/stores.js';
import { changeGroup, createGroup, DEFAULT_SETTINGS, joinGroup, leaveGroup, requireMember, type ParsedChange, type Transition } from './group-rules.js';
import { devicesDigest, GROUP_UPDATE_TYPE, groupUpdateContent, SENDER_KEY_TYPE, settingsFromWire, toGroupDevices, toGroupState } from './group-wire.js';
import { blobFetches, checkBlobIds, checkContent, checkIdempotencyKey, parseTimestamp, queueFull } from './messages.js';

/** Bytes of an invite link password. */
const INVITE_PASSWORD_BYTES = 16;

/** What the group service needs. */
export interface GroupServiceDeps {
  readonly accounts: AccountStore;
  readonly groups: GroupStore;
  readonly bus: MessageBus;
  readonly config: ServerConfig;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
}

/** A transition's outcome: the group after it (undefined once deleted) and whether anything was written. */
interface Applied {
  readonly group: GroupRecord | undefined;
  readonly written: boolean;
}

const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());

/** Parses and deduplicates account ids (400 for a malformed one). */
function parseAccounts(ids: readonly string[]): AccountId[] {
  return [...new Set(ids.map(parseAccountId))];
}

/** Groups over the group store. */
export class GroupService {
  readonly #deps: GroupServiceDeps;
  readonly #changeLimiter: RateLimiter;
  readonly #joinLimiter: RateLimiter;
  readonly #sendLimiter: RateLimiter;
  readonly #random = new RandomPool();

  constructor(deps: GroupServiceDeps) {
    this.#deps = deps;
    const { rateLimits, clock } = deps.config;
    this.#changeLimiter = new RateLimiter(rateLimits.groupChangesPerAccount, clock);
    this.#joinLimiter = new RateLimiter(rateLimits.groupJoinsPerAccount, clock);
    this.#sendLimiter = new RateLimiter(rateLimits.messagesPerSender, clock);
  }

  get #limits(): ServerConfig['limits'] {
    return this.#deps.config.limits;
  }

  /** `PUT /v1/groups/{id}`: the caller becomes the only admin. */
  async create(device: AuthenticatedDevice, id: GroupId, request: CreateGroupRequest): Promise<GroupState> {
    this.#changeLimiter.check(device.accountId, 'group changes');
    const others = parseAccounts(request.memberAccountIds).filter((a) => a !== device.accountId);
    if (others.length + 1 > this.#limits.maxGroupMembers) throw new ServerError(ServerErrorCode.GroupFull, `a group has at most ${this.#limits.maxGroupMembers} members`);
    this.#checkAttributes(request.attributes);
    await this.#requireAccounts(others);
    const init = { attributes: request.attributes, settings: request.settings === undefined ? DEFAULT_SETTINGS : settingsFromWire(request.settings), now: this.#now() };
    const applied = await this.#apply(device, id, 'create', (current) => {
      if (current === undefined) return createGroup(id, device.accountId, others, init, this.#limits);
      if (current.creator === device.accountId && current.revision === 0) return undefined;
      throw new ServerError(ServerErrorCode.Conflict, 'a group with this id exists');
    });
    if (applied.written) this.#deps.logger.info({ event: 'group_created', groupId: id, members: others.length + 1 }, 'group created');
    return toGroupState(applied.group as GroupRecord);
  }

  /** `GET /v1/groups/{id}`: members only. */
  async get(device: AuthenticatedDevice, id: GroupId): Promise<GroupState> {
    return toGroupState(await this.#memberView(device, id));
  }

  /** `POST /v1/groups/{id}/changes`: one atomic change; the state after it. */
  async change(device: AuthenticatedDevice, id: GroupId, request: GroupChangeRequest): Promise<GroupState> {
    this.#changeLimiter.check(device.accountId, 'group changes');
    const change = await this.#parseChange(request);
    const now = this.#now();
    const applied = await this.#apply(device, id, 'change', (current) => changeGroup(this.#existing(current), device.accountId, change, now, this.#limits));
    return toGroupState(applied.group as GroupRecord);
  }

  /** `POST /v1/groups/{id}/join`: through the invite link (rate limited: each try is a guess). */
  async join(device: AuthenticatedDevice, id: GroupId, request: JoinGroupRequest): Promise<GroupState> {
    this.#joinLimiter.check(device.accountId, 'group joins');
    const passwordHash = sha256(request.inviteLinkPassword);
    const now = this.#now();
    const applied = await this.#apply(device, id, 'join', (current) => joinGroup(this.#existing(current), device.accountId, passwordHash, now, this.#limits));
    return toGroupState(applied.group as GroupRecord);
  }

  /** `POST /v1/groups/{id}/leave`: a non-member leaving changes nothing (so a retry succeeds). */
  async leave(device: AuthenticatedDevice, id: GroupId): Promise<void> {
    this.#changeLimiter.check(device.accountId, 'group changes');
    const applied = await this.#apply(device, id, 'leave', (current) => leaveGroup(this.#existing(current), device.accountId));
    if (applied.written && applied.group === undefined) this.#deps.logger.info({ event: 'group_deleted', groupId: id }, 'last member left; group deleted');
  }

  /** `GET /v1/groups/{id}/devices`: every member device except the caller's. */
  async devices(device: AuthenticatedDevice, id: GroupId): Promise<GroupDevices> {
    const group = await this.#memberView(device, id);
    const devices = (await this.#deps.groups.devices(id)).filter((d) => d.ref !== device.ref);
    return toGroupDevices(devices, group.revision);
  }

  /** `PUT /v1/groups/{id}/messages`: returns how many envelopes were queued (0 for ephemeral sends). */
  async send(device: AuthenticatedDevice, id: GroupId, request: SendGroupMessageRequest): Promise<number> {
    this.#sendLimiter.check(`${device.accountId}.${device.deviceId}`, 'messages');
    checkContent(request.content, this.#limits.maxEnvelopeBytes);
    const timestamp = parseTimestamp(request.timestamp);
    checkIdempotencyKey(request.idempotencyKey);
    checkBlobIds(request.blobIds);
    const now = this.#now();
    const envelope: FanOutEnvelope = { type: SENDER_KEY_TYPE, sourceAccountId: device.accountId, sourceDeviceId: device.deviceId, timestamp, serverTimestamp: now, content: request.content, groupId: id };
    let revision = 0;
    const authorize = (group: GroupRecord): void => {
      revision = group.revision;
      const member = requireMember(group, device.accountId);
      if (group.settings.adminsSend && !member.admin) throw forbidden('only admins send to this group');
    };
    const verify = (recipients: readonly GroupDeviceRecord[]): void => checkDigest(recipients, request.devicesDigest, revision);
    if (request.ephemeral) return this.#sendEphemeral(device, id, envelope, authorize, request.devicesDigest);
    const idempotency = request.idempotencyKey.length === 0 ? undefined : { scope: `${device.accountId}.${device.deviceId}`, key: request.idempotencyKey };
    const blobs = blobFetches(this.#deps.config, request.blobIds, now);
    const result = await this.#deps.groups.send({
      groupId: id,
      senderRef: device.ref,
      envelope,
      options: { maxQueueDepth: this.#limits.maxQueueDepth, idempotency, now, ...(blobs === undefined ? {} : { blobFetches: blobs }) },
      authorize,
      verify,
    });
    switch (result.kind) {
      case 'not-found':
        throw notFound('group');
      case 'duplicate':
        return result.stored;
      case 'queue-full':
        throw queueFull();
      case 'device-gone':
        throw new ServerError(ServerErrorCode.Unavailable, 'the group changed meanwhile', { retryAfterMs: 100 });
      case 'stored':
        this.#deps.metrics.groupMessages.inc();
        this.#deps.metrics.groupFanOut.observe(result.envelopes.length);
        this.#publish(result.envelopes);
        return result.envelopes.length;
    }
  }

  /** Pushes to the connected recipient devices; nothing is stored. The digest is checked all the same. */
  async #sendEphemeral(device: AuthenticatedDevice, id: GroupId, envelope: FanOutEnvelope, authorize: (g: GroupRecord) => void, digest: Uint8Array): Promise<number> {
    const group = await this.#deps.groups.get(id);
    if (group === undefined) throw notFound('group');
    authorize(group);
    const recipients = (await this.#deps.groups.devices(id)).filter((d) => d.ref !== device.ref);
    checkDigest(recipients, digest, group.revision);
    for (const d of recipients) {
      this.#deps.bus.publishToDevice(d.ref, { kind: 'ephemeral', envelope: { ...envelope, ref: d.ref, destinationDeviceId: d.deviceId, guid: this.#random.take(16) } });
    }
    return 0;
  }

  /** Runs `step` on the current state in one store transaction, with the type 9 notices; publishes them once durable. */
  async #apply(device: AuthenticatedDevice, id: GroupId, kind: string, step: (current: GroupRecord | undefined) => Transition | undefined): Promise<Applied> {
    const now = this.#now();
    const { result, envelopes } = await this.#deps.groups.apply(id, (current): GroupDecision<Applied> => {
      const transition = step(current);
      if (transition === undefined) return { kind: 'unchanged', result: { group: current, written: false } };
      const notices = this.#notices(device, id, current, transition, now);
      return { kind: 'write', next: transition.next, notices, result: { group: transition.next, written: true } };
    });
    if (result.written) this.#deps.metrics.groupChanges.inc({ kind });
    this.#publish(envelopes);
    return result;
  }

  /** The type 9 notices of a transition: with the state for members after it, without for those it removed. */
  #notices(device: AuthenticatedDevice, id: GroupId, current: GroupRecord | undefined, t: Transition, now: number): GroupNotice[] {
    const revision = t.next?.revision ?? (current?.revision ?? 0) + 1;
    const envelope = (content: Uint8Array): FanOutEnvelope => ({
      type: GROUP_UPDATE_TYPE,
      sourceAccountId: device.accountId,
      sourceDeviceId: device.deviceId,
      timestamp: now,
      serverTimestamp: now,
      content,
      groupId: id,
    });
    const notices: GroupNotice[] = [];
    if (t.next !== undefined) {
      const content = groupUpdateContent(id, revision, device.accountId, t.summary, toGroupState(t.next));
      notices.push({ accounts: t.next.members.map((m) => m.accountId), envelope: envelope(content) });
    }
    if (t.summary.removed.length > 0) {
      notices.push({ accounts: t.summary.removed, envelope: envelope(groupUpdateContent(id, revision, device.accountId, t.summary, undefined)) });
    }
    return notices;
  }

  #publish(envelopes: readonly StoredEnvelope[]): void {
    if (envelopes.length === 0) return;
    this.#deps.metrics.messagesStored.inc(envelopes.length);
    for (const envelope of envelopes) this.#deps.bus.publishToDevice(envelope.ref, { kind: 'stored', envelope });
  }

  /** The group, if the caller is a member (404 unknown, 403 not a member). */
  async #memberView(device: AuthenticatedDevice, id: GroupId): Promise<GroupRecord> {
    const group = this.#existing(await this.#deps.groups.get(id));
    requireMember(group, device.accountId);
    return group;
  }

  #existing(group: GroupRecord | undefined): GroupRecord {
    if (group === undefined) throw notFound('group');
    return group;
  }

  /** Validates a change request (shapes, sizes, accounts to add exist) before the transaction. */
  async #parseChange(request: GroupChangeRequest): Promise<ParsedChange> {
    const [add, remove, promote, demote] = [request.addMembers, request.removeMembers, request.promote, request.demote].map(parseAccounts) as [AccountId[], AccountId[], AccountId[], AccountId[]];
    if (add.some((a) => remove.includes(a))) throw badRequest('an account is both added and removed');
    if (promote.some((a) => demote.includes(a))) throw badRequest('an account is both promoted and demoted');
    if (add.length > this.#limits.maxGroupMembers) throw new ServerError(ServerErrorCode.GroupFull, `a group has at most ${this.#limits.maxGroupMembers} members`);
    if (request.attributes !== undefined) this.#checkAttributes(request.attributes);
    const password = request.inviteLinkPassword;
    if (password.length !== 0 && password.length !== INVITE_PASSWORD_BYTES) throw badRequest(`an invite link password is ${INVITE_PASSWORD_BYTES} bytes`);
    if (password.length !== 0 && request.revokeInviteLink) throw badRequest('an invite link is either set or revoked');
    await this.#requireAccounts(add);
    return {
      add,
      remove,
      promote,
      demote,
      attributes: request.attributes,
      settings: request.settings === undefined ? undefined : settingsFromWire(request.settings),
      inviteHash: password.length !== 0 ? sha256(password) : request.revokeInviteLink ? null : undefined,
    };
  }

  #checkAttributes(attributes: Uint8Array): void {
    const max = this.#limits.maxGroupAttributesBytes;
    if (attributes.length > max) throw new ServerError(ServerErrorCode.PayloadTooLarge, `group attributes above ${max} bytes`);
  }

  /** 404 unless every account exists (accounts are never deleted, so checking before the transaction is safe). */
  async #requireAccounts(ids: readonly AccountId[]): Promise<void> {
    const found = await Promise.all(ids.map((id) => this.#deps.accounts.byId(id)));
    if (found.some((a) => a === undefined)) throw notFound('account');
  }

  #now(): number {
    return this.#deps.config.clock.now();
  }
}

/** 409 with the recipients as `GroupDevices` unless `digest` is theirs. */
function checkDigest(recipients: readonly GroupDeviceRecord[], digest: Uint8Array, revision: number): void {
  const expected = Buffer.from(devicesDigest(recipients));
  if (digest.length === expected.length && expected.equals(Buffer.from(digest))) return;
  throw new ServerError(ServerErrorCode.MismatchedDevices, 'the group devices do not match', { detail: toBinary(GroupDevicesSchema, toGroupDevices(recipients, revision)) });
}
