/** Voice and video calls (docs/calls.md): the call managers (1:1 and group), a call's handle, the wire format. */
export { Call, type CallDirection, type CallEnd, type CallEvents, type CallMediaOptions, type CallState } from './call.js';
export { CallManager, DEFAULT_RING_TIMEOUT_MS, type CallEvent, type CallOptions, type CallRejectedEvent, type CallRejectReason, type PeerConnectionConstructor } from './manager.js';
export {
  GroupCall,
  GroupCallParticipant,
  type GroupCallEnd,
  type GroupCallEvents,
  type GroupCallMediaOptions,
  type GroupCallParticipantState,
  type GroupCallState,
} from './group-call.js';
export { GroupCallManager, type GroupCallEvent } from './group-manager.js';
export type { LocalTrackKind } from './media.js';
export { MeshTopology } from './mesh.js';
export { offersTo, participantKey, type GroupCallTopology, type GroupCallTopologyHost, type MediaSignal } from './topology.js';
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
