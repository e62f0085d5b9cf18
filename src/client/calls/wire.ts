/**
 * Call signalling on the wire: the CallMessage of content.proto, validated into a {@link CallSignal} (a plain,
 * checked shape the call manager works with) and built back. Malformed calls are `CLIENT_INVALID_CONTENT`
 * with a reason; every field has a documented size limit, so a hostile peer cannot make a device store or
 * parse unbounded SDP or candidate lists.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { CallMessage_Hangup_Reason, CallMessage_Media, CallMessage_Topology, type CallMessage, type CallMessageSchema } from '../gen/content_pb.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import { isAccountId, isGroupId, type AccountId, type GroupId } from '../ids.js';
import { toHex } from '../../protocol/index.js';

/** Bytes of a call id (random, chosen by the caller). */
export const CALL_ID_BYTES = 16;
/** The largest SDP accepted, in characters (a browser's audio+video offer is 3 to 8 KB). */
export const MAX_SDP_LENGTH = 32 * 1024;
/** The most ICE candidates one message carries. */
export const MAX_CANDIDATES_PER_MESSAGE = 32;
/** The longest candidate line accepted. */
export const MAX_CANDIDATE_LENGTH = 1024;
/** The most participants of a group call (a full mesh: each connects to every other). */
export const MAX_GROUP_CALL_PARTICIPANTS = 8;

export type CallMedia = 'audio' | 'video';

/** Why a call ended (on the wire: CallMessage.Hangup.Reason). */
export type HangupReason = 'normal' | 'declined' | 'answered-elsewhere' | 'timeout' | 'busy' | 'failed' | 'declined-elsewhere' | 'full';

/** One ICE candidate as RTCIceCandidateInit carries it (`candidate: ''` = end of candidates). */
export interface IceCandidateInit {
  readonly candidate: string;
  readonly sdpMid: string | null;
  readonly sdpMLineIndex: number | null;
  readonly usernameFragment: string | null;
}

/** A participant of a group call (a device of an account). */
export interface CallParticipant {
  readonly accountId: AccountId;
  readonly deviceId: number;
}

/** What a call message asks for. */
export type CallSignalBody =
  | { readonly kind: 'offer'; readonly sdp: string; readonly media: CallMedia }
  | { readonly kind: 'answer'; readonly sdp: string }
  | { readonly kind: 'ice'; readonly candidates: readonly IceCandidateInit[] }
  | { readonly kind: 'ringing' }
  | { readonly kind: 'busy' }
  | { readonly kind: 'hangup'; readonly reason: HangupReason; readonly deviceId: number }
  /** Group calls: the call started (every member device rings). */
  | { readonly kind: 'ring'; readonly media: CallMedia }
  /** Group calls: a device joins (`reply`: a participant answers a join, to the joining device only). */
  | { readonly kind: 'join'; readonly reply: boolean; readonly media: CallMedia };

/** A validated call message. */
export type CallSignal = CallSignalBody & {
  /** 32 lowercase hex digits. */
  readonly callId: string;
  /** The recipient device it is for (0 = every device of the account). */
  readonly destinationDeviceId: number;
  /** A group call's group, or undefined for a 1:1 call. */
  readonly groupId: GroupId | undefined;
  readonly participants: readonly CallParticipant[];
};

const REASONS: Readonly<Record<number, HangupReason>> = {
  [CallMessage_Hangup_Reason.NORMAL]: 'normal',
  [CallMessage_Hangup_Reason.DECLINED]: 'declined',
  [CallMessage_Hangup_Reason.ANSWERED_ELSEWHERE]: 'answered-elsewhere',
  [CallMessage_Hangup_Reason.TIMEOUT]: 'timeout',
  [CallMessage_Hangup_Reason.BUSY]: 'busy',
  [CallMessage_Hangup_Reason.FAILED]: 'failed',
  [CallMessage_Hangup_Reason.DECLINED_ELSEWHERE]: 'declined-elsewhere',
  [CallMessage_Hangup_Reason.FULL]: 'full',
};
const REASON_CODES: Readonly<Record<HangupReason, CallMessage_Hangup_Reason>> = {
  normal: CallMessage_Hangup_Reason.NORMAL,
  declined: CallMessage_Hangup_Reason.DECLINED,
  'answered-elsewhere': CallMessage_Hangup_Reason.ANSWERED_ELSEWHERE,
  timeout: CallMessage_Hangup_Reason.TIMEOUT,
  busy: CallMessage_Hangup_Reason.BUSY,
  failed: CallMessage_Hangup_Reason.FAILED,
  'declined-elsewhere': CallMessage_Hangup_Reason.DECLINED_ELSEWHERE,
  full: CallMessage_Hangup_Reason.FULL,
};

const mediaOf = (m: CallMessage_Media): CallMedia => {
  if (m === CallMessage_Media.AUDIO) return 'audio';
  if (m === CallMessage_Media.VIDEO) return 'video';
  throw invalid('unknown media kind');
};
const mediaCode = (m: CallMedia): CallMessage_Media => (m === 'video' ? CallMessage_Media.VIDEO : CallMessage_Media.AUDIO);

const invalid = (message: string): ClientError => new ClientError(ClientErrorCode.InvalidContent, `call message: ${message}`);

function checkSdp(sdp: string): string {
  if (sdp.length === 0 || sdp.length > MAX_SDP_LENGTH) throw invalid(`an SDP has 1 to ${MAX_SDP_LENGTH} characters`);
  if (!sdp.startsWith('v=0')) throw invalid('an SDP starts with v=0');
  return sdp;
}

const checkDevice = (id: number, what: string): number => {
  if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw invalid(`${what} is out of range`);
  return id;
};

/** Validates a received CallMessage (`CLIENT_INVALID_CONTENT` with the reason when malformed). */
export function parseCallMessage(m: CallMessage): CallSignal {
  if (m.callId.length !== CALL_ID_BYTES) throw invalid(`a call id has ${CALL_ID_BYTES} bytes`);
  let groupId: GroupId | undefined;
  if (m.groupId !== '') {
    if (!isGroupId(m.groupId)) throw invalid('malformed group id');
    groupId = m.groupId;
  }
  if (m.participants.length > MAX_GROUP_CALL_PARTICIPANTS) throw invalid(`a group call has at most ${MAX_GROUP_CALL_PARTICIPANTS} participants`);
  if (m.participants.length > 0 && groupId === undefined) throw invalid('participants without a group');
  if (m.topology !== CallMessage_Topology.MESH) throw invalid('only mesh calls are supported');
  const participants = m.participants.map((p) => {
    if (!isAccountId(p.accountId)) throw invalid('a participant is not an account id');
    return { accountId: p.accountId, deviceId: checkDevice(p.deviceId, 'a participant device') };
  });
  const head = { callId: toHex(m.callId), destinationDeviceId: checkDevice(m.destinationDeviceId, 'the destination device'), groupId, participants };
  const k = m.kind;
  switch (k.case) {
    case 'offer':
      return { ...head, kind: 'offer', sdp: checkSdp(k.value.sdp), media: mediaOf(k.value.media) };
    case 'answer':
      return { ...head, kind: 'answer', sdp: checkSdp(k.value.sdp) };
    case 'ice': {
      const list = k.value.candidates;
      if (list.length === 0 || list.length > MAX_CANDIDATES_PER_MESSAGE) throw invalid(`an ICE message carries 1 to ${MAX_CANDIDATES_PER_MESSAGE} candidates`);
      const candidates = list.map((c) => {
        if (c.candidate.length > MAX_CANDIDATE_LENGTH || c.sdpMid.length > 64 || c.usernameFragment.length > 256) throw invalid('an ICE candidate is too long');
        if (c.candidate !== '' && !c.candidate.startsWith('candidate:')) throw invalid('an ICE candidate line starts with "candidate:"');
        if (c.sdpMLineIndex > 64) throw invalid('an m-line index is out of range');
        return { candidate: c.candidate, sdpMid: c.sdpMid === '' ? null : c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment === '' ? null : c.usernameFragment };
      });
      return { ...head, kind: 'ice', candidates };
    }
    case 'ringing':
      return { ...head, kind: 'ringing' };
    case 'busy':
      return { ...head, kind: 'busy' };
    case 'hangup': {
      const reason = REASONS[k.value.reason];
      if (reason === undefined) throw invalid('unknown hang-up reason');
      return { ...head, kind: 'hangup', reason, deviceId: checkDevice(k.value.deviceId, 'the hang-up device') };
    }
    case 'ring':
    case 'join': {
      // Both name their sender first: a receiver checks that against the device the session authenticated.
      if (groupId === undefined || participants.length === 0) throw invalid(`a ${k.case} belongs to a group call and names its sender`);
      const media = mediaOf(k.value.media);
      return k.case === 'ring' ? { ...head, kind: 'ring', media } : { ...head, kind: 'join', reply: k.value.reply, media };
    }
    default:
      throw invalid('no known kind');
  }
}

/** The CallMessage of a signal (the inverse of {@link parseCallMessage}). */
export function callMessageInit(s: CallSignal): MessageInitShape<typeof CallMessageSchema> {
  const head = {
    callId: hexBytes(s.callId),
    destinationDeviceId: s.destinationDeviceId,
    groupId: s.groupId ?? '',
    participants: s.participants.map((p) => ({ accountId: p.accountId, deviceId: p.deviceId })),
    topology: CallMessage_Topology.MESH,
  };
  switch (s.kind) {
    case 'offer':
      return { ...head, kind: { case: 'offer', value: { sdp: s.sdp, media: mediaCode(s.media) } } };
    case 'answer':
      return { ...head, kind: { case: 'answer', value: { sdp: s.sdp } } };
    case 'ice':
      return {
        ...head,
        kind: {
          case: 'ice',
          value: {
            candidates: s.candidates.map((c) => ({ candidate: c.candidate, sdpMid: c.sdpMid ?? '', sdpMLineIndex: c.sdpMLineIndex ?? 0, usernameFragment: c.usernameFragment ?? '' })),
          },
        },
      };
    case 'ringing':
      return { ...head, kind: { case: 'ringing', value: {} } };
    case 'busy':
      return { ...head, kind: { case: 'busy', value: {} } };
    case 'hangup':
      return { ...head, kind: { case: 'hangup', value: { reason: REASON_CODES[s.reason], deviceId: s.deviceId } } };
    case 'ring':
      return { ...head, kind: { case: 'ring', value: { media: mediaCode(s.media) } } };
    case 'join':
      return { ...head, kind: { case: 'join', value: { reply: s.reply, media: mediaCode(s.media) } } };
  }
}

function hexBytes(hex: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new ClientError(ClientErrorCode.InvalidArgument, 'a call id is 32 lowercase hex digits');
  const out = new Uint8Array(CALL_ID_BYTES);
  for (let i = 0; i < CALL_ID_BYTES; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
