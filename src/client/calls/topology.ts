/**
 * How a group call's media flows: the seam between the group call's membership (who is in the call, decided
 * by the {@link GroupCallManager} from authenticated join and leave messages) and its media transport. Today
 * the only topology is a full mesh ({@link MeshTopology}: one RTCPeerConnection per pair of participants,
 * fine up to 8). An SFU would implement the same interface with one connection to the forwarding unit and
 * media encrypted end to end on top of it (insertable streams / SFrame, keys sent in these same encrypted
 * messages); the manager and the {@link GroupCall} would not change.
 */
import type { CallRejectReason } from './manager.js';
import type { GroupCallParticipantState } from './group-call.js';
import type { LocalTrackKind } from './media.js';
import type { CallParticipant, CallSignal } from './wire.js';

/** The media signalling a topology handles (the rest is membership, for the manager). */
export type MediaSignal = CallSignal & { readonly kind: 'offer' | 'answer' | 'ice' };

/** What a topology reports back about each participant's media. */
export interface GroupCallTopologyHost {
  /** The connection that carries this participant's media now (undefined once closed). */
  connection(peer: CallParticipant, pc: RTCPeerConnection | undefined): void;
  state(peer: CallParticipant, state: GroupCallParticipantState): void;
  track(peer: CallParticipant, track: MediaStreamTrack, streams: readonly MediaStream[]): void;
  /** A media message that was refused (it changed nothing). */
  rejected(peer: CallParticipant, kind: MediaSignal['kind'], reason: CallRejectReason): void;
}

/** A group call's media transport (see the module comment). */
export interface GroupCallTopology {
  readonly kind: 'mesh' | 'sfu';
  /** A participant is in the call (known through its authenticated join or offer): set up media with it. */
  connect(peer: CallParticipant): void;
  /** An offer, answer or ICE candidates from a participant of the call, with its sender timestamp. */
  signal(peer: CallParticipant, timestamp: number, signal: MediaSignal): void;
  /**
   * This device now sends `track` as its `kind` (null: nothing, while keeping the means to send again), to
   * every participant connected now and to every one connected later. Mesh: each pair's sender switches
   * (`replaceTrack`, no renegotiation); an SFU would switch its one upstream sender the same way.
   */
  setLocalTrack(kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<void>;
  /** The participant left (or was dropped): its media stops. */
  disconnect(peer: CallParticipant): void;
  /** This device leaves: everything stops. */
  close(): void;
}

/** A device's address in a call, `<account id>.<device id>`: the key of participants and pairs. */
export function participantKey(p: CallParticipant): string {
  return `${p.accountId}.${p.deviceId}`;
}

/**
 * Whether `self` sends the offer to `peer`: of each pair the device with the lower address offers, so both
 * sides agree without a round trip and two offers never cross (no glare).
 */
export function offersTo(self: CallParticipant, peer: CallParticipant): boolean {
  return participantKey(self) < participantKey(peer);
}
