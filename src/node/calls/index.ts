/**
 * Headless calls in Node: the RTCPeerConnection of `@roamhq/wrtc` to hand to the SDK's call manager
 * (`ClientOptions.calls.RTCPeerConnection`), and audio from and to files (audio.ts).
 */
import wrtc from '@roamhq/wrtc';

export { decodeToPcm, PcmPlayer, TrackRecorder, PLAY_SAMPLE_RATE, MAX_PLAY_SECONDS, type RecordingStats } from './audio.js';

/** `@roamhq/wrtc`'s RTCPeerConnection, typed as the standard one. */
export const NodeRTCPeerConnection: typeof RTCPeerConnection = wrtc.RTCPeerConnection;
