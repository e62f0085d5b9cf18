import { ServerError, ServerErrorCode } from '../errors.js';
import type { Route } from '../http/route.js';
import type { ServerMetrics } from '../metrics.js';

/** `GET /healthz` (200 `ok` while the server accepts clients) and `GET /metrics` (Prometheus text). */
export function systemRoutes(metrics: ServerMetrics, accepting: () => boolean): Route[] {
  return [
    {
      verb: 'GET',
      path: '/healthz',
      auth: false,
      async handle() {
        if (!accepting()) throw new ServerError(ServerErrorCode.Unavailable, 'shutting down');
        return { body: new TextEncoder().encode('ok'), contentType: 'text/plain; charset=utf-8' };
      },
    },
    {
      verb: 'GET',
      path: '/metrics',
      auth: false,
      async handle() {
        return { body: new TextEncoder().encode(await metrics.render()), contentType: metrics.contentType };
      },
    },
  ];
}
