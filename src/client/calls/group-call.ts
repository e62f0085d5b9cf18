/**
 * One group call as the application sees it: the call id the whole group shares, its state on this device,
 * the other participants (each with its connection state and remote tracks), and the verbs join, decline and
 * leave. The {@link GroupCallManager} drives it; this class holds state and turns changes into events.
 *
 * States: `ringing` (the call rings here) -> `joined` (this device takes part) -> `ended`. A call that stopped
 * ringing without being joined here (declined, timed out, answered on another device of this account) is
 * `idle`: it still runs elsewhere and can be joined late. `ended` means left here, or over. Leaving a call
 * that others are still in ends this object, and the manager announces a new `idle` GroupCall with the same
 * id (a `running` event; `client.groupCall(groupId)`), which `join()` joins again.
 */
import { Emitter } from '../emitter.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { AccountId, GroupId } from '../ids.js';
import type { CallMediaOptions } from './call.js';
import type { LocalTrackKind } from './media.js';
import type { CallMedia, CallParticipant, HangupReason } from './wire.js';

export type GroupCallState = 'ringing' | 'idle' | 'joined' | 'ended';
/**
 * A participant as this device sees it: `joined` (in the call; no media link from this device, which is not in
 * the call or not yet), then the media link from this device: `connecting`, `connected` or `failed`.
 */
export type GroupCallParticipantState = 'joined' | 'connecting' | 'connected' | 'failed';

/** How a group call ended on this device. */
export interface GroupCallEnd {
  /** `normal` (left, or everybody left), `full` (the call had 8 participants), `failed`, ... */
  readonly reason: HangupReason;
  readonly by: 'local' | 'remote';
}

/** Options of joining or starting a group call (the 1:1 media options, plus the call's media kind). */
export interface GroupCallMediaOptions extends CallMediaOptions {
  /** Starting only: `audio` or `video` (default: video when a video track is given). */
  readonly media?: CallMedia | undefined;
}

/** Another device in the call, as this device sees it. */
export class GroupCallParticipant implements CallParticipant {
  #state: GroupCallParticipantState = 'joined';
  #tracks: MediaStreamTrack[] = [];
  #streams: MediaStream[] = [];
  #pc: RTCPeerConnection | undefined;

  constructor(
    readonly accountId: AccountId,
    readonly deviceId: number,
    /** The sender timestamp of the join (or ring) that brought it into the call. */
    readonly joinedAt: number,
  ) {}

  get state(): GroupCallParticipantState {
    return this.#state;
  }

  /** Remote tracks received from this participant (play them, or record them). */
  get tracks(): readonly MediaStreamTrack[] {
    return this.#tracks;
  }

  /** The streams those tracks belong to, as the participant announced them. */
  get streams(): readonly MediaStream[] {
    return this.#streams;
  }

  /** The connection to this participant (mesh: one per pair; `getStats()`); undefined before it exists. */
  get peerConnection(): RTCPeerConnection | undefined {
    return this.#pc;
  }

  /** @internal */
  setState(state: GroupCallParticipantState): boolean {
    if (this.#state === state) return false;
    this.#state = state;
    return true;
  }

  /** @internal */
  setConnection(pc: RTCPeerConnection | undefined): void {
    this.#pc = pc;
    this.#tracks = [];
    this.#streams = [];
  }

  /** @internal */
  addTrack(track: MediaStreamTrack, streams: readonly MediaStream[]): void {
    if (!this.#tracks.includes(track)) this.#tracks = [...this.#tracks, track];
    for (const s of streams) if (!this.#streams.includes(s)) this.#streams = [...this.#streams, s];
  }
}

export interface GroupCallEvents {
  state: { readonly state: GroupCallState };
  /** A device joined the call (its media is connecting). */
  participantJoined: { readonly participant: GroupCallParticipant };
  /** A device left (or was dropped: removed from the group, connection failed). */
  participantLeft: { readonly participant: GroupCallParticipant; readonly reason: HangupReason };
  /** `participant.state` changed. */
  participantState: { readonly participant: GroupCallParticipant };
  /** A remote track of one participant arrived. */
  track: { readonly participant: GroupCallParticipant; readonly track: MediaStreamTrack; readonly streams: readonly MediaStream[] };
  ended: GroupCallEnd;
}

/** The verbs the manager implements for a group call. */
export interface GroupCallControl {
  join(call: GroupCall, options: GroupCallMediaOptions): Promise<void>;
  decline(call: GroupCall): Promise<void>;
  leave(call: GroupCall): Promise<void>;
  replaceLocalTrack(call: GroupCall, kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void>;
}

export class GroupCall {
  readonly #events = new Emitter<GroupCallEvents>();
  readonly #control: GroupCallControl;
  readonly #participants = new Map<string, GroupCallParticipant>();
  #state: GroupCallState;
  #ringTimestamp: number;
  #joinedAt: number | undefined;
  #end: GroupCallEnd | undefined;
  readonly #ended: Promise<GroupCallEnd>;
  #resolveEnded!: (end: GroupCallEnd) => void;

  constructor(
    control: GroupCallControl,
    /** 32 lowercase hex digits, shared by every participant. */
    readonly id: string,
    readonly groupId: GroupId,
    /** `outgoing`: this device started it. */
    readonly direction: 'outgoing' | 'incoming',
    readonly media: CallMedia,
    /** The device that rang the group (undefined when this device learnt of the call from a join only). */
    readonly startedBy: CallParticipant | undefined,
    ringTimestamp: number,
    state: GroupCallState,
  ) {
    this.#control = control;
    this.#state = state;
    this.#ringTimestamp = ringTimestamp;
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get state(): GroupCallState {
    return this.#state;
  }

  /** The other devices in the call, as this device knows them (joined ones are connected to, or being). */
  get participants(): readonly GroupCallParticipant[] {
    return [...this.#participants.values()];
  }

  /** The sender timestamp of the ring (the call's message id in the group chat); 0 when unknown. */
  get ringTimestamp(): number {
    return this.#ringTimestamp;
  }

  /** When this device joined, ms. */
  get joinedAt(): number | undefined {
    return this.#joinedAt;
  }

  get end(): GroupCallEnd | undefined {
    return this.#end;
  }

  on<K extends keyof GroupCallEvents>(event: K, listener: (payload: GroupCallEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** Joins: answers the call ringing here, or joins a running call late (`CLIENT_CALL_FULL` at 8 devices). */
  join(options: GroupCallMediaOptions = {}): Promise<void> {
    return this.#control.join(this, options);
  }

  /** Stops ringing here and on this account's other devices (the call stays joinable: `idle`). */
  decline(): Promise<void> {
    return this.#control.decline(this);
  }

  /**
   * Leaves the call (the others continue); a ringing call is declined. While others are still in it, the
   * call is then known here as a new `idle` GroupCall of the same id (see the class comment), to join again.
   */
  leave(): Promise<void> {
    return this.#control.leave(this);
  }

  /**
   * Sends `track` instead of this device's current `kind` track (a switched camera, a replaced microphone),
   * or nothing (`null`: camera or microphone off; the m-line stays, so a later track needs no new offer), to
   * every participant: the connected ones at once (`RTCRtpSender.replaceTrack`, no renegotiation) and every
   * one connected later. Only while joined (`CLIENT_INVALID_ARGUMENT` otherwise, also for a track of another
   * kind, or video in an audio call). The caller still owns the tracks: stopping the old one is up to it.
   */
  replaceLocalTrack(kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void> {
    return this.#control.replaceLocalTrack(this, kind, track);
  }

  /** The same as {@link leave}. */
  hangup(): Promise<void> {
    return this.leave();
  }

  /** Resolves once at least `count` participants are connected; `CLIENT_TIMEOUT` after `timeoutMs`, `CLIENT_CLOSED` if the call ends first. */
  whenConnectedTo(count: number, timeoutMs = 60_000): Promise<void> {
    const enough = (): boolean => this.participants.filter((p) => p.state === 'connected').length >= count;
    if (enough()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const offs: Array<() => void> = [];
      const cleanup = (): void => {
        clearTimeout(timer);
        for (const off of offs) off();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ClientError(ClientErrorCode.Timeout, `fewer than ${count} participants connected in time`));
      }, timeoutMs);
      offs.push(
        this.on('participantState', () => {
          if (!enough()) return;
          cleanup();
          resolve();
        }),
        this.on('ended', (end) => {
          cleanup();
          reject(new ClientError(ClientErrorCode.Closed, `the group call ended (${end.reason})`));
        }),
      );
      if (this.#end) {
        cleanup();
        reject(new ClientError(ClientErrorCode.Closed, `the group call ended (${this.#end.reason})`));
      }
    });
  }

  /** Resolves when the call ends here. */
  whenEnded(): Promise<GroupCallEnd> {
    return this.#ended;
  }

  // ---- driven by the manager -----------------------------------------------------------------------------

  /** @internal */
  participant(key: string): GroupCallParticipant | undefined {
    return this.#participants.get(key);
  }

  /** @internal */
  addParticipant(key: string, p: GroupCallParticipant): void {
    this.#participants.set(key, p);
    this.#events.emit('participantJoined', { participant: p });
  }

  /** @internal */
  removeParticipant(key: string, reason: HangupReason): GroupCallParticipant | undefined {
    const p = this.#participants.get(key);
    if (!p) return undefined;
    this.#participants.delete(key);
    this.#events.emit('participantLeft', { participant: p, reason });
    return p;
  }

  /** @internal */
  participantChanged(p: GroupCallParticipant): void {
    this.#events.emit('participantState', { participant: p });
  }

  /** @internal */
  trackArrived(p: GroupCallParticipant, track: MediaStreamTrack, streams: readonly MediaStream[]): void {
    p.addTrack(track, streams);
    this.#events.emit('track', { participant: p, track, streams });
  }

  /** @internal */
  setRingTimestamp(timestamp: number): void {
    if (this.#ringTimestamp === 0) this.#ringTimestamp = timestamp;
  }

  /** @internal */
  setState(state: GroupCallState, now: number): void {
    if (this.#state === state || this.#state === 'ended') return;
    this.#state = state;
    if (state === 'joined') this.#joinedAt = now;
    this.#events.emit('state', { state });
  }

  /** @internal Ends the call here; false when it had ended already. */
  finish(end: GroupCallEnd): boolean {
    if (this.#end) return false;
    this.#end = end;
    this.#state = 'ended';
    this.#events.emit('state', { state: 'ended' });
    this.#events.emit('ended', end);
    this.#resolveEnded(end);
    return true;
  }
}
