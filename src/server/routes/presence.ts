import { PresenceResponseSchema, PresenceSettingsSchema } from '../../protocol/gen/service_pb.js';
import { decode, empty, reply, type Route } from '../http/route.js';
import { parseAccountId } from '../ids.js';
import type { PresenceService } from '../services/presence.js';

/** `PUT /v1/presence/settings` and `GET /v1/presence/{account_id}`. */
export function presenceRoutes(presence: PresenceService): Route[] {
  return [
    {
      verb: 'PUT',
      path: '/v1/presence/settings',
      auth: true,
      async handle(ctx, body) {
        await presence.setSettings(ctx.device, decode(PresenceSettingsSchema, body));
        return empty();
      },
    },
    {
      verb: 'GET',
      path: '/v1/presence/:accountId',
      auth: true,
      async handle(ctx) {
        return reply(PresenceResponseSchema, await presence.get(ctx.device, parseAccountId(ctx.params.accountId ?? '')));
      },
    },
  ];
}
