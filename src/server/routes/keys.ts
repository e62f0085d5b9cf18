import { KeyStatusResponseSchema, PreKeyResponseSchema, SetKeysRequestSchema } from '../../protocol/gen/service_pb.js';
import { decode, empty, reply, type Route } from '../http/route.js';
import { parseAccountId, parseDeviceId } from '../ids.js';
import type { KeyDirectory } from '../services/key-directory.js';

/** `PUT /v1/keys`, `GET /v1/keys/status`, `GET /v1/keys/{account_id}/{device_id|*}`. */
export function keyRoutes(keys: KeyDirectory): Route[] {
  return [
    {
      verb: 'PUT',
      path: '/v1/keys',
      auth: true,
      async handle(ctx, body) {
        await keys.setKeys(ctx.device, decode(SetKeysRequestSchema, body));
        return empty();
      },
    },
    {
      verb: 'GET',
      path: '/v1/keys/status',
      auth: true,
      async handle(ctx) {
        return reply(KeyStatusResponseSchema, await keys.status(ctx.device));
      },
    },
    {
      verb: 'GET',
      path: '/v1/keys/:accountId/:deviceId',
      auth: true,
      async handle(ctx) {
        const accountId = parseAccountId(ctx.params.accountId ?? '');
        const device = ctx.params.deviceId === '*' ? '*' : parseDeviceId(ctx.params.deviceId ?? '');
        return reply(PreKeyResponseSchema, await keys.fetch(ctx.device, accountId, device));
      },
    },
  ];
}
