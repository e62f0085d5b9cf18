/**
 * One call as the application sees it: its state, its peer, its RTCPeerConnection (for tracks and stats),
 * and the verbs answer, decline and hang up. The {@link CallManager} drives it; this class only holds state
 * and turns transitions into events.
 *
 * States: `dialing` (outgoing, offer sent) -> `ringing` (a callee device rings; incoming: ringing here) ->
 * `connecting` (answered: ICE and DTLS under way) -> `connected` -> `ended`. Any state may end.
 */
import { Emitter } from '../emitter.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { AccountId, GroupId } from '../ids.js';
import type { CallOutcome } from '../store/types.js';
import type { LocalTrackKind } from './media.js';
import type { CallMedia, HangupReason } from './wire.js';

export type CallState = 'dialing' | 'ringing' | 'connecting' | 'connected' | 'ended';
export type CallDirection = 'outgoing' | 'incoming';

/** How and why a call ended. */
export interface CallEnd {
  readonly reason: HangupReason;
  /** Who ended it: this device (`local`) or the peer, another of our devices, or a timer on their side (`remote`). */
  readonly by: 'local' | 'remote';
  /** What the chat records (see {@link CallOutcome}). */
  readonly outcome: CallOutcome;
}

/** What the tracks of an answer or a new call are. */
export interface CallMediaOptions {
  /**
   * Local tracks to send (a microphone, a camera, or the Node SDK's audio source), one of each kind. None:
   * nothing is sent until a track is set with `replaceLocalTrack`.
   */
  readonly tracks?: readonly MediaStreamTrack[] | undefined;
  /** The streams the tracks belong to (announced to the peer with them). */
  readonly streams?: readonly MediaStream[] | undefined;
  /** Use only TURN relay candidates (`iceTransportPolicy: 'relay'`). Default: the manager's option. */
  readonly relayOnly?: boolean | undefined;
}

export interface CallEvents {
  state: { readonly state: CallState };
  /** A remote track arrived (play it, or record it). */
  track: { readonly track: MediaStreamTrack; readonly streams: readonly MediaStream[] };
  ended: CallEnd;
}

/** The verbs the manager implements for a call. */
export interface CallControl {
  answer(call: Call, options: CallMediaOptions): Promise<void>;
  decline(call: Call): Promise<void>;
  hangup(call: Call): Promise<void>;
  replaceLocalTrack(call: Call, kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void>;
}

export class Call {
  readonly #events = new Emitter<CallEvents>();
  readonly #control: CallControl;
  #state: CallState;
  #peerDeviceId: number | undefined;
  #offerTimestamp: number;
  #pc: RTCPeerConnection | undefined;
  #connectedAt: number | undefined;
  #endedAt: number | undefined;
  #end: CallEnd | undefined;
  readonly #ended: Promise<CallEnd>;
  #resolveEnded!: (end: CallEnd) => void;

  constructor(
    control: CallControl,
    /** 32 lowercase hex digits. */
    readonly id: string,
    readonly direction: CallDirection,
    /** The other account. */
    readonly peer: AccountId,
    readonly media: CallMedia,
    offerTimestamp: number,
    /** When this device learnt of the call, ms. */
    readonly startedAt: number,
    peerDeviceId: number | undefined,
    readonly groupId: GroupId | undefined = undefined,
  ) {
    this.#control = control;
    this.#state = direction === 'outgoing' ? 'dialing' : 'ringing';
    this.#peerDeviceId = peerDeviceId;
    this.#offerTimestamp = offerTimestamp;
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get state(): CallState {
    return this.#state;
  }

  /** The peer's device: the caller's (incoming), or the device that answered (outgoing; undefined before). */
  get peerDeviceId(): number | undefined {
    return this.#peerDeviceId;
  }

  /** The sender timestamp of the offer (the call's message id in the chat); 0 until an outgoing offer went out. */
  get offerTimestamp(): number {
    return this.#offerTimestamp;
  }

  /** The connection (for remote tracks, `getStats()`, senders); undefined until this device takes part. */
  get peerConnection(): RTCPeerConnection | undefined {
    return this.#pc;
  }

  get connectedAt(): number | undefined {
    return this.#connectedAt;
  }

  get endedAt(): number | undefined {
    return this.#endedAt;
  }

  /** How it ended, once it did. */
  get end(): CallEnd | undefined {
    return this.#end;
  }

  on<K extends keyof CallEvents>(event: K, listener: (payload: CallEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** Answers an incoming call that is ringing here (the other devices of this account stop ringing). */
  answer(options: CallMediaOptions = {}): Promise<void> {
    return this.#control.answer(this, options);
  }

  /** Declines an incoming call (on every device of this account). */
  decline(): Promise<void> {
    return this.#control.decline(this);
  }

  /** Ends the call (an outgoing call that was not answered yet is cancelled; a ringing incoming one declined). */
  hangup(): Promise<void> {
    return this.#control.hangup(this);
  }

  /**
   * Sends `track` instead of this device's current `kind` track (a switched camera, a replaced microphone),
   * or nothing (`null`: the m-line stays, so a later track needs no new offer), through
   * `RTCRtpSender.replaceTrack` without renegotiation. Once this device takes part (placed, or answered):
   * `CLIENT_INVALID_ARGUMENT` before or after, also for a track of another kind, or video in an audio call.
   */
  replaceLocalTrack(kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void> {
    return this.#control.replaceLocalTrack(this, kind, track);
  }

  /** Resolves once connected; rejects with `CLIENT_TIMEOUT` after `timeoutMs`, or when the call ends first. */
  whenConnected(timeoutMs = 60_000): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        offState();
        offEnded();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ClientError(ClientErrorCode.Timeout, 'the call did not connect in time'));
      }, timeoutMs);
      const offState = this.on('state', ({ state }) => {
        if (state !== 'connected') return;
        cleanup();
        resolve();
      });
      const offEnded = this.on('ended', (end) => {
        cleanup();
        reject(new ClientError(ClientErrorCode.Closed, `the call ended (${end.reason}) before it connected`));
      });
      if (this.#end) {
        cleanup();
        reject(new ClientError(ClientErrorCode.Closed, `the call ended (${this.#end.reason}) before it connected`));
      }
    });
  }

  /** Resolves when the call ends. */
  whenEnded(): Promise<CallEnd> {
    return this.#ended;
  }

  // ---- driven by the manager -----------------------------------------------------------------------------

  /** @internal */
  setState(state: CallState, now: number): void {
    if (this.#state === state || this.#state === 'ended') return;
    this.#state = state;
    if (state === 'connected') this.#connectedAt = now;
    this.#events.emit('state', { state });
  }

  /** @internal */
  setOfferTimestamp(timestamp: number): void {
    this.#offerTimestamp = timestamp;
  }

  /** @internal */
  setPeerDevice(deviceId: number): void {
    this.#peerDeviceId = deviceId;
  }

  /** @internal */
  attach(pc: RTCPeerConnection): void {
    this.#pc = pc;
    pc.addEventListener('track', (e: RTCTrackEvent) => this.#events.emit('track', { track: e.track, streams: [...e.streams] }));
  }

  /** @internal Ends the call (closing its connection); false when it had ended already. */
  finish(end: CallEnd, now: number): boolean {
    if (this.#end) return false;
    this.#end = end;
    this.#endedAt = now;
    this.#state = 'ended';
    try {
      this.#pc?.close();
    } catch {
      // closing a connection that failed to start is fine
    }
    this.#events.emit('state', { state: 'ended' });
    this.#events.emit('ended', end);
    this.#resolveEnded(end);
    return true;
  }
}
