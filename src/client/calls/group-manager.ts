/**
 * Group calls (docs/calls.md, "Group calls"): who is in a call of a group, decided from authenticated call
 * messages, and a media topology ({@link GroupCallTopology}; today the full mesh) that connects this device to
 * each participant. Every message is 1:1 end-to-end encrypted content like a 1:1 call's.
 *
 * Messages and their delivery:
 * - `ring` (durable, to every device of every other member): the call started; every free device rings;
 * - `join` (durable, likewise): a device joins; participants answer with a `join` `reply` (ephemeral, to the
 *   joining device only), and of each pair the lower address offers ({@link offersTo});
 * - offer, answer, ICE candidates (ephemeral, to one device): the pair's WebRTC leg;
 * - hang-up (durable, to every other member): the sender leaves; `FULL` (ephemeral, to the joining device):
 *   the call already has {@link MAX_GROUP_CALL_PARTICIPANTS} devices;
 * - to our own account only (durable): "answered / declined elsewhere", so our other devices stop ringing.
 * Durable membership messages let a device that was offline learn of a running call (and join it late).
 * A device that leaves while others stay keeps following the call (a new `idle` GroupCall, same id) and can
 * join it again: its new join is newer than its leave, so the others take it and set up fresh pairs.
 *
 * What is refused (a `callRejected` event; nothing changes): a sender that is not a member of the group as
 * this device knows it (`not-member`: also a member removed from the group), a message that names another
 * device than the one the Signal session authenticated (`wrong-device`: a ring or join whose first
 * participant, a hang-up whose device), anything from our own account but "answered / declined elsewhere"
 * (`not-own-device`), a ring of a call that ended here or a join, offer or answer not newer than the last one
 * applied from that device, or media messages dated before the device's newest join or, while it is out of
 * the call, before its leave (`replayed`), media messages older than `maxSignalAgeMs` (`stale`) or dated ahead
 * (`future`), an offer from the side that must answer or an answer nobody asked for (`unexpected`), a join
 * beyond 8 devices (`full`).
 */
import { drop, SerialQueue } from '../async.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { Sender } from '../events.js';
import { messageId, type AccountId, type GroupId } from '../ids.js';
import { newMessageRecord } from '../message-records.js';
import type { CallOutcome, CallRecord, ClientStore, MessageRecord } from '../store/types.js';
import { toHex } from '../../protocol/index.js';
import { GroupCall, GroupCallParticipant, type GroupCallControl, type GroupCallMediaOptions } from './group-call.js';
import { DEFAULT_RING_TIMEOUT_MS, type CallOptions, type CallRejectedEvent, type CallRejectReason } from './manager.js';
import { checkLocalTrack, type LocalTrackKind } from './media.js';
import { MeshTopology } from './mesh.js';
import type { ConnectionFactory } from './rtc.js';
import { participantKey, type GroupCallTopology, type GroupCallTopologyHost } from './topology.js';
import { CALL_ID_BYTES, MAX_GROUP_CALL_PARTICIPANTS, type CallMedia, type CallParticipant, type CallSignal, type CallSignalBody, type HangupReason } from './wire.js';

/** What the group call manager needs of the client. */
export interface GroupCallManagerDeps {
  readonly self: CallParticipant;
  readonly store: ClientStore;
  readonly now: () => number;
  readonly randomBytes: (n: number) => Uint8Array;
  /** Sends a call message to every device of `to`; resolves with its sender timestamp. */
  readonly send: (to: AccountId, signal: CallSignal, durable: boolean) => Promise<number>;
  /**
   * The member accounts of a group this account is an active member of (as this device knows the group);
   * `CLIENT_UNKNOWN_GROUP` / `CLIENT_NOT_GROUP_MEMBER` otherwise.
   */
  readonly members: (groupId: GroupId) => Promise<readonly AccountId[]>;
  /** Whether this account has other devices (then they hear of answers and declines). */
  readonly hasOtherDevices: () => Promise<boolean>;
  /** Whether this device is in a 1:1 call (a group call then does not ring here, and cannot be joined). */
  readonly inOtherCall: () => boolean;
  readonly createConnection: ConnectionFactory;
  readonly emitCall: (event: GroupCallEvent) => void;
  readonly emitRejected: (event: CallRejectedEvent) => void;
  readonly emitMessage: (message: MessageRecord) => void;
  readonly onError: (error: unknown) => void;
}

/** The `groupCall` event of the Client. */
export interface GroupCallEvent {
  /**
   * `incoming`: rings here; `running`: a call this device knows of but is not in nor ringing for (it stopped
   * ringing, or was heard of without ringing, or this device left it while others stay: then it is a new
   * GroupCall object with the same id): `call.join()` joins it late, or again; `joined`: this device joined;
   * `ended`: left here, or the call is over.
   */
  readonly type: 'incoming' | 'running' | 'joined' | 'ended';
  readonly call: GroupCall;
}

interface Live {
  readonly call: GroupCall;
  topology: GroupCallTopology | undefined;
  ringTimer: ReturnType<typeof setTimeout> | undefined;
  /** When this device last heard of the call, ms (calls not joined are forgotten after a quiet hour). */
  lastActivity: number;
  /** The newest join timestamp per device (older or equal joins are replays). */
  readonly joins: Map<string, number>;
  /** The newest leave timestamp per device (an older join is stale). */
  readonly left: Map<string, number>;
  /** How this device's chat records it when never joined (declined here, or answered on another device). */
  outcome: CallOutcome | undefined;
  /** When this device sent its join, ms (a `FULL` answers only that, and only while it is fresh). */
  joinSentAt: number | undefined;
}

/** Call ids that ended here are remembered this long (rings of them are replays). */
const ENDED_MEMORY_MS = 24 * 3600_000;
const MAX_ENDED = 4096;
/** A call this device is not in and heard nothing of for this long is forgotten (its leaves may be lost). */
const IDLE_FORGET_MS = 3600_000;
/** Offers made for a pair of participants before it is given up (see {@link MeshTopology}). */
const DEFAULT_CONNECT_ATTEMPTS = 3;
/** Calls known at once (one per group normally). */
const MAX_LIVE = 64;

export class GroupCallManager implements GroupCallControl {
  readonly #d: GroupCallManagerDeps;
  readonly #o: CallOptions;
  readonly #live = new Map<string, Live>();
  readonly #ended = new Map<string, number>();
  readonly #queue = new SerialQueue();
  #closed = false;

  constructor(deps: GroupCallManagerDeps, options: CallOptions = {}) {
    this.#d = deps;
    this.#o = options;
  }

  /** The group calls known here that have not ended. */
  get active(): GroupCall[] {
    return [...this.#live.values()].map((l) => l.call);
  }

  /** The running call of a group, as known here. */
  forGroup(groupId: GroupId): GroupCall | undefined {
    for (const l of this.#live.values()) if (l.call.groupId === groupId) return l.call;
    return undefined;
  }

  /** Whether this device takes part in a group call. */
  get joined(): boolean {
    return [...this.#live.values()].some((l) => l.call.state === 'joined');
  }

  /**
   * Starts a call in the group: every device of every other member rings; this device is in it at once. A
   * call of the group that is known here and not joined is joined instead.
   */
  async start(groupId: GroupId, options: GroupCallMediaOptions = {}): Promise<GroupCall> {
    this.#ensureOpen();
    const members = await this.#d.members(groupId);
    const others = members.filter((m) => m !== this.#d.self.accountId);
    if (others.length === 0) throw new ClientError(ClientErrorCode.InvalidArgument, 'the group has no other member to call');
    const known = this.forGroup(groupId);
    if (known && known.state !== 'joined') {
      await this.join(known, options);
      return known;
    }
    this.#ensureFree();
    const media = options.media ?? (options.tracks?.some((t) => t.kind === 'video') ? 'video' : 'audio');
    const callId = toHex(this.#d.randomBytes(CALL_ID_BYTES));
    const call = new GroupCall(this, callId, groupId, 'outgoing', media, this.#d.self, 0, 'idle');
    const live = this.#register(call);
    this.#enter(live, options);
    const signal = this.#signal(call, 0, { kind: 'ring', media });
    const results = await Promise.allSettled(others.map((to) => this.#d.send(to, signal, true)));
    const sent = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const r of results) if (r.status === 'rejected') this.#d.onError(r.reason);
    if (sent.length === 0) {
      await this.#leaveWith(live, 'failed', 'local', false);
      throw results[0]?.status === 'rejected' ? results[0].reason : new ClientError(ClientErrorCode.InvalidArgument, 'the ring could not be sent');
    }
    call.setRingTimestamp(Math.min(...sent));
    return call;
  }

  /** Handles a received group call message (after its envelope was committed), in order of arrival. */
  handle(from: Sender, item: { timestamp: number; signal: CallSignal | undefined }): void {
    if (this.#closed) return;
    drop(
      this.#queue.run(() => this.#handle(from, item.timestamp, item.signal)),
      this.#d.onError,
    );
  }

  /** Resolves once every message handed to {@link handle} so far was handled. */
  whenIdle(): Promise<void> {
    return this.#queue.run(async () => undefined);
  }

  /** The group's membership changed: participants no longer members are dropped; if we left, we leave. */
  membershipChanged(groupId: GroupId): void {
    if (this.#closed) return;
    drop(
      this.#queue.run(async () => {
        const live = [...this.#live.values()].find((l) => l.call.groupId === groupId);
        if (!live) return;
        const members = await this.#membersOrUndefined(groupId);
        if (!members) {
          if (live.call.state === 'joined') await this.#leaveWith(live, 'normal', 'remote', true);
          else this.#finish(live, 'normal', 'remote');
          return;
        }
        for (const p of live.call.participants) if (!members.includes(p.accountId)) this.#drop(live, p, 'normal');
      }),
      this.#d.onError,
    );
  }

  async join(call: GroupCall, options: GroupCallMediaOptions): Promise<void> {
    this.#ensureOpen();
    const live = this.#live.get(call.id);
    if (!live || live.call !== call || (call.state !== 'ringing' && call.state !== 'idle')) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'only a group call that rings here or runs without this device can be joined');
    }
    const members = await this.#d.members(call.groupId); // CLIENT_NOT_GROUP_MEMBER once removed from the group
    if (!isJoinable(call)) throw new ClientError(ClientErrorCode.InvalidArgument, 'the group call is no longer joinable here'); // it changed meanwhile
    this.#ensureFree();
    if (call.participants.length + 1 > MAX_GROUP_CALL_PARTICIPANTS) {
      throw new ClientError(ClientErrorCode.CallFull, `the group call already has ${MAX_GROUP_CALL_PARTICIPANTS} participants`);
    }
    clearTimeout(live.ringTimer);
    this.#enter(live, options);
    live.joinSentAt = this.#d.now();
    this.#tellOwnDevices(call, 'answered-elsewhere');
    const signal = this.#signal(call, 0, { kind: 'join', reply: false, media: call.media });
    const results = await Promise.allSettled(members.filter((m) => m !== this.#d.self.accountId).map((to) => this.#d.send(to, signal, true)));
    for (const r of results) if (r.status === 'rejected') this.#d.onError(r.reason);
  }

  async decline(call: GroupCall): Promise<void> {
    const live = this.#live.get(call.id);
    if (!live || call.state !== 'ringing') throw new ClientError(ClientErrorCode.InvalidArgument, 'only a group call that rings here can be declined');
    live.outcome = 'declined';
    this.#stopRinging(live);
    this.#tellOwnDevices(call, 'declined-elsewhere');
    return Promise.resolve();
  }

  async leave(call: GroupCall): Promise<void> {
    const live = this.#live.get(call.id);
    if (!live || live.call !== call) return;
    if (call.state === 'ringing') return this.decline(call);
    if (call.state !== 'joined') {
      this.#finish(live, 'normal', 'local'); // stop following a call this device is not in
      return;
    }
    const others = call.participants.map((p) => ({ accountId: p.accountId, deviceId: p.deviceId, joinedAt: p.joinedAt }));
    const leaving = this.#leaveWith(live, 'normal', 'local', true); // ends `call` before its first await
    // The others carry on: the call goes on being known here, as a new `idle` GroupCall that can be joined again.
    if (others.length > 0 && !this.#closed) this.#follow(live, others);
    await leaving;
  }

  async replaceLocalTrack(call: GroupCall, kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void> {
    checkLocalTrack(kind, track, call.media);
    const live = this.#live.get(call.id);
    if (!live || live.call !== call || call.state !== 'joined' || !live.topology) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'local tracks can be replaced only in a group call this device is in');
    }
    await live.topology.setLocalTrack(kind, track);
  }

  /** Leaves every call (the client is closing): the others are told, in the background. */
  close(): void {
    if (this.#closed) return;
    for (const live of [...this.#live.values()]) {
      if (live.call.state === 'joined') drop(this.#leaveWith(live, 'normal', 'local', true), this.#d.onError);
      else this.#finish(live, 'normal', 'local');
    }
    this.#closed = true;
  }

  // ---- received messages ---------------------------------------------------------------------------------

  async #handle(from: Sender, timestamp: number, s: CallSignal | undefined): Promise<void> {
    const reject = (reason: CallRejectReason): void => this.#d.emitRejected({ from, callId: s?.callId, reason, kind: s?.kind, groupId: s?.groupId });
    if (!s || s.groupId === undefined) return reject('malformed');
    if (this.#closed) return;
    const now = this.#d.now();
    this.#prune(now);
    const self = this.#d.self;
    if (s.destinationDeviceId !== 0 && s.destinationDeviceId !== self.deviceId) return; // for another device of ours
    if (from.accountId === self.accountId && from.deviceId === self.deviceId) return;
    if (timestamp > now + (this.#o.maxClockSkewMs ?? 60_000)) return reject('future');
    const live = this.#live.get(s.callId);
    if (live && live.call.groupId !== s.groupId) return reject('wrong-group');
    if (from.accountId === self.accountId) {
      // Our own devices only tell us that one of them answered or declined (we stop ringing).
      if (s.kind !== 'hangup' || (s.reason !== 'answered-elsewhere' && s.reason !== 'declined-elsewhere')) return reject('not-own-device');
      if (s.deviceId !== from.deviceId) return reject('wrong-device');
      if (live && live.call.state === 'ringing') {
        live.outcome = s.reason === 'answered-elsewhere' ? 'answered-elsewhere' : 'declined';
        this.#stopRinging(live);
      }
      return;
    }
    const members = await this.#membersOrUndefined(s.groupId);
    if (!members?.includes(from.accountId)) return reject('not-member');
    const peer: CallParticipant = { accountId: from.accountId, deviceId: from.deviceId };
    const fresh = now - timestamp <= (this.#o.maxSignalAgeMs ?? 60_000);
    switch (s.kind) {
      case 'ring':
      case 'join': {
        const first = s.participants[0];
        if (first?.accountId !== peer.accountId || first.deviceId !== peer.deviceId) return reject('wrong-device');
        if (s.kind === 'ring') return this.#ring(peer, timestamp, s.callId, s.groupId, s.media, now, reject);
        return this.#join(peer, timestamp, s, now, fresh, reject);
      }
      case 'hangup':
        if (s.deviceId !== peer.deviceId) return reject('wrong-device');
        return this.#hangup(live, peer, timestamp, s.reason, now, fresh, reject);
      case 'ringing':
      case 'busy':
        return; // 1:1 only
      case 'offer':
      case 'answer':
      case 'ice': {
        if (!live || live.call.state !== 'joined' || !live.topology) return; // not in that call here (it ended, or we left)
        if (!fresh) return reject('stale');
        if (s.destinationDeviceId === 0) return reject('wrong-device'); // a pair's messages name their device
        const key = participantKey(peer);
        const known = live.call.participant(key);
        // Sent before the device's (newest) join, or before its leave: from an earlier stay in the call.
        if (known ? timestamp < known.joinedAt : timestamp <= (live.left.get(key) ?? -Infinity)) return reject('replayed');
        if (!known && s.kind === 'offer' && !this.#admit(live, peer, timestamp, reject)) return;
        live.lastActivity = now;
        live.topology.signal(peer, timestamp, s);
        return;
      }
    }
  }

  #ring(peer: CallParticipant, timestamp: number, callId: string, groupId: GroupId, media: CallMedia, now: number, reject: (r: CallRejectReason) => void): void {
    if (this.#ended.has(callId)) return reject('replayed');
    const known = this.#live.get(callId);
    if (known) {
      // Heard of through a join first (or the same ring again): it is the same call.
      if (timestamp <= (known.left.get(participantKey(peer)) ?? -Infinity)) return; // its starter left since
      known.call.setRingTimestamp(timestamp);
      known.lastActivity = now;
      this.#track(known, peer, timestamp);
      return;
    }
    const other = this.forGroup(groupId);
    if (other) {
      if (other.state === 'joined') return; // a second call started in the group at the same moment: we stay in ours
      const otherLive = this.#live.get(other.id);
      if (otherLive) this.#finish(otherLive, 'normal', 'remote'); // the newer call replaces one we were not in
    }
    const age = now - timestamp;
    const rings = age <= this.#ringTimeoutMs && !this.#d.inOtherCall() && !this.joined;
    const call = new GroupCall(this, callId, groupId, 'incoming', media, peer, timestamp, rings ? 'ringing' : 'idle');
    const live = this.#register(call);
    this.#track(live, peer, timestamp);
    if (!rings) {
      live.outcome = 'missed';
      this.#d.emitCall({ type: 'running', call });
      return;
    }
    live.ringTimer = setTimeout(() => {
      live.outcome ??= 'missed';
      this.#stopRinging(live);
    }, this.#ringTimeoutMs - age);
    this.#d.emitCall({ type: 'incoming', call });
  }

  #join(peer: CallParticipant, timestamp: number, s: CallSignal & { kind: 'join' }, now: number, fresh: boolean, reject: (r: CallRejectReason) => void): void {
    if (this.#ended.has(s.callId)) return; // a call that ended here (or that we left): its joins are not for us
    const key = participantKey(peer);
    let live = this.#live.get(s.callId);
    const last = live?.joins.get(key);
    if (last !== undefined && timestamp <= last) return reject('replayed');
    const leftAt = live?.left.get(key);
    if (leftAt !== undefined && timestamp < leftAt) return; // an old join, overtaken by its leave
    if (!live) {
      if (s.reply || this.#live.size >= MAX_LIVE) return; // a reply for a call we are not in
      const other = this.forGroup(s.groupId as GroupId);
      if (other) return; // we follow another call of this group
      const call = new GroupCall(this, s.callId, s.groupId as GroupId, 'incoming', s.media, undefined, 0, 'idle');
      live = this.#register(call);
      live.outcome = 'missed';
      this.#d.emitCall({ type: 'running', call });
    }
    live.joins.set(key, timestamp);
    live.lastActivity = now;
    const call = live.call;
    if (call.state !== 'joined' || !live.topology) {
      if (!s.reply) this.#track(live, peer, timestamp);
      return;
    }
    if (!fresh) return reject('stale');
    const existing = call.participant(key);
    if (existing && !s.reply && timestamp > existing.joinedAt) {
      // The device joined again (it restarted): its old connection is gone.
      this.#drop(live, existing, 'normal');
    }
    if (!call.participant(key) && !this.#admit(live, peer, timestamp, reject)) return;
    if (!s.reply) this.#sendQuietly(peer.accountId, this.#signal(call, peer.deviceId, { kind: 'join', reply: true, media: call.media }), false);
    live.topology.connect(peer);
  }

  #hangup(live: Live | undefined, peer: CallParticipant, timestamp: number, reason: HangupReason, now: number, fresh: boolean, reject: (r: CallRejectReason) => void): void {
    if (!live) return; // a late leave of a call that ended here
    const call = live.call;
    const key = participantKey(peer);
    if (reason === 'answered-elsewhere' || reason === 'declined-elsewhere') return reject('not-own-device');
    if (reason === 'full') {
      // Only an answer to our own join, while it is fresh.
      const maxAge = this.#o.maxSignalAgeMs ?? 60_000;
      if (call.state !== 'joined' || !fresh || live.joinSentAt === undefined || now - live.joinSentAt > maxAge) return reject('unexpected');
      drop(this.#leaveWith(live, 'full', 'remote', true), this.#d.onError);
      return;
    }
    const joined = live.joins.get(key);
    if (joined !== undefined && joined > timestamp) return; // a leave older than the device's newest join
    live.left.set(key, timestamp);
    live.lastActivity = now;
    const p = call.participant(key);
    if (p) this.#drop(live, p, reason);
    if (call.state !== 'joined' && call.participants.length === 0) this.#finish(live, 'normal', 'remote'); // everybody left: over
  }

  // ---- internals -----------------------------------------------------------------------------------------

  get #ringTimeoutMs(): number {
    return this.#o.ringTimeoutMs ?? DEFAULT_RING_TIMEOUT_MS;
  }

  #ensureOpen(): void {
    if (this.#closed) throw new ClientError(ClientErrorCode.Closed, 'client closed');
  }

  #ensureFree(): void {
    if (this.#d.inOtherCall() || this.joined) throw new ClientError(ClientErrorCode.InvalidArgument, 'already in a call: hang it up first');
  }

  async #membersOrUndefined(groupId: GroupId): Promise<readonly AccountId[] | undefined> {
    try {
      return await this.#d.members(groupId);
    } catch (err) {
      if (ClientError.is(err)) return undefined;
      throw err;
    }
  }

  #register(call: GroupCall): Live {
    const live: Live = { call, topology: undefined, ringTimer: undefined, lastActivity: this.#d.now(), joins: new Map(), left: new Map(), outcome: undefined, joinSentAt: undefined };
    this.#live.set(call.id, live);
    return live;
  }

  #signal(call: GroupCall, destinationDeviceId: number, body: CallSignalBody): CallSignal {
    const participants = [this.#d.self, ...call.participants.map((p) => ({ accountId: p.accountId, deviceId: p.deviceId }))].slice(0, MAX_GROUP_CALL_PARTICIPANTS);
    return { ...body, callId: call.id, destinationDeviceId, groupId: call.groupId, participants };
  }

  /** A device is in the call (known to a device that does not take part: shown, not connected to). */
  #track(live: Live, peer: CallParticipant, timestamp: number): void {
    const key = participantKey(peer);
    if (live.call.participant(key) || live.call.participants.length >= MAX_GROUP_CALL_PARTICIPANTS) return;
    live.call.addParticipant(key, new GroupCallParticipant(peer.accountId, peer.deviceId, timestamp));
  }

  /** Takes a device into the call we are in, unless it would make more than 8 (then it is told `FULL`). */
  #admit(live: Live, peer: CallParticipant, timestamp: number, reject: (r: CallRejectReason) => void): boolean {
    const call = live.call;
    if (call.participants.length + 1 >= MAX_GROUP_CALL_PARTICIPANTS) {
      this.#sendQuietly(peer.accountId, this.#signal(call, peer.deviceId, { kind: 'hangup', reason: 'full', deviceId: this.#d.self.deviceId }), false);
      reject('full');
      return false;
    }
    call.addParticipant(participantKey(peer), new GroupCallParticipant(peer.accountId, peer.deviceId, timestamp));
    return true;
  }

  #drop(live: Live, p: GroupCallParticipant, reason: HangupReason): void {
    live.topology?.disconnect(p);
    live.call.removeParticipant(participantKey(p), reason);
  }

  /** This device takes part: the media topology starts (participants are connected as they answer our join). */
  #enter(live: Live, options: GroupCallMediaOptions): void {
    const call = live.call;
    const host: GroupCallTopologyHost = {
      connection: (peer, pc) => call.participant(participantKey(peer))?.setConnection(pc),
      state: (peer, state) => {
        const p = call.participant(participantKey(peer));
        if (p?.setState(state)) call.participantChanged(p);
      },
      track: (peer, track, streams) => {
        const p = call.participant(participantKey(peer));
        if (p) call.trackArrived(p, track, streams);
      },
      rejected: (peer, kind, reason) =>
        this.#d.emitRejected({ from: { accountId: peer.accountId, deviceId: peer.deviceId, number: undefined, numberVerified: false }, callId: call.id, reason, kind, groupId: call.groupId }),
    };
    live.topology = new MeshTopology({
      callId: call.id,
      groupId: call.groupId,
      media: call.media,
      self: this.#d.self,
      local: options,
      createConnection: this.#d.createConnection,
      send: this.#d.send,
      connectTimeoutMs: this.#o.connectTimeoutMs ?? 30_000,
      connectAttempts: Math.max(1, this.#o.connectAttempts ?? DEFAULT_CONNECT_ATTEMPTS),
      host,
      onError: this.#d.onError,
    });
    live.outcome = undefined;
    call.setState('joined', this.#d.now());
    this.#d.emitCall({ type: 'joined', call });
  }

  #stopRinging(live: Live): void {
    clearTimeout(live.ringTimer);
    if (live.call.state !== 'ringing') return;
    live.call.setState('idle', this.#d.now());
    this.#d.emitCall({ type: 'running', call: live.call });
  }

  /** Leaves a call this device is in: media stops, every other member is told (durably, so late devices learn it). */
  async #leaveWith(live: Live, reason: HangupReason, by: 'local' | 'remote', tell: boolean): Promise<void> {
    const call = live.call;
    if (!this.#finish(live, reason, by) || !tell) return;
    const members = await this.#membersOrUndefined(call.groupId);
    const signal = this.#signal(call, 0, { kind: 'hangup', reason: reason === 'full' ? 'normal' : reason, deviceId: this.#d.self.deviceId });
    const results = await Promise.allSettled((members ?? []).filter((m) => m !== this.#d.self.accountId).map((to) => this.#d.send(to, signal, true)));
    for (const r of results) if (r.status === 'rejected') this.#d.onError(r.reason);
  }

  #tellOwnDevices(call: GroupCall, reason: 'answered-elsewhere' | 'declined-elsewhere'): void {
    const self = this.#d.self;
    drop(
      this.#d.hasOtherDevices().then((has) => (has ? this.#d.send(self.accountId, this.#signal(call, 0, { kind: 'hangup', reason, deviceId: self.deviceId }), true) : undefined)),
      this.#d.onError,
    );
  }

  #sendQuietly(to: AccountId, signal: CallSignal, durable: boolean): void {
    drop(this.#d.send(to, signal, durable), this.#d.onError);
  }

  #prune(now: number): void {
    for (const live of [...this.#live.values()]) {
      if (live.call.state === 'idle' && now - live.lastActivity > IDLE_FORGET_MS) this.#finish(live, 'normal', 'remote');
    }
    if (this.#ended.size > MAX_ENDED) {
      for (const [id, at] of this.#ended) if (now - at > ENDED_MEMORY_MS || this.#ended.size > MAX_ENDED) this.#ended.delete(id);
    }
  }

  /**
   * After leaving a call that others are still in: the same call id is followed again, as a new `idle`
   * GroupCall with the remaining participants (not connected to), announced as `running`: `join()` joins it
   * again (a new join, newer than our leave, so the others take it). What was learnt of each device's joins
   * and leaves carries over, so replays stay refused. It ends like any call followed without taking part:
   * when the last participant leaves (or after a quiet hour).
   */
  #follow(prev: Live, others: ReadonlyArray<CallParticipant & { readonly joinedAt: number }>): void {
    const old = prev.call;
    if (this.#live.has(old.id) || this.forGroup(old.groupId)) return;
    this.#ended.delete(old.id);
    const call = new GroupCall(this, old.id, old.groupId, old.direction, old.media, old.startedBy, old.ringTimestamp, 'idle');
    const live = this.#register(call);
    for (const [k, t] of prev.joins) live.joins.set(k, t);
    for (const [k, t] of prev.left) live.left.set(k, t);
    live.outcome = 'answered';
    for (const p of others) this.#track(live, p, p.joinedAt);
    this.#d.emitCall({ type: 'running', call });
  }

  /** Ends the call here: media stops, its id is remembered, the chat records it, `ended` is emitted. */
  #finish(live: Live, reason: HangupReason, by: 'local' | 'remote'): boolean {
    const call = live.call;
    clearTimeout(live.ringTimer);
    live.topology?.close();
    const joinedAt = call.joinedAt;
    if (!call.finish({ reason, by })) return false;
    const now = this.#d.now();
    this.#live.delete(call.id);
    this.#ended.set(call.id, now);
    this.#d.emitCall({ type: 'ended', call });
    const outcome: CallOutcome = joinedAt !== undefined ? 'answered' : (live.outcome ?? 'missed');
    if (call.ringTimestamp > 0 && call.startedBy) drop(this.#record(call, call.startedBy.accountId, outcome, joinedAt, now), this.#d.onError);
    return true;
  }

  /** The group chat's record of the call (once per device: the id is the starter's and the ring's timestamp). */
  async #record(call: GroupCall, caller: AccountId, outcome: CallOutcome, joinedAt: number | undefined, now: number): Promise<void> {
    const id = messageId(caller, call.ringTimestamp);
    const record: CallRecord = {
      callId: call.id,
      media: call.media,
      outcome,
      reason: call.end?.reason ?? 'normal',
      durationMs: joinedAt === undefined ? undefined : now - joinedAt,
      endedAt: now,
    };
    const message = await this.#d.store.transaction(async (tx) => {
      if (await tx.messages.get(id)) return undefined;
      const m = newMessageRecord({
        id,
        conversationId: call.groupId,
        senderId: caller,
        direction: call.direction,
        timestamp: call.ringTimestamp,
        serverTimestamp: undefined,
        receivedAt: now,
        kind: 'call',
        status: call.direction === 'outgoing' ? 'sent' : 'received',
        call: record,
      });
      await tx.messages.put(m);
      return m;
    });
    if (message) this.#d.emitMessage(message);
  }
}

/** Whether this device can join the call now (read through a function: the state changes across awaits). */
function isJoinable(call: GroupCall): boolean {
  return call.state === 'ringing' || call.state === 'idle';
}
