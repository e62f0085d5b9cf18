/**
 * Making an RTCPeerConnection for a group call: the injected constructor (browsers: the global one; Node:
 * `@roamhq/wrtc`), the configured ICE servers plus the server's TURN credentials, relay-only on request.
 */
import { ClientError, ClientErrorCode } from '../errors.js';
import type { CallOptions, PeerConnectionConstructor } from './manager.js';
import type { TurnServer } from './turn.js';

/** Makes connections (`relayOnly` overrides the option of that name). */
export type ConnectionFactory = (relayOnly: boolean | undefined) => Promise<RTCPeerConnection>;

export function connectionFactory(options: CallOptions, turn: () => Promise<TurnServer | undefined>, onError: (error: unknown) => void): ConnectionFactory {
  return async (relayOnly) => {
    const Ctor = options.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: PeerConnectionConstructor }).RTCPeerConnection;
    if (!Ctor) throw new ClientError(ClientErrorCode.InvalidArgument, 'calls need an RTCPeerConnection: pass ClientOptions.calls.RTCPeerConnection');
    const iceServers: RTCIceServer[] = [...(options.iceServers ?? [])];
    if (options.useServerTurn !== false) {
      try {
        const t = await turn();
        if (t) iceServers.push({ urls: [...t.urls], username: t.username, credential: t.credential });
      } catch (err) {
        onError(err); // without TURN the participants may still connect directly
      }
    }
    const relay = relayOnly ?? options.relayOnly ?? false;
    if (relay && !iceServers.some((s) => s.credential !== undefined)) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'relay-only calls need a TURN server (none configured)');
    }
    return new Ctor({ iceServers, iceTransportPolicy: relay ? 'relay' : 'all', bundlePolicy: 'max-bundle' });
  };
}
