import { LookupResponseSchema, WhoAmIResponseSchema } from '../../protocol/gen/service_pb.js';
import { reply, type Route } from '../http/route.js';
import type { AccountService } from '../services/accounts.js';

/** `GET /v1/accounts/whoami` and `GET /v1/accounts/lookup/{number}`. */
export function accountRoutes(accounts: AccountService): Route[] {
  return [
    {
      verb: 'GET',
      path: '/v1/accounts/whoami',
      auth: true,
      async handle(ctx) {
        return reply(WhoAmIResponseSchema, await accounts.whoami(ctx.device));
      },
    },
    {
      verb: 'GET',
      path: '/v1/accounts/lookup/:number',
      auth: true,
      async handle(ctx) {
        return reply(LookupResponseSchema, await accounts.lookup(ctx.device, ctx.params.number ?? ''));
      },
    },
  ];
}
