/**
 * WebSocket close codes the server uses (listed in docs/errors.md). 1000-1015 are the standard ones
 * (`ws` itself closes with 1009 when a frame exceeds maxPayload and 1002 on broken framing); 4000-4999
 * are Parley's, numbered after the nearest HTTP status.
 */
export const CloseCode = {
  /** Server shutdown. */
  GoingAway: 1001,
  /** A frame above the size limit (sent by `ws`). */
  TooLarge: 1009,
  /** A frame that is not a binary `Frame` message (SERVER_MALFORMED_FRAME). */
  MalformedFrame: 4400,
  /** The device's credentials were revoked: its account re-registered. */
  Revoked: 4401,
  /** Another connection of the same device replaced this one. */
  Replaced: 4409,
  /** Flooding: requests kept coming after being refused with 429 (SERVER_RATE_LIMITED). */
  Flooding: 4429,
} as const;
