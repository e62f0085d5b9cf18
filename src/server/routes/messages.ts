import { create } from '@bufbuild/protobuf';
import { SendMessageRequestSchema, SendMessageResponseSchema } from '../../protocol/gen/service_pb.js';
import { decode, reply, type Route } from '../http/route.js';
import { parseAccountId } from '../ids.js';
import type { MessageService } from '../services/messages.js';

/** `PUT /v1/messages/{account_id}`. */
export function messageRoutes(messages: MessageService): Route[] {
  return [
    {
      verb: 'PUT',
      path: '/v1/messages/:accountId',
      auth: true,
      async handle(ctx, body) {
        const destination = parseAccountId(ctx.params.accountId ?? '');
        const stored = await messages.send(ctx.device, destination, decode(SendMessageRequestSchema, body));
        return reply(SendMessageResponseSchema, create(SendMessageResponseSchema, { stored }));
      },
    },
  ];
}
