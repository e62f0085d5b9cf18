import {
  DevicesResponseSchema,
  LinkDeviceRequestSchema,
  LinkDeviceResponseSchema,
  ProvisioningResponseSchema,
  ProvisionEnvelopeSchema,
} from '../../protocol/gen/service_pb.js';
import { decode, empty, reply, type Route } from '../http/route.js';
import { parseDeviceId } from '../ids.js';
import { parseLinkId, type DeviceService } from '../services/devices.js';

/**
 * Linked devices: `POST /v1/devices/provisioning`, `PUT|GET /v1/provisioning/{link_id}`,
 * `POST /v1/devices/link`, `GET /v1/devices`, `PUT /v1/devices/list`, `DELETE /v1/devices/{device_id}`.
 */
export function deviceRoutes(devices: DeviceService): Route[] {
  return [
    {
      verb: 'POST',
      path: '/v1/devices/provisioning',
      auth: true,
      async handle(ctx) {
        return reply(ProvisioningResponseSchema, await devices.provision(ctx.device));
      },
    },
    {
      verb: 'POST',
      path: '/v1/devices/link',
      auth: false,
      async handle(ctx, body) {
        return reply(LinkDeviceResponseSchema, await devices.link(decode(LinkDeviceRequestSchema, body), ctx.remoteAddress));
      },
    },
    {
      verb: 'PUT',
      path: '/v1/devices/list',
      auth: true,
      async handle(ctx, body) {
        await devices.putList(ctx.device, body);
        return empty();
      },
    },
    {
      verb: 'GET',
      path: '/v1/devices',
      auth: true,
      async handle(ctx) {
        return reply(DevicesResponseSchema, await devices.list(ctx.device));
      },
    },
    {
      verb: 'DELETE',
      path: '/v1/devices/:deviceId',
      auth: true,
      async handle(ctx) {
        await devices.remove(ctx.device, parseDeviceId(ctx.params.deviceId ?? ''));
        return empty();
      },
    },
    {
      verb: 'PUT',
      path: '/v1/provisioning/:linkId',
      auth: true,
      async handle(ctx, body) {
        const linkId = parseLinkId(ctx.params.linkId ?? '');
        await devices.putProvisioning(ctx.device, linkId, decode(ProvisionEnvelopeSchema, body));
        return empty();
      },
    },
    {
      verb: 'GET',
      path: '/v1/provisioning/:linkId',
      auth: false,
      async handle(ctx) {
        const linkId = parseLinkId(ctx.params.linkId ?? '');
        return reply(ProvisionEnvelopeSchema, await devices.takeProvisioning(linkId, ctx.remoteAddress));
      },
    },
  ];
}
