import { ServerError, ServerErrorCode } from '../errors.js';
import type { Route } from '../http/route.js';
import type { Clock } from '../clock.js';
import { mintTurnCredentials, type TurnConfig } from '../turn.js';

/**
 * `GET /v1/calls/turn`: short-lived TURN credentials for the authenticated device's account (JSON, an
 * RTCIceServer plus `ttl`). Without a configured TURN server: 404 `SERVER_NOT_FOUND` (clients then use only
 * direct and STUN-less host candidates).
 */
export function callRoutes(turn: TurnConfig | undefined, clock: Clock): Route[] {
  return [
    {
      verb: 'GET',
      path: '/v1/calls/turn',
      auth: true,
      async handle(ctx) {
        if (!turn) throw new ServerError(ServerErrorCode.NotFound, 'no TURN server is configured');
        const body = JSON.stringify(mintTurnCredentials(turn, ctx.device.accountId, clock.now()));
        return { body: new TextEncoder().encode(body), contentType: 'application/json' };
      },
    },
  ];
}
