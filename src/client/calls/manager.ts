/**
 * The call manager: places and answers 1:1 calls over WebRTC, with the signalling carried as end-to-end
 * encrypted content (docs/calls.md). The RTCPeerConnection implementation is injected (browsers: the
 * global; Node: `@roamhq/wrtc`), as the WebSocket is.
 *
 * Who may say what (beyond the Signal session, which authenticates every message's account and device):
 * - an offer must be fresh (not older than the ring timeout: then it is recorded as a missed call) and its
 *   call id must not be one that already ended here (a replay);
 * - every other message must come from the call's peer account, from the device that answered (outgoing) or
 *   placed the call (incoming), and be at most `maxSignalAgeMs` old;
 * - only our own devices may say "answered elsewhere" or "declined elsewhere";
 * - nothing may be dated further in the future than `maxClockSkewMs`.
 * What is refused becomes a `callRejected` event and changes nothing.
 *
 * Delivery: offers and hang-ups are durable (stored by the server, through the outbox) so that a device that
 * was offline learns of the call and records it; answers, ICE candidates, ringing and busy are ephemeral
 * (online only, never stored): they are worthless once the moment has passed.
 */
import { drop, SerialQueue } from '../async.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { Sender } from '../events.js';
import { messageId, type AccountId, type GroupId } from '../ids.js';
import { newMessageRecord } from '../message-records.js';
import type { CallOutcome, CallRecord, ClientStore, MessageRecord } from '../store/types.js';
import { toHex } from '../../protocol/index.js';
import { Call, type CallControl, type CallEnd, type CallMediaOptions } from './call.js';
import { addLocalMedia, checkLocalTrack, offeredKinds, replaceSenderTrack, tracksByKind, type LocalTrackKind, type LocalTracks } from './media.js';
import type { TurnServer } from './turn.js';
import { CALL_ID_BYTES, MAX_CANDIDATES_PER_MESSAGE, type CallMedia, type CallSignal, type CallSignalBody, type HangupReason, type IceCandidateInit } from './wire.js';

/** An RTCPeerConnection constructor (the browser's, or `@roamhq/wrtc`'s in Node). */
export type PeerConnectionConstructor = new (configuration?: RTCConfiguration) => RTCPeerConnection;

/** Options of calls (`ClientOptions.calls`). */
export interface CallOptions {
  /** Default `globalThis.RTCPeerConnection`. */
  readonly RTCPeerConnection?: PeerConnectionConstructor | undefined;
  /** STUN/TURN servers used besides the server's TURN credentials. */
  readonly iceServers?: readonly RTCIceServer[] | undefined;
  /** Ask the server for TURN credentials (`GET /v1/calls/turn`; default true). */
  readonly useServerTurn?: boolean | undefined;
  /** Only relay candidates (`iceTransportPolicy: 'relay'`) for every call (default false). */
  readonly relayOnly?: boolean | undefined;
  /** How long an outgoing call rings before it gives up (and the callee records a missed call), ms (default 45,000). */
  readonly ringTimeoutMs?: number | undefined;
  /** How long an answered call (group calls: each attempt of each pair) may take to connect, ms (default 30,000). */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * Group calls: how many times a pair of participants whose connection failed (or did not connect in time)
   * is tried with a fresh connection and a new offer before the participant is `failed` (default 3).
   */
  readonly connectAttempts?: number | undefined;
  /** Call messages other than offers older than this are refused, ms (default 60,000). */
  readonly maxSignalAgeMs?: number | undefined;
  /** How far in the future a call message may be dated, ms (default 60,000). */
  readonly maxClockSkewMs?: number | undefined;
}

export const DEFAULT_RING_TIMEOUT_MS = 45_000;

/**
 * Why a call message was refused. Group calls add `not-member` (the sender is not a member of the group, as
 * this device knows it), `wrong-group` (a call id of another group), `unexpected` (an offer from the device
 * that must answer, an answer nobody asked for) and `full` (a join beyond 8 devices).
 */
export type CallRejectReason = 'malformed' | 'stale' | 'future' | 'replayed' | 'wrong-peer' | 'wrong-device' | 'not-own-device' | 'not-member' | 'wrong-group' | 'unexpected' | 'full';

/** What the manager needs of the client. */
export interface CallManagerDeps {
  readonly self: { readonly accountId: AccountId; readonly deviceId: number };
  readonly store: ClientStore;
  readonly now: () => number;
  readonly randomBytes: (n: number) => Uint8Array;
  /** Sends a call message to every device of `to`; resolves with its sender timestamp. */
  readonly send: (to: AccountId, signal: CallSignal, durable: boolean) => Promise<number>;
  /** Whether this account has other devices (then they hear of answers and declines). */
  readonly hasOtherDevices: () => Promise<boolean>;
  /** Whether this device is in a group call (then it answers offers `busy` and places no call). */
  readonly inOtherCall?: (() => boolean) | undefined;
  /** The server's TURN credentials (undefined: none configured). */
  readonly turn: () => Promise<TurnServer | undefined>;
  readonly emitCall: (event: CallEvent) => void;
  readonly emitRejected: (event: CallRejectedEvent) => void;
  readonly emitMessage: (message: MessageRecord) => void;
  readonly onError: (error: unknown) => void;
}

/** The `call` event of the Client. */
export interface CallEvent {
  /** `incoming`: ringing here; `ringing`: the callee's device rings; `connected`; `ended` (see `call.end`). */
  readonly type: 'incoming' | 'ringing' | 'connected' | 'ended';
  readonly call: Call;
}

/** The `callRejected` event: a call message that was refused (see {@link CallRejectReason}). */
export interface CallRejectedEvent {
  readonly from: Sender;
  /** The call id it named, when it could be read. */
  readonly callId: string | undefined;
  readonly reason: CallRejectReason;
  readonly kind: CallSignalBody['kind'] | undefined;
  /** The group of a group call's message. */
  readonly groupId?: GroupId | undefined;
}

/** What the manager keeps for a live call besides the {@link Call} itself. */
interface Live {
  readonly call: Call;
  readonly queue: SerialQueue;
  /** Incoming: the offer's SDP until answered. */
  offerSdp: string | undefined;
  /** What this device sends, by kind, once it takes part (placed, or answered); undefined before. */
  tracks: LocalTracks | undefined;
  /** Remote candidates received before the connection could take them. */
  remote: IceCandidateInit[];
  /** Local candidates waiting to be sent (batched; held until the offer went out). */
  local: IceCandidateInit[];
  canTrickle: boolean;
  flushTimer: ReturnType<typeof setTimeout> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Call ids that ended here are remembered this long (replays of them are refused). */
const ENDED_MEMORY_MS = 24 * 3600_000;
const MAX_ENDED = 4096;
/** Candidates for a call not known yet (they overtook their offer) are kept this long, this many. */
const EARLY_TTL_MS = 15_000;
const MAX_EARLY = 64;
/** Extra time a ringing callee waits for the caller's own timeout before recording a missed call itself. */
const CALLEE_GRACE_MS = 5_000;

export class CallManager implements CallControl {
  readonly #d: CallManagerDeps;
  readonly #o: CallOptions;
  readonly #live = new Map<string, Live>();
  readonly #ended = new Map<string, number>();
  readonly #early = new Map<string, { from: AccountId; at: number; candidates: IceCandidateInit[] }>();
  #closed = false;

  constructor(deps: CallManagerDeps, options: CallOptions = {}) {
    this.#d = deps;
    this.#o = options;
  }

  get #ringTimeoutMs(): number {
    return this.#o.ringTimeoutMs ?? DEFAULT_RING_TIMEOUT_MS;
  }

  /** The calls that have not ended. */
  get active(): Call[] {
    return [...this.#live.values()].map((l) => l.call);
  }

  /** A call that has not ended, by id. */
  get(callId: string): Call | undefined {
    return this.#live.get(callId)?.call;
  }

  /** Places a call to `to` (every device of the account rings); resolves once the offer was sent. */
  async place(to: AccountId, options: CallMediaOptions & { readonly media?: CallMedia | undefined } = {}): Promise<Call> {
    this.#ensureOpen();
    if (this.#live.size > 0 || this.#d.inOtherCall?.() === true) throw new ClientError(ClientErrorCode.InvalidArgument, 'already in a call: hang it up first');
    const media = options.media ?? (options.tracks?.some((t) => t.kind === 'video') ? 'video' : 'audio');
    const callId = toHex(this.#d.randomBytes(CALL_ID_BYTES));
    const now = this.#d.now();
    // The offer's timestamp is only known once sent; 0 until then (the record uses the real one).
    const call = new Call(this, callId, 'outgoing', to, media, 0, now, undefined);
    const live = this.#register(call);
    try {
      const pc = await this.#connection(live, options.relayOnly);
      this.#addMedia(live, pc, options, media, true);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const sdp = pc.localDescription?.sdp ?? offer.sdp ?? '';
      const timestamp = await this.#d.send(to, this.#signal(callId, 0, { kind: 'offer', sdp, media }), true);
      call.setOfferTimestamp(timestamp);
      live.canTrickle = true;
      this.#scheduleFlush(live);
      live.timer = setTimeout(() => drop(this.#timeout(live), this.#d.onError), this.#ringTimeoutMs);
      return call;
    } catch (err) {
      this.#finish(live, 'failed', 'local');
      throw err;
    }
  }

  /** Handles a received call message (after its envelope was committed). */
  handle(from: Sender, item: { timestamp: number; signal: CallSignal | undefined; error: ClientError | undefined }): void {
    if (this.#closed) return;
    const s = item.signal;
    const reject = (reason: CallRejectReason): void => this.#d.emitRejected({ from, callId: s?.callId, reason, kind: s?.kind });
    if (!s) return reject('malformed');
    const now = this.#d.now();
    this.#prune(now);
    const own = from.accountId === this.#d.self.accountId;
    if (s.destinationDeviceId !== 0 && s.destinationDeviceId !== this.#d.self.deviceId) return; // for another device of ours
    if (own && from.deviceId === this.#d.self.deviceId) return;
    if (item.timestamp > now + (this.#o.maxClockSkewMs ?? 60_000)) return reject('future');
    const live = this.#live.get(s.callId);
    if (own) {
      if (s.kind !== 'hangup' || (s.reason !== 'answered-elsewhere' && s.reason !== 'declined-elsewhere')) return reject('not-own-device');
      if (live && live.call.direction === 'incoming' && s.deviceId !== this.#d.self.deviceId) this.#finish(live, s.reason, 'remote');
      return;
    }
    if (s.kind === 'offer') {
      if (this.#ended.has(s.callId)) return reject('replayed');
      if (live) return; // the same offer again (a resend)
      this.#incoming(from, item.timestamp, s, now);
      return;
    }
    if (!live) {
      if (this.#ended.has(s.callId)) return; // late messages of a call that ended (trickled candidates, a second hang-up)
      if (s.kind === 'ice') this.#keepEarly(from.accountId, s.callId, s.candidates, now);
      return;
    }
    const call = live.call;
    if (from.accountId !== call.peer) return reject('wrong-peer');
    if (now - item.timestamp > (this.#o.maxSignalAgeMs ?? 60_000)) return reject('stale');
    const peerDevice = call.peerDeviceId;
    if (peerDevice !== undefined && from.deviceId !== peerDevice) {
      // Another callee device: only its "ringing" and a "busy" are worth nothing now; anything else is refused.
      if (call.direction === 'outgoing' && (s.kind === 'ringing' || s.kind === 'answer')) return;
      return reject('wrong-device');
    }
    switch (s.kind) {
      case 'answer':
        if (call.direction !== 'outgoing' || peerDevice !== undefined) return reject('wrong-device');
        this.#answered(live, from.deviceId, s.sdp);
        return;
      case 'ice':
        this.#addRemote(live, s.candidates);
        return;
      case 'ringing':
        if (call.direction === 'outgoing' && call.state === 'dialing') {
          call.setState('ringing', now);
          this.#d.emitCall({ type: 'ringing', call });
        }
        return;
      case 'busy':
        if (call.direction !== 'outgoing' || peerDevice !== undefined) return;
        // Every other device of the callee stops ringing too.
        this.#sendQuietly(call.peer, this.#signal(call.id, 0, { kind: 'hangup', reason: 'busy', deviceId: 0 }), true);
        this.#finish(live, 'busy', 'remote');
        return;
      case 'hangup':
        // The caller saying another device of ours answered: we stop, unless we are that device.
        if (s.reason === 'answered-elsewhere' && s.deviceId === this.#d.self.deviceId) return;
        this.#finish(live, s.reason, 'remote');
        return;
    }
  }

  async answer(call: Call, options: CallMediaOptions): Promise<void> {
    this.#ensureOpen();
    const live = this.#live.get(call.id);
    if (!live || live.call !== call || call.direction !== 'incoming' || call.state !== 'ringing' || live.offerSdp === undefined) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'only an incoming call that is ringing can be answered');
    }
    const sdp = live.offerSdp;
    live.offerSdp = undefined;
    clearTimeout(live.timer);
    call.setState('connecting', this.#d.now());
    const peerDevice = call.peerDeviceId as number;
    try {
      await live.queue.run(async () => {
        const pc = await this.#connection(live, options.relayOnly);
        await pc.setRemoteDescription({ type: 'offer', sdp });
        this.#addMedia(live, pc, options, call.media, false);
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        await this.#d.send(call.peer, this.#signal(call.id, peerDevice, { kind: 'answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' }), false);
        live.canTrickle = true;
        this.#scheduleFlush(live);
        await this.#applyRemote(live);
      });
    } catch (err) {
      this.#hangupWith(live, 'failed');
      throw err;
    }
    live.timer = setTimeout(() => this.#hangupWith(live, 'failed'), this.#o.connectTimeoutMs ?? 30_000);
    this.#tellOwnDevices(call.id, 'answered-elsewhere');
  }

  async decline(call: Call): Promise<void> {
    const live = this.#live.get(call.id);
    if (!live || call.direction !== 'incoming' || call.state !== 'ringing') throw new ClientError(ClientErrorCode.InvalidArgument, 'only an incoming call that is ringing can be declined');
    this.#finish(live, 'declined', 'local');
    this.#tellOwnDevices(call.id, 'declined-elsewhere');
    await this.#d.send(call.peer, this.#signal(call.id, call.peerDeviceId ?? 0, { kind: 'hangup', reason: 'declined', deviceId: this.#d.self.deviceId }), true);
  }

  async hangup(call: Call): Promise<void> {
    const live = this.#live.get(call.id);
    if (!live) return;
    if (call.direction === 'incoming' && call.state === 'ringing') return this.decline(call);
    this.#finish(live, 'normal', 'local');
    // Before an answer the hang-up goes to every device of the callee (they all ring).
    await this.#d.send(call.peer, this.#signal(call.id, call.peerDeviceId ?? 0, { kind: 'hangup', reason: 'normal', deviceId: this.#d.self.deviceId }), true);
  }

  async replaceLocalTrack(call: Call, kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void> {
    checkLocalTrack(kind, track, call.media);
    const live = this.#live.get(call.id);
    if (!live || live.call !== call || !live.tracks) throw new ClientError(ClientErrorCode.InvalidArgument, 'local tracks can be replaced only in a call this device takes part in');
    const tracks = live.tracks;
    // After the answer or offer being made: its m-lines exist then.
    await live.queue.run(async () => {
      tracks.set(kind, track);
      const pc = call.peerConnection;
      if (pc && call.state !== 'ended') await replaceSenderTrack(pc, kind, track);
    });
  }

  /** Ends every call (the client is closing): peers are told, in the background. */
  close(): void {
    if (this.#closed) return;
    for (const live of [...this.#live.values()]) this.#hangupWith(live, 'normal');
    this.#closed = true;
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #ensureOpen(): void {
    if (this.#closed) throw new ClientError(ClientErrorCode.Closed, 'client closed');
  }

  #signal(callId: string, destinationDeviceId: number, body: CallSignalBody): CallSignal {
    return { ...body, callId, destinationDeviceId, groupId: undefined, participants: [] };
  }

  #register(call: Call): Live {
    const live: Live = { call, queue: new SerialQueue(), offerSdp: undefined, tracks: undefined, remote: [], local: [], canTrickle: false, flushTimer: undefined, timer: undefined };
    this.#live.set(call.id, live);
    return live;
  }

  /** A ringing incoming call (or, when this device is busy or the offer is too old, a missed one at once). */
  #incoming(from: Sender, timestamp: number, s: CallSignal & { kind: 'offer' }, now: number): void {
    const call = new Call(this, s.callId, 'incoming', from.accountId, s.media, timestamp, now, from.deviceId);
    const live = this.#register(call);
    live.offerSdp = s.sdp;
    const early = this.#early.get(s.callId);
    if (early && early.from === from.accountId) live.remote.push(...early.candidates);
    this.#early.delete(s.callId);
    const age = now - timestamp;
    if (age > this.#ringTimeoutMs) {
      this.#finish(live, 'timeout', 'remote');
      return;
    }
    if (this.#live.size > 1 || this.#d.inOtherCall?.() === true) {
      this.#sendQuietly(from.accountId, this.#signal(s.callId, from.deviceId, { kind: 'busy' }), false);
      this.#finish(live, 'busy', 'local');
      return;
    }
    live.timer = setTimeout(() => this.#finish(live, 'timeout', 'remote'), this.#ringTimeoutMs - age + CALLEE_GRACE_MS);
    this.#sendQuietly(from.accountId, this.#signal(s.callId, from.deviceId, { kind: 'ringing' }), false);
    this.#d.emitCall({ type: 'incoming', call });
  }

  /** The first callee device answered: connect to it, and stop the others. */
  #answered(live: Live, deviceId: number, sdp: string): void {
    const call = live.call;
    call.setPeerDevice(deviceId);
    clearTimeout(live.timer);
    call.setState('connecting', this.#d.now());
    live.timer = setTimeout(() => this.#hangupWith(live, 'failed'), this.#o.connectTimeoutMs ?? 30_000);
    this.#sendQuietly(call.peer, this.#signal(call.id, 0, { kind: 'hangup', reason: 'answered-elsewhere', deviceId }), false);
    drop(
      live.queue.run(async () => {
        const pc = call.peerConnection;
        if (!pc || call.state === 'ended') return;
        await pc.setRemoteDescription({ type: 'answer', sdp });
        await this.#applyRemote(live);
        this.#scheduleFlush(live); // candidates gathered so far now go to the answering device only
      }),
      (err) => {
        this.#d.onError(err);
        this.#hangupWith(live, 'failed');
      },
    );
  }

  async #connection(live: Live, relayOnly: boolean | undefined): Promise<RTCPeerConnection> {
    const Ctor = this.#o.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: PeerConnectionConstructor }).RTCPeerConnection;
    if (!Ctor) throw new ClientError(ClientErrorCode.InvalidArgument, 'calls need an RTCPeerConnection: pass ClientOptions.calls.RTCPeerConnection');
    const iceServers: RTCIceServer[] = [...(this.#o.iceServers ?? [])];
    if (this.#o.useServerTurn !== false) {
      try {
        const turn = await this.#d.turn();
        if (turn) iceServers.push({ urls: [...turn.urls], username: turn.username, credential: turn.credential });
      } catch (err) {
        this.#d.onError(err); // a call without TURN may still connect directly
      }
    }
    const relay = relayOnly ?? this.#o.relayOnly ?? false;
    if (relay && !iceServers.some((s) => s.credential !== undefined)) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'relay-only calls need a TURN server (none configured)');
    }
    if (live.call.state === 'ended') throw new ClientError(ClientErrorCode.Closed, 'the call ended');
    const pc = new Ctor({ iceServers, iceTransportPolicy: relay ? 'relay' : 'all', bundlePolicy: 'max-bundle' });
    live.call.attach(pc);
    this.#watch(live, pc);
    pc.addEventListener('icecandidate', (e: RTCPeerConnectionIceEvent) => {
      const c = e.candidate;
      if (!c || c.candidate === '') return;
      live.local.push({ candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment });
      this.#scheduleFlush(live);
    });
    return pc;
  }

  /** Follows the connection's state: connected, or failed. */
  #watch(live: Live, pc: RTCPeerConnection): void {
    pc.addEventListener('connectionstatechange', () => {
      const call = live.call;
      if (call.state === 'ended') return;
      if (pc.connectionState === 'connected' && call.state !== 'connected') {
        clearTimeout(live.timer);
        call.setState('connected', this.#d.now());
        this.#d.emitCall({ type: 'connected', call });
      } else if (pc.connectionState === 'failed') {
        this.#hangupWith(live, 'failed');
      }
    });
  }

  /** This device's tracks on the call's connection, each m-line able to send a track set later (media.ts). */
  #addMedia(live: Live, pc: RTCPeerConnection, options: CallMediaOptions, media: CallMedia, offering: boolean): void {
    const tracks = tracksByKind(options.tracks);
    live.tracks = tracks;
    addLocalMedia(pc, tracks, options.streams ?? [], offeredKinds(media, tracks), offering);
  }

  #addRemote(live: Live, candidates: readonly IceCandidateInit[]): void {
    live.remote.push(...candidates);
    drop(live.queue.run(() => this.#applyRemote(live)), this.#d.onError);
  }

  /** Hands buffered remote candidates to the connection once it has the remote description. */
  async #applyRemote(live: Live): Promise<void> {
    const pc = live.call.peerConnection;
    if (!pc?.remoteDescription || live.call.state === 'ended') return;
    const list = live.remote.splice(0);
    for (const c of list) {
      try {
        await pc.addIceCandidate(c.candidate === '' ? null : c);
      } catch (err) {
        this.#d.onError(err); // one bad candidate does not end the call
      }
    }
  }

  #scheduleFlush(live: Live): void {
    if (live.flushTimer !== undefined || !live.canTrickle || live.local.length === 0) return;
    // Candidates gathered within a few milliseconds travel together.
    live.flushTimer = setTimeout(() => {
      live.flushTimer = undefined;
      const call = live.call;
      if (call.state === 'ended') return;
      const batch = live.local.splice(0, MAX_CANDIDATES_PER_MESSAGE);
      this.#sendQuietly(call.peer, this.#signal(call.id, call.peerDeviceId ?? 0, { kind: 'ice', candidates: batch }), false);
      this.#scheduleFlush(live);
    }, 5);
  }

  #keepEarly(from: AccountId, callId: string, candidates: readonly IceCandidateInit[], now: number): void {
    const e = this.#early.get(callId);
    if (e) {
      if (e.from === from && e.candidates.length < MAX_CANDIDATES_PER_MESSAGE * 2) e.candidates.push(...candidates);
      return;
    }
    if (this.#early.size >= MAX_EARLY) return;
    this.#early.set(callId, { from, at: now, candidates: [...candidates] });
  }

  #prune(now: number): void {
    for (const [id, e] of this.#early) if (now - e.at > EARLY_TTL_MS) this.#early.delete(id);
    if (this.#ended.size > MAX_ENDED) {
      for (const [id, at] of this.#ended) if (now - at > ENDED_MEMORY_MS || this.#ended.size > MAX_ENDED) this.#ended.delete(id);
    }
  }

  /** The outgoing call rang out: every callee device stops, and the chat records it unanswered. */
  async #timeout(live: Live): Promise<void> {
    const call = live.call;
    if (call.state !== 'dialing' && call.state !== 'ringing') return;
    this.#finish(live, 'timeout', 'local');
    await this.#d.send(call.peer, this.#signal(call.id, 0, { kind: 'hangup', reason: 'timeout', deviceId: this.#d.self.deviceId }), true);
  }

  /** Ends a call from this side with `reason` and tells the peer (in the background). */
  #hangupWith(live: Live, reason: HangupReason): void {
    const call = live.call;
    if (!this.#finish(live, reason, 'local')) return;
    this.#sendQuietly(call.peer, this.#signal(call.id, call.peerDeviceId ?? 0, { kind: 'hangup', reason, deviceId: this.#d.self.deviceId }), true);
  }

  #tellOwnDevices(callId: string, reason: 'answered-elsewhere' | 'declined-elsewhere'): void {
    const self = this.#d.self;
    drop(
      this.#d.hasOtherDevices().then((has) => (has ? this.#d.send(self.accountId, this.#signal(callId, 0, { kind: 'hangup', reason, deviceId: self.deviceId }), true) : undefined)),
      this.#d.onError,
    );
  }

  #sendQuietly(to: AccountId, signal: CallSignal, durable: boolean): void {
    drop(this.#d.send(to, signal, durable), this.#d.onError);
  }

  /** Ends the call here: closes its connection, remembers its id, records it in the chat, emits `ended`. */
  #finish(live: Live, reason: HangupReason, by: 'local' | 'remote'): boolean {
    const call = live.call;
    const now = this.#d.now();
    const end: CallEnd = { reason, by, outcome: outcomeOf(call, reason, by) };
    clearTimeout(live.timer);
    clearTimeout(live.flushTimer);
    if (!call.finish(end, now)) return false;
    this.#live.delete(call.id);
    this.#ended.set(call.id, now);
    this.#d.emitCall({ type: 'ended', call });
    if (call.offerTimestamp > 0) drop(this.#record(call, end, now), this.#d.onError);
    return true;
  }

  /** The chat's record of the call (once: the id is the offer's, so every device of an account agrees on it). */
  async #record(call: Call, end: CallEnd, now: number): Promise<void> {
    const self = this.#d.self.accountId;
    const caller = call.direction === 'outgoing' ? self : call.peer;
    const id = messageId(caller, call.offerTimestamp);
    const record: CallRecord = {
      callId: call.id,
      media: call.media,
      outcome: end.outcome,
      reason: end.reason,
      durationMs: call.connectedAt === undefined ? undefined : now - call.connectedAt,
      endedAt: now,
    };
    const message = await this.#d.store.transaction(async (tx) => {
      if (await tx.messages.get(id)) return undefined;
      const m = newMessageRecord({
        id,
        conversationId: call.peer,
        senderId: caller,
        direction: call.direction,
        timestamp: call.offerTimestamp,
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

function outcomeOf(call: Call, reason: HangupReason, by: 'local' | 'remote'): CallOutcome {
  if (call.connectedAt !== undefined) return 'answered';
  if (reason === 'failed' && call.state !== 'dialing' && call.state !== 'ringing') return 'failed';
  if (call.direction === 'outgoing') {
    if (reason === 'declined' || reason === 'declined-elsewhere') return 'declined';
    if (reason === 'busy') return 'busy';
    if (reason === 'failed') return 'failed';
    return 'unanswered';
  }
  if (reason === 'answered-elsewhere') return 'answered-elsewhere';
  if (reason === 'declined-elsewhere' || (reason === 'declined' && by === 'local')) return 'declined';
  return 'missed';
}
