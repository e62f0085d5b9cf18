/**
 * Server configuration: the options `startServer` takes, their defaults, and their resolution into one
 * immutable {@link ServerConfig}. Command-line flags and environment variables are parsed into these
 * options by `args.ts`.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import type { DestinationStream, Level } from 'pino';
import type { BlobRetention } from './blobs/blob-store.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { PhoneNumber } from './ids.js';
import { isPhoneNumber } from './ids.js';
import { resolvePushConfig, type PushConfig, type PushOptions } from './push/config.js';
import type { VerificationSender } from './services/verification-sender.js';
import { checkTurnConfig, type TurnConfig } from './turn.js';

/** A token bucket: `capacity` requests at once, refilled at `capacity` per `windowMs`. */
export interface RateLimit {
  capacity: number;
  windowMs: number;
}

/** Every rate limit of the server, by name (the names are the flag's keys). */
export interface RateLimits {
  /** Verification codes requested for one number. */
  verificationPerNumber: RateLimit;
  /** Verification codes requested from one remote address. */
  verificationPerAddress: RateLimit;
  /** Registration attempts from one remote address. */
  registerPerAddress: RateLimit;
  /** Number lookups by one account. */
  lookupPerAccount: RateLimit;
  /** Prekey bundle fetches by one account. */
  keyFetchPerAccount: RateLimit;
  /** Message sends (requests) by one device. */
  messagesPerSender: RateLimit;
  /** Requests of any kind on one WebSocket connection (flood control). */
  requestsPerConnection: RateLimit;
  /** Group creations, changes and leaves by one account. */
  groupChangesPerAccount: RateLimit;
  /** Invite-link joins by one account (each one is a guess at a link's password). */
  groupJoinsPerAccount: RateLimit;
  /** Unauthenticated linking requests (provisioning pick-ups, device links) from one remote address. */
  linkPerAddress: RateLimit;
  /** Provisioning codes, provisioning messages and device-list uploads by one account. */
  devicesPerAccount: RateLimit;
  /** Blob uploads and downloads by one account. */
  blobsPerAccount: RateLimit;
}

/** Size and count limits; each has a safe default. */
export interface ServerLimits {
  /** Largest HTTP request body and WebSocket frame, in bytes. */
  maxRequestBytes: number;
  /** Largest envelope content, in bytes. */
  maxEnvelopeBytes: number;
  /** Most envelopes queued for one device. */
  maxQueueDepth: number;
  /** Most one-time keys of each kind in one upload. */
  maxKeysPerUpload: number;
  /** Most one-time keys of each kind stored for one device. */
  maxStoredKeys: number;
  /** Most account ids in a presence allow-list. */
  maxPresenceAllowed: number;
  /** Pushes awaiting an ack on one connection before the server waits. */
  pushWindow: number;
  /** Requests rejected in a row for flooding before the connection is closed. */
  floodCloseAfter: number;
  /** Most members of a group, its creator included. */
  maxGroupMembers: number;
  /** Largest encrypted group attributes (name, description, avatar), in bytes. */
  maxGroupAttributesBytes: number;
  /** Most companions linked to one account besides its primary. */
  maxLinkedDevices: number;
  /** Largest provisioning message body, in bytes. */
  maxProvisioningBytes: number;
  /** Largest blob, in bytes (HTTP; over the WebSocket a blob is also bounded by `maxRequestBytes`). */
  maxBlobBytes: number;
  /** Largest blob uploaded in chunks (resumable uploads, `POST /v1/blobs/uploads`), in bytes. */
  maxUploadBytes: number;
  /** Most bytes of unexpired blobs one account may have uploaded, plus the lengths of its uploads in progress. */
  blobQuotaBytes: number;
}

/** How verification codes reach the user. */
export type VerificationSenderOption =
  | { kind: 'log' }
  | { kind: 'webhook'; url: string; timeoutMs?: number }
  | { kind: 'custom'; sender: VerificationSender };

/** Where durable state lives. */
export type DatabaseConfig =
  /** One SQLite file in `dir` (one node). */
  | { readonly kind: 'sqlite'; readonly dir: string }
  /** A PostgreSQL database shared by every node; `url` is `postgres://` or `postgresql://`. */
  | { readonly kind: 'postgres'; readonly url: string; readonly poolSize: number };

/** How nodes reach each other's sockets. */
export type BusConfig =
  /** In-process: one node. */
  | { readonly kind: 'local' }
  /** NATS: `servers` is the comma-separated server list without the query; `subjectPrefix` isolates one cluster's subjects. */
  | { readonly kind: 'nats'; readonly servers: string; readonly subjectPrefix: string | undefined };

/** Where blob bytes live. */
export type BlobStorageConfig =
  /** Files in `dir` (one node, or a folder every node shares). */
  | { readonly kind: 'filesystem'; readonly dir: string }
  /** An S3-compatible bucket: `s3://bucket?endpoint=...&region=...&forcePathStyle=true`. */
  | { readonly kind: 's3'; readonly url: string };

/** What `startServer` accepts. Everything is optional. */
export interface ServerOptions {
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to listen on. Default `0.0.0.0`. */
  host?: string;
  /** Folder of the SQLite database and the blob files (when those are the backends). Default `./data`. */
  dataDir?: string;
  /**
   * Durable state: absent (or `sqlite`) for SQLite in `dataDir`, or a `postgres://` / `postgresql://` URL
   * (every node of a cluster names the same database).
   */
  database?: string;
  /** PostgreSQL connections per node. Default 10. */
  databasePoolSize?: number;
  /**
   * The bus between nodes: `local` (default, one node) or `nats://host:port[,host:port...]`; a `?prefix=NAME`
   * query puts the cluster's subjects under `NAME` (several clusters or tests on one NATS).
   */
  bus?: string;
  /** Blob bytes: absent for the `blobs` folder in `dataDir`, or `s3://bucket?endpoint=URL&region=R&forcePathStyle=true`. */
  blobs?: string;
  /** This node's name in a cluster (bus, logs, metrics): 1 to 64 of `A-Za-z0-9._-`. Default `<hostname>-<pid>`. */
  nodeId?: string;
  /** Numbers with fixed codes (no code is sent), as `Map` or `"+1555...=111111,..."`. */
  testNumbers?: ReadonlyMap<string, string> | string;
  verificationSender?: VerificationSenderOption;
  rateLimits?: Partial<RateLimits>;
  limits?: Partial<ServerLimits>;
  /** Verification codes expire after this long. Default 10 minutes. */
  codeTtlMs?: number;
  /** Wrong codes before a code is invalidated. Default 5. */
  codeAttempts?: number;
  /** Queued envelopes expire after this long. Default 30 days. */
  queueTtlMs?: number;
  /** A repeated idempotency key is recognised within this long. Default 24 hours. */
  idempotencyTtlMs?: number;
  /** Blobs are deleted this long after their (last) upload. Default 30 days. */
  blobTtlMs?: number;
  /** A resumable blob upload without a chunk for this long is deleted. Default 24 hours. */
  blobUploadTtlMs?: number;
  /**
   * `expiry` (default): blobs are deleted only `blobTtlMs` after their last upload. `fetched`: also once
   * every device a message naming the blob (`blob_ids`) was queued for has reported it fetched (or was
   * removed), `blobFetchedGraceMs` after the last such message.
   */
  blobRetention?: BlobRetention;
  /** Retention `fetched`: how long after the last message naming a fetched blob it is kept. Default 10 minutes. */
  blobFetchedGraceMs?: number;
  /** Provisioning codes and provisioning messages expire after this long. Default 10 minutes. */
  provisioningTtlMs?: number;
  /** How often expired rows are swept. Default 1 minute. */
  sweepIntervalMs?: number;
  /** WebSocket ping interval; a socket silent for two intervals is dropped. Default 30 s; 0 disables. */
  heartbeatIntervalMs?: number;
  /** A TURN server whose short-lived credentials `GET /v1/calls/turn` hands out (docs/calls.md); none by default. */
  turn?: TurnConfig;
  /** Web Push: VAPID keys and subject, pacing (docs/server.md "Web Push"). */
  push?: PushOptions;
  /** pino level. Default `info`. */
  logLevel?: Level;
  /** Where log lines go. Default stdout. */
  logDestination?: DestinationStream;
  clock?: Clock;
}

/** The resolved configuration. */
export interface ServerConfig {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly database: DatabaseConfig;
  readonly bus: BusConfig;
  readonly blobs: BlobStorageConfig;
  readonly nodeId: string;
  readonly testNumbers: ReadonlyMap<PhoneNumber, string>;
  readonly verificationSender: VerificationSenderOption;
  readonly rateLimits: Readonly<RateLimits>;
  readonly limits: Readonly<ServerLimits>;
  readonly codeTtlMs: number;
  readonly codeAttempts: number;
  readonly queueTtlMs: number;
  readonly idempotencyTtlMs: number;
  readonly blobTtlMs: number;
  readonly blobUploadTtlMs: number;
  readonly blobRetention: BlobRetention;
  readonly blobFetchedGraceMs: number;
  readonly provisioningTtlMs: number;
  readonly sweepIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly turn: TurnConfig | undefined;
  readonly push: PushConfig;
  readonly logLevel: Level;
  readonly logDestination: DestinationStream | undefined;
  readonly clock: Clock;
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Default rate limits. */
export const DEFAULT_RATE_LIMITS: Readonly<RateLimits> = {
  verificationPerNumber: { capacity: 3, windowMs: 10 * MINUTE },
  verificationPerAddress: { capacity: 20, windowMs: 10 * MINUTE },
  registerPerAddress: { capacity: 20, windowMs: 10 * MINUTE },
  lookupPerAccount: { capacity: 100, windowMs: MINUTE },
  keyFetchPerAccount: { capacity: 200, windowMs: MINUTE },
  messagesPerSender: { capacity: 1000, windowMs: 1000 },
  requestsPerConnection: { capacity: 2000, windowMs: 1000 },
  groupChangesPerAccount: { capacity: 120, windowMs: MINUTE },
  groupJoinsPerAccount: { capacity: 10, windowMs: MINUTE },
  linkPerAddress: { capacity: 120, windowMs: MINUTE },
  devicesPerAccount: { capacity: 60, windowMs: MINUTE },
  blobsPerAccount: { capacity: 300, windowMs: MINUTE },
};

/** Default limits. */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  maxRequestBytes: 1024 * 1024,
  maxEnvelopeBytes: 256 * 1024,
  maxQueueDepth: 10_000,
  maxKeysPerUpload: 100,
  maxStoredKeys: 1000,
  maxPresenceAllowed: 5000,
  pushWindow: 256,
  floodCloseAfter: 100,
  maxGroupMembers: 1024,
  maxGroupAttributesBytes: 64 * 1024,
  maxLinkedDevices: 4,
  maxProvisioningBytes: 8 * 1024,
  maxBlobBytes: 100 * 1024 * 1024,
  maxUploadBytes: 2 * 1024 * 1024 * 1024,
  // 4 GiB: one upload of the largest size (2 GiB) fits next to other blobs.
  blobQuotaBytes: 4 * 1024 * 1024 * 1024,
};

/** Parses `"+15550100001=111111,+15550100002=222222"`; a code is 6 digits. */
export function parseTestNumbers(spec: string): Map<PhoneNumber, string> {
  const out = new Map<PhoneNumber, string>();
  for (const entry of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = entry.indexOf('=');
    const number = eq < 0 ? '' : entry.slice(0, eq).trim();
    const code = eq < 0 ? '' : entry.slice(eq + 1).trim();
    if (!/^[0-9]{6}$/.test(code)) throw new RangeError('test numbers: each entry is +NUMBER=CODE with a 6-digit code');
    if (!isPhoneNumber(number)) throw new RangeError('test numbers: each number is E.164 (+ and 7 to 15 digits)');
    out.set(number, code);
  }
  return out;
}

/**
 * Checks a `--database` value: `postgres://` or `postgresql://` with a host selects PostgreSQL; `sqlite` (or
 * absent, handled by the caller) SQLite in the data folder. `what` names the flag or variable in the error;
 * the error never repeats the value, which can carry a password.
 */
export function parseDatabaseUrl(value: string, what: string): { kind: 'sqlite' } | { kind: 'postgres'; url: string } {
  if (value === 'sqlite') return { kind: 'sqlite' };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`${what}: expected a postgres:// or postgresql:// URL (or sqlite), and this is not a URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new RangeError(`${what}: expected a postgres:// or postgresql:// URL (or sqlite), got a ${url.protocol}// URL`);
  }
  if (url.hostname === '' && !url.searchParams.has('host')) throw new RangeError(`${what}: the PostgreSQL URL names no host`);
  if (url.pathname.length <= 1) throw new RangeError(`${what}: the PostgreSQL URL names no database (postgres://user@host:5432/DATABASE)`);
  return { kind: 'postgres', url: value };
}

const SUBJECT_PREFIX = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/;

/**
 * Checks a `--bus` value: `local`, or NATS servers `nats://host:port[,nats://host:port|host:port...]` (also
 * `tls://`) with an optional `?prefix=NAME` query at the end. `what` names the flag or variable in errors.
 */
export function parseBusUrl(value: string, what: string): BusConfig {
  if (value === 'local') return { kind: 'local' };
  const q = value.indexOf('?');
  const list = q < 0 ? value : value.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : value.slice(q + 1));
  const servers = list.split(',').map((s) => s.trim());
  if (!/^(nats|tls):\/\//.test(servers[0] ?? '')) throw new RangeError(`${what}: expected local or nats://host:port[,host:port...]`);
  for (const server of servers) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//.test(server) ? server : `nats://${server}`);
    } catch {
      throw new RangeError(`${what}: "${server}" is not a NATS server address (nats://host:port)`);
    }
    if ((url.protocol !== 'nats:' && url.protocol !== 'tls:') || url.hostname === '' || (url.pathname !== '' && url.pathname !== '/')) {
      throw new RangeError(`${what}: "${url.host}" is not a NATS server address (nats://host:port)`);
    }
  }
  let subjectPrefix: string | undefined;
  for (const [key, v] of query) {
    if (key !== 'prefix') throw new RangeError(`${what}: unknown query parameter "${key}" (known: prefix)`);
    if (!SUBJECT_PREFIX.test(v)) throw new RangeError(`${what}: prefix must be NATS subject tokens of A-Za-z0-9_- joined by dots`);
    subjectPrefix = v;
  }
  return { kind: 'nats', servers: servers.join(','), subjectPrefix };
}

/** The query parameters an `s3://` URL may carry. */
const S3_PARAMETERS = new Set(['endpoint', 'region', 'forcePathStyle', 'accessKeyId', 'secretAccessKey', 'sessionToken']);

/**
 * Checks a `--blobs` value: `s3://bucket[/prefix][?endpoint=...&region=...&forcePathStyle=true]` (keys may
 * be in the query, so errors never repeat the value). The store checks the bucket itself when it opens.
 */
export function parseBlobsUrl(value: string, what: string): { kind: 's3'; url: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`${what}: expected s3://bucket?endpoint=...&region=..., and this is not a URL`);
  }
  if (url.protocol !== 's3:') throw new RangeError(`${what}: expected s3://bucket?endpoint=...&region=..., got a ${url.protocol}// URL`);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(url.hostname)) throw new RangeError(`${what}: the S3 URL names no valid bucket (s3://BUCKET?..., 3 to 63 of a-z 0-9 . -)`);
  for (const name of url.searchParams.keys()) {
    if (!S3_PARAMETERS.has(name)) throw new RangeError(`${what}: unknown query parameter "${name}" (known: ${[...S3_PARAMETERS].join(', ')})`);
  }
  const endpoint = url.searchParams.get('endpoint');
  if (endpoint !== null && !/^https?:\/\/[^/]/.test(endpoint)) throw new RangeError(`${what}: endpoint must be an http(s) URL`);
  const pathStyle = url.searchParams.get('forcePathStyle');
  if (pathStyle !== null && pathStyle !== 'true' && pathStyle !== 'false') throw new RangeError(`${what}: forcePathStyle must be true or false`);
  return { kind: 's3', url: value };
}

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The default node id: `<hostname>-<pid>`, cut to the allowed characters and length. */
export function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 48) || 'node';
  return `${host}-${process.pid}`;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number`);
  return value;
}

/** Fills in defaults and checks ranges; throws RangeError on a bad option. */
export function resolveConfig(options: ServerOptions = {}): ServerConfig {
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError('port must be 0..65535');
  const rateLimits = { ...DEFAULT_RATE_LIMITS, ...options.rateLimits };
  for (const [name, limit] of Object.entries(rateLimits)) {
    positive(`rate limit ${name} capacity`, limit.capacity);
    positive(`rate limit ${name} window`, limit.windowMs);
  }
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  for (const [name, value] of Object.entries(limits)) positive(name, value);
  const testNumbers =
    options.testNumbers === undefined
      ? new Map<PhoneNumber, string>()
      : typeof options.testNumbers === 'string'
        ? parseTestNumbers(options.testNumbers)
        : parseTestNumbers([...options.testNumbers].map(([n, c]) => `${n}=${c}`).join(','));
  const sender = options.verificationSender ?? { kind: 'log' };
  const blobRetention = options.blobRetention ?? 'expiry';
  if (blobRetention !== 'expiry' && blobRetention !== 'fetched') throw new RangeError('blobRetention must be expiry or fetched');
  if (sender.kind === 'webhook' && !/^https?:\/\//.test(sender.url)) throw new RangeError('webhook URL must be http(s)');
  const dataDir = path.resolve(options.dataDir ?? './data');
  const poolSize = options.databasePoolSize ?? 10;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1000) throw new RangeError('databasePoolSize must be 1..1000');
  const db = options.database === undefined ? ({ kind: 'sqlite' } as const) : parseDatabaseUrl(options.database, 'database');
  const nodeId = options.nodeId ?? defaultNodeId();
  if (!NODE_ID.test(nodeId)) throw new RangeError('nodeId must be 1 to 64 of A-Za-z0-9._-');
  return {
    port,
    host: options.host ?? '0.0.0.0',
    dataDir,
    database: db.kind === 'sqlite' ? { kind: 'sqlite', dir: dataDir } : { kind: 'postgres', url: db.url, poolSize },
    bus: parseBusUrl(options.bus ?? 'local', 'bus'),
    blobs: options.blobs === undefined ? { kind: 'filesystem', dir: path.join(dataDir, 'blobs') } : parseBlobsUrl(options.blobs, 'blobs'),
    nodeId,
    testNumbers,
    verificationSender: sender,
    rateLimits,
    limits,
    codeTtlMs: positive('codeTtlMs', options.codeTtlMs ?? 10 * MINUTE),
    codeAttempts: positive('codeAttempts', options.codeAttempts ?? 5),
    queueTtlMs: positive('queueTtlMs', options.queueTtlMs ?? 30 * DAY),
    idempotencyTtlMs: positive('idempotencyTtlMs', options.idempotencyTtlMs ?? DAY),
    blobTtlMs: positive('blobTtlMs', options.blobTtlMs ?? 30 * DAY),
    blobUploadTtlMs: positive('blobUploadTtlMs', options.blobUploadTtlMs ?? DAY),
    blobRetention,
    blobFetchedGraceMs: positive('blobFetchedGraceMs', options.blobFetchedGraceMs ?? 10 * MINUTE),
    provisioningTtlMs: positive('provisioningTtlMs', options.provisioningTtlMs ?? 10 * MINUTE),
    sweepIntervalMs: positive('sweepIntervalMs', options.sweepIntervalMs ?? MINUTE),
    heartbeatIntervalMs: Math.max(0, options.heartbeatIntervalMs ?? 30_000),
    turn: options.turn === undefined ? undefined : checkTurnConfig(options.turn),
    push: resolvePushConfig(options.push),
    logLevel: options.logLevel ?? 'info',
    logDestination: options.logDestination,
    clock: options.clock ?? systemClock,
  };
}
