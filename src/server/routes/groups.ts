import { create } from '@bufbuild/protobuf';
import {
  CreateGroupRequestSchema,
  GroupChangeRequestSchema,
  GroupDevicesSchema,
  GroupStateSchema,
  JoinGroupRequestSchema,
  SendGroupMessageRequestSchema,
  SendMessageResponseSchema,
} from '../../protocol/gen/service_pb.js';
import { decode, empty, reply, type Route } from '../http/route.js';
import { parseGroupId } from '../ids.js';
import type { GroupService } from '../services/groups.js';

/** The group id of a route's path. */
const groupId = (params: Readonly<Record<string, string>>) => parseGroupId(params.groupId ?? '');

/** `/v1/groups/{group_id}` and its `changes`, `join`, `leave`, `devices` and `messages`. */
export function groupRoutes(groups: GroupService): Route[] {
  return [
    {
      verb: 'PUT',
      path: '/v1/groups/:groupId',
      auth: true,
      async handle(ctx, body) {
        return reply(GroupStateSchema, await groups.create(ctx.device, groupId(ctx.params), decode(CreateGroupRequestSchema, body)));
      },
    },
    {
      verb: 'GET',
      path: '/v1/groups/:groupId',
      auth: true,
      async handle(ctx) {
        return reply(GroupStateSchema, await groups.get(ctx.device, groupId(ctx.params)));
      },
    },
    {
      verb: 'POST',
      path: '/v1/groups/:groupId/changes',
      auth: true,
      async handle(ctx, body) {
        return reply(GroupStateSchema, await groups.change(ctx.device, groupId(ctx.params), decode(GroupChangeRequestSchema, body)));
      },
    },
    {
      verb: 'POST',
      path: '/v1/groups/:groupId/join',
      auth: true,
      async handle(ctx, body) {
        return reply(GroupStateSchema, await groups.join(ctx.device, groupId(ctx.params), decode(JoinGroupRequestSchema, body)));
      },
    },
    {
      verb: 'POST',
      path: '/v1/groups/:groupId/leave',
      auth: true,
      async handle(ctx) {
        await groups.leave(ctx.device, groupId(ctx.params));
        return empty();
      },
    },
    {
      verb: 'GET',
      path: '/v1/groups/:groupId/devices',
      auth: true,
      async handle(ctx) {
        return reply(GroupDevicesSchema, await groups.devices(ctx.device, groupId(ctx.params)));
      },
    },
    {
      verb: 'PUT',
      path: '/v1/groups/:groupId/messages',
      auth: true,
      async handle(ctx, body) {
        const stored = await groups.send(ctx.device, groupId(ctx.params), decode(SendGroupMessageRequestSchema, body));
        return reply(SendMessageResponseSchema, create(SendMessageResponseSchema, { stored }));
      },
    },
  ];
}
