/**
 * The local media of a call's connections, shared by 1:1 calls and the group mesh: one transceiver per kind
 * (audio, and video in a video call), each able to send (`sendrecv`) even while it has no track. A track can
 * then be switched, turned off and turned back on with `RTCRtpSender.replaceTrack` alone, without a new
 * offer: a `recvonly` m-line could not carry a track set later, and one removed could not come back.
 */
import { ClientError, ClientErrorCode } from '../errors.js';
import type { CallMedia } from './wire.js';

export type LocalTrackKind = 'audio' | 'video';

/** What this device sends, by kind: a track, or null (nothing now, the m-line stays). */
export type LocalTracks = Map<LocalTrackKind, MediaStreamTrack | null>;

/** The tracks given to a call, by kind: the first of each kind (a call sends one of each). */
export function tracksByKind(tracks: readonly MediaStreamTrack[] | undefined): LocalTracks {
  const out: LocalTracks = new Map();
  for (const t of tracks ?? []) {
    const kind = trackKind(t.kind);
    if (kind && !out.has(kind)) out.set(kind, t);
  }
  return out;
}

/** The kinds of m-lines an offer carries: audio always, video in a video call (or when a video track is sent). */
export function offeredKinds(media: CallMedia, local: LocalTracks): LocalTrackKind[] {
  return media === 'video' || local.has('video') ? ['audio', 'video'] : ['audio'];
}

/**
 * Adds this device's media to a new connection. Offering: one `sendrecv` transceiver per kind, with the
 * current track or none. Answering (the remote offer is applied): the offer decided the m-lines; ours of each
 * kind sends the current track, or is made `sendrecv` without one so that a later track needs no new offer.
 */
export function addLocalMedia(pc: RTCPeerConnection, local: LocalTracks, streams: readonly MediaStream[], kinds: readonly LocalTrackKind[], offering: boolean): void {
  if (offering) {
    for (const kind of kinds) pc.addTransceiver(local.get(kind) ?? kind, { direction: 'sendrecv', streams: [...streams] });
    return;
  }
  for (const track of local.values()) if (track) pc.addTrack(track, ...streams);
  for (const t of pc.getTransceivers()) {
    if (!trackKind(t.receiver.track.kind) || t.direction !== 'recvonly') continue;
    t.direction = 'sendrecv';
    // The streams are announced now (where the platform can: browsers, not wrtc), so that the peer gets a
    // track set later in them, as it would have with the track from the start.
    const sender = t.sender as Partial<Pick<RTCRtpSender, 'setStreams'>>;
    if (streams.length > 0 && typeof sender.setStreams === 'function') sender.setStreams.call(t.sender, ...streams);
  }
}

/**
 * Puts `track` (null: nothing) on the connection's sender of `kind`, without renegotiation; false when the
 * connection has no m-line of that kind yet (an answer still being made takes the current track then).
 */
export async function replaceSenderTrack(pc: RTCPeerConnection, kind: LocalTrackKind, track: MediaStreamTrack | null): Promise<boolean> {
  const t = pc.getTransceivers().find((x) => x.receiver.track.kind === kind && (x.direction === 'sendrecv' || x.direction === 'sendonly'));
  if (!t) return false;
  await t.sender.replaceTrack(track);
  return true;
}

/** Checks the arguments of `replaceLocalTrack` (typed callers can still pass a video track as `audio`). */
export function checkLocalTrack(kind: LocalTrackKind, track: MediaStreamTrack | null, media: CallMedia): void {
  if (trackKind(kind) === undefined) throw new ClientError(ClientErrorCode.InvalidArgument, `a local track is audio or video, not ${String(kind)}`);
  if (track && track.kind !== kind) throw new ClientError(ClientErrorCode.InvalidArgument, `a ${track.kind} track cannot replace the ${kind} track`);
  if (kind === 'video' && media === 'audio') throw new ClientError(ClientErrorCode.InvalidArgument, 'an audio call has no video to replace');
}

function trackKind(kind: string): LocalTrackKind | undefined {
  return kind === 'audio' || kind === 'video' ? kind : undefined;
}
