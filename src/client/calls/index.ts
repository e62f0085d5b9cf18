/** Voice and video calls (docs/calls.md): the call manager, a call's handle, the wire format. */
export { Call, type CallDirection, type CallEnd, type CallEvents, type CallMediaOptions, type CallState } from './call.js';
export { CallManager, DEFAULT_RING_TIMEOUT_MS, type CallEvent, type CallOptions, type CallRejectedEvent, type CallRejectReason, type PeerConnectionConstructor } from './manager.js';
export { parseTurnResponse, TurnCredentialsCache, type TurnServer } from './turn.js';
export {
  CALL_ID_BYTES,
  MAX_CANDIDATES_PER_MESSAGE,
  MAX_GROUP_CALL_PARTICIPANTS,
  MAX_SDP_LENGTH,
  callMessageInit,
  parseCallMessage,
  type CallMedia,
  type CallParticipant,
  type CallSignal,
  type CallSignalBody,
  type HangupReason,
  type IceCandidateInit,
} from './wire.js';
