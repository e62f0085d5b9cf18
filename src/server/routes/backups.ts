import { badRequest, forbidden } from '../errors.js';
import type { DeviceContext, RouteResponse, Route } from '../http/route.js';
import type { BackupKdf } from '../storage/backup-store.js';
import type { BackupService, BackupView, NewBackup } from '../services/backups.js';

/**
 * Backups (docs/api.md "Backups", docs/backups.md): `PUT /v1/backups` (also `POST`), `GET /v1/backups/current`,
 * `POST /v1/backups/current/unlock`, `DELETE /v1/backups/current`. Bodies are JSON (bytes as lowercase hex):
 * the backup file itself is a blob, uploaded through `/v1/blobs/uploads` first.
 */
export function backupRoutes(backups: BackupService): Route[] {
  const put = async (ctx: DeviceContext, body: Uint8Array): Promise<RouteResponse> => {
    if (ctx.device.deviceId !== 1) throw forbidden('only the primary device registers backups');
    return json(viewJson(await backups.put(ctx.device.accountId, parseNewBackup(body))));
  };
  return [
    { verb: 'PUT', path: '/v1/backups', auth: true, handle: (ctx, body) => put(ctx, body) },
    { verb: 'POST', path: '/v1/backups', auth: true, handle: (ctx, body) => put(ctx, body) },
    {
      verb: 'GET',
      path: '/v1/backups/current',
      auth: true,
      async handle(ctx) {
        return json(viewJson(await backups.current(ctx.device.accountId)));
      },
    },
    {
      verb: 'POST',
      path: '/v1/backups/current/unlock',
      auth: true,
      async handle(ctx, body) {
        const o = parseJson(body);
        const slotId = typeof o.slotId === 'string' ? o.slotId : '';
        const share = await backups.unlock(ctx.device.accountId, slotId, hex(o.proof, 'proof'));
        return json({ share: Buffer.from(share).toString('hex') });
      },
    },
    {
      verb: 'DELETE',
      path: '/v1/backups/current',
      auth: true,
      async handle(ctx) {
        if (ctx.device.deviceId !== 1) throw forbidden('only the primary device deletes backups');
        await backups.delete(ctx.device.accountId);
        return { status: 204, body: new Uint8Array(0) };
      },
    },
  ];
}

function json(value: unknown): RouteResponse {
  return { body: new TextEncoder().encode(JSON.stringify(value)), contentType: 'application/json' };
}

function parseJson(body: Uint8Array): Record<string, unknown> {
  try {
    const o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as unknown;
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error('not an object');
    return o as Record<string, unknown>;
  } catch (cause) {
    throw badRequest('the body is not a JSON object', cause);
  }
}

function hex(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || v.length > 256 || !/^(?:[0-9a-f]{2})*$/.test(v)) throw badRequest(`malformed ${what}`);
  return new Uint8Array(Buffer.from(v, 'hex'));
}

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw badRequest(`malformed ${what}`);
  return v;
}

function parseNewBackup(body: Uint8Array): NewBackup {
  const o = parseJson(body);
  const p = o.password;
  let password: NewBackup['password'];
  if (p !== undefined && p !== null) {
    if (typeof p !== 'object' || Array.isArray(p)) throw badRequest('malformed password slot');
    const s = p as Record<string, unknown>;
    if (typeof s.slotId !== 'string') throw badRequest('malformed slot id');
    password = { slotId: s.slotId, salt: hex(s.salt, 'salt'), kdf: s.kdf as BackupKdf, verifier: hex(s.verifier, 'verifier'), share: hex(s.share, 'share') };
  }
  if (typeof o.blobId !== 'string') throw badRequest('malformed blob id');
  return { blobId: o.blobId, size: num(o.size, 'size'), createdAt: num(o.createdAt, 'creation time'), formatVersion: num(o.formatVersion, 'format version'), password };
}

function viewJson(v: BackupView): unknown {
  const p = v.password;
  return {
    blobId: v.blobId,
    size: v.size,
    createdAt: v.createdAt,
    uploadedAt: v.uploadedAt,
    formatVersion: v.formatVersion,
    password: p === undefined ? null : { slotId: p.slotId, salt: Buffer.from(p.salt).toString('hex'), kdf: p.kdf, attemptsLeft: p.attemptsLeft, locked: p.locked },
  };
}
