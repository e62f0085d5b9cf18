import { notFound } from '../errors.js';
import type { Route, RouteResponse } from '../http/route.js';
import type { PushService } from './service.js';

function json(value: unknown, status = 200): RouteResponse {
  return { status, body: new TextEncoder().encode(JSON.stringify(value)), contentType: 'application/json' };
}

/**
 * Web Push routes (docs/api.md "Web Push"): `GET /v1/push/vapid` (public: the key a browser subscribes
 * with), `PUT /v1/push/subscription` (the device's subscription, as `PushSubscription.toJSON()`, replacing
 * any it had), `GET` and `DELETE /v1/push/subscription`.
 */
export function pushRoutes(push: PushService): Route[] {
  return [
    {
      verb: 'GET',
      path: '/v1/push/vapid',
      auth: false,
      async handle() {
        return json({ publicKey: push.vapidPublicKey });
      },
    },
    {
      verb: 'PUT',
      path: '/v1/push/subscription',
      auth: true,
      async handle(ctx, body) {
        await push.subscribe(ctx.device, body);
        return { status: 204, body: new Uint8Array(0) };
      },
    },
    {
      verb: 'GET',
      path: '/v1/push/subscription',
      auth: true,
      async handle(ctx) {
        const s = await push.subscription(ctx.device);
        if (s === undefined) throw notFound('push subscription');
        return json({ endpoint: s.endpoint, updatedAt: s.updatedAt });
      },
    },
    {
      verb: 'DELETE',
      path: '/v1/push/subscription',
      auth: true,
      async handle(ctx) {
        await push.unsubscribe(ctx.device);
        return { status: 204, body: new Uint8Array(0) };
      },
    },
  ];
}
