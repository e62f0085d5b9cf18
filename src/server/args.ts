/**
 * Command-line flags and environment variables of the server (`parley serve`, `src/server/run.ts`).
 * Flags win over variables, variables over defaults. Parsing never exits the process: `--help` returns
 * the text, and a bad value throws a RangeError whose message names the flag.
 */
import { Command, CommanderError, Option } from 'commander';
import type { Level } from 'pino';
import { resolvePushConfig, type PushOptions } from './push/config.js';
import { checkTurnConfig } from './turn.js';
import {
  DEFAULT_LIMITS,
  DEFAULT_RATE_LIMITS,
  parseBlobsUrl,
  parseBusUrl,
  parseDatabaseUrl,
  parseTestNumbers, type RateLimit, type RateLimits, type ServerLimits, type ServerOptions } from './config.js';

/** Result of {@link parseServerArgs}. */
export type ParsedServerArgs = { readonly kind: 'run'; readonly options: ServerOptions } | { readonly kind: 'help'; readonly text: string };

const LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** Each flag with its environment variable; the variable applies when the flag is not given. */
const FLAGS = [
  { flag: '--port <n>', key: 'port', env: 'PARLEY_PORT', help: 'TCP port (0 picks a free one)', default: '8080' },
  { flag: '--host <addr>', key: 'host', env: 'PARLEY_HOST', help: 'interface to listen on', default: '0.0.0.0' },
  { flag: '--data <dir>', key: 'data', env: 'PARLEY_DATA_DIR', help: 'data folder (SQLite database, blob files)', default: './data' },
  { flag: '--database <url>', key: 'database', env: 'PARLEY_DATABASE', help: 'durable state: sqlite (in the data folder, the default) or postgres://user:password@host:5432/db (a cluster: every node names the same database)' },
  { flag: '--database-pool <n>', key: 'databasePool', env: 'PARLEY_DATABASE_POOL', help: 'PostgreSQL connections per node', default: '10' },
  { flag: '--bus <url>', key: 'bus', env: 'PARLEY_BUS', help: 'bus between nodes: local (one node) or nats://host:4222[,host:4222...][?prefix=NAME]', default: 'local' },
  { flag: '--blobs <url>', key: 'blobs', env: 'PARLEY_BLOBS', help: 'blob bytes: the blobs folder in the data folder (default) or s3://bucket?endpoint=https://host&region=r[&forcePathStyle=true] (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)' },
  { flag: '--node-id <id>', key: 'nodeId', env: 'PARLEY_NODE_ID', help: "this node's name in a cluster (1-64 of A-Za-z0-9._-); default hostname-pid" },
  { flag: '--test-numbers <list>', key: 'testNumbers', env: 'PARLEY_TEST_NUMBERS', help: 'numbers with fixed codes, "+15550100001=111111,+15550100002=222222"' },
  { flag: '--verification-sender <kind>', key: 'verificationSender', env: 'PARLEY_VERIFICATION_SENDER', help: 'how codes are sent: log (to the server log) or webhook', default: 'log', choices: ['log', 'webhook'] },
  { flag: '--verification-webhook <url>', key: 'verificationWebhook', env: 'PARLEY_VERIFICATION_WEBHOOK', help: 'URL the webhook sender POSTs {"number","code"} to' },
  { flag: '--rate-limit <list>', key: 'rateLimit', env: 'PARLEY_RATE_LIMITS', help: `rate limits, "name=capacity/windowMs,..."; names: ${Object.keys(DEFAULT_RATE_LIMITS).join(', ')}` },
  { flag: '--limit <list>', key: 'limit', env: 'PARLEY_LIMITS', help: `size and count limits, "name=value,..."; names: ${Object.keys(DEFAULT_LIMITS).join(', ')}` },
  { flag: '--turn-secret <secret>', key: 'turnSecret', env: 'PARLEY_TURN_SECRET', help: "TURN REST-API shared secret (coturn's --static-auth-secret); with --turn-url, GET /v1/calls/turn hands out short-lived credentials" },
  { flag: '--turn-url <urls>', key: 'turnUrl', env: 'PARLEY_TURN_URLS', help: 'TURN/STUN URLs handed to clients, comma-separated, e.g. turn:turn.example.org:3478?transport=udp' },
  { flag: '--turn-ttl <seconds>', key: 'turnTtl', env: 'PARLEY_TURN_TTL', help: 'lifetime of TURN credentials, seconds', default: '86400' },
  { flag: '--vapid-public-key <key>', key: 'vapidPublicKey', env: 'PARLEY_VAPID_PUBLIC_KEY', help: 'Web Push VAPID public key (base64url); with --vapid-private-key, used instead of the pair the server generates once and keeps in its database' },
  { flag: '--vapid-private-key <key>', key: 'vapidPrivateKey', env: 'PARLEY_VAPID_PRIVATE_KEY', help: 'Web Push VAPID private key (base64url, 32 bytes)' },
  { flag: '--vapid-subject <url>', key: 'vapidSubject', env: 'PARLEY_VAPID_SUBJECT', help: 'contact push services see in VAPID tokens: mailto:admin@example.org or an https URL (default mailto:postmaster@localhost)' },
  { flag: '--blob-retention <mode>', key: 'blobRetention', env: 'PARLEY_BLOB_RETENTION', help: 'when blobs are deleted: expiry (30 days after upload) or fetched (also once every recipient device fetched them)', default: 'expiry', choices: ['expiry', 'fetched'] },
  { flag: '--log-level <level>', key: 'logLevel', env: 'PARLEY_LOG_LEVEL', help: 'log level', default: 'info', choices: LEVELS },
] as const;

function program(): Command {
  const cmd = new Command('parley serve').description(
    'Run the Parley server: HTTP and WebSocket on one port; SQLite and blob files in the data folder, or one node of a cluster on PostgreSQL, NATS and S3.',
  );
  for (const spec of FLAGS) {
    const option = new Option(spec.flag, `${spec.help} [env ${spec.env}]`);
    if ('default' in spec) option.default(spec.default);
    if ('choices' in spec) option.choices(spec.choices);
    cmd.addOption(option);
  }
  return cmd
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
}

/** The `--help` text. */
export const SERVER_HELP: string = program().helpInformation();

function pairs(list: string, flag: string): Array<[string, string]> {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((entry) => {
      const eq = entry.indexOf('=');
      if (eq <= 0) throw new RangeError(`${flag}: expected name=value, got "${entry}"`);
      return [entry.slice(0, eq).trim(), entry.slice(eq + 1).trim()];
    });
}

function positiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) throw new RangeError(`${what}: expected a positive integer, got "${value}"`);
  return n;
}

function parseRateLimits(list: string): Partial<RateLimits> {
  const out: Partial<Record<keyof RateLimits, RateLimit>> = {};
  for (const [name, value] of pairs(list, '--rate-limit')) {
    if (!(name in DEFAULT_RATE_LIMITS)) throw new RangeError(`--rate-limit: unknown name "${name}"`);
    const [capacity, windowMs] = value.split('/');
    out[name as keyof RateLimits] = {
      capacity: positiveInt(capacity ?? '', `--rate-limit ${name}`),
      windowMs: positiveInt(windowMs ?? '', `--rate-limit ${name}`),
    };
  }
  return out;
}

function parseLimits(list: string): Partial<ServerLimits> {
  const out: Partial<Record<keyof ServerLimits, number>> = {};
  for (const [name, value] of pairs(list, '--limit')) {
    if (!(name in DEFAULT_LIMITS)) throw new RangeError(`--limit: unknown name "${name}"`);
    out[name as keyof ServerLimits] = positiveInt(value, `--limit ${name}`);
  }
  return out;
}

interface RawOptions {
  port: string;
  host: string;
  data: string;
  database?: string;
  databasePool: string;
  bus: string;
  blobs?: string;
  nodeId?: string;
  testNumbers?: string;
  verificationSender: 'log' | 'webhook';
  verificationWebhook?: string;
  rateLimit?: string;
  limit?: string;
  blobRetention: 'expiry' | 'fetched';
  turnSecret?: string;
  turnUrl?: string;
  turnTtl: string;
  vapidPublicKey?: string;
  vapidPrivateKey?: string;
  vapidSubject?: string;
  logLevel: Level;
}

/**
 * Parses server flags (`argv` without the node and script names) and environment variables (`env`,
 * usually `process.env`). Throws RangeError for a bad flag or value.
 */
export function parseServerArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParsedServerArgs {
  if (argv.includes('-h') || argv.includes('--help')) return { kind: 'help', text: SERVER_HELP };
  const cmd = program();
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new RangeError(err.message.replace(/^error: /, ''));
    throw err;
  }
  // Variables fill in what the command line left out.
  for (const spec of FLAGS) {
    const value = env[spec.env];
    if (value === undefined || value === '' || cmd.getOptionValueSource(spec.key) === 'cli') continue;
    if ('choices' in spec && !(spec.choices as readonly string[]).includes(value)) {
      throw new RangeError(`${spec.env}: expected one of ${spec.choices.join(', ')}, got "${value}"`);
    }
    cmd.setOptionValueWithSource(spec.key, value, 'env');
  }
  const raw = cmd.opts<RawOptions>();
  const port = Number(raw.port);
  if (!/^[0-9]+$/.test(raw.port) || port > 65535) throw new RangeError(`--port: expected 0..65535, got "${raw.port}"`);
  const options: ServerOptions = {
    port,
    host: raw.host,
    dataDir: raw.data,
    logLevel: raw.logLevel,
    blobRetention: raw.blobRetention,
  };
  // A bad value is named by where it came from: the flag, or the variable that stood in for it.
  const source = (key: string, flag: string, env: string): string => (cmd.getOptionValueSource(key) === 'env' ? env : flag);
  if (raw.database !== undefined) {
    parseDatabaseUrl(raw.database, source('database', '--database', 'PARLEY_DATABASE'));
    options.database = raw.database;
  }
  options.databasePoolSize = positiveInt(raw.databasePool, source('databasePool', '--database-pool', 'PARLEY_DATABASE_POOL'));
  parseBusUrl(raw.bus, source('bus', '--bus', 'PARLEY_BUS'));
  options.bus = raw.bus;
  if (raw.blobs !== undefined) {
    parseBlobsUrl(raw.blobs, source('blobs', '--blobs', 'PARLEY_BLOBS'));
    options.blobs = raw.blobs;
  }
  if (raw.nodeId !== undefined) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(raw.nodeId)) throw new RangeError(`${source('nodeId', '--node-id', 'PARLEY_NODE_ID')}: expected 1 to 64 of A-Za-z0-9._-`);
    options.nodeId = raw.nodeId;
  }
  if (raw.turnSecret !== undefined || raw.turnUrl !== undefined) {
    if (raw.turnSecret === undefined || raw.turnUrl === undefined) throw new RangeError('--turn-secret and --turn-url go together');
    const urls = raw.turnUrl
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== '');
    const ttlSeconds = positiveInt(raw.turnTtl, source('turnTtl', '--turn-ttl', 'PARLEY_TURN_TTL'));
    try {
      options.turn = checkTurnConfig({ secret: raw.turnSecret, urls, ttlSeconds });
    } catch (err) {
      // The message names what is wrong, never the secret.
      throw new RangeError(`--turn-secret/--turn-url: ${(err as Error).message}`);
    }
  }
  if (raw.vapidPublicKey !== undefined || raw.vapidPrivateKey !== undefined || raw.vapidSubject !== undefined) {
    const push: PushOptions = {};
    if (raw.vapidPublicKey !== undefined) push.vapidPublicKey = raw.vapidPublicKey;
    if (raw.vapidPrivateKey !== undefined) push.vapidPrivateKey = raw.vapidPrivateKey;
    if (raw.vapidSubject !== undefined) push.vapidSubject = raw.vapidSubject;
    try {
      resolvePushConfig(push);
    } catch (err) {
      // The message names what is wrong, never the key.
      throw new RangeError(`--vapid-public-key/--vapid-private-key/--vapid-subject: ${(err as Error).message}`);
    }
    options.push = push;
  }
  if (raw.testNumbers !== undefined) options.testNumbers = parseTestNumbers(raw.testNumbers);
  if (raw.verificationSender === 'webhook') {
    if (raw.verificationWebhook === undefined) throw new RangeError('--verification-sender webhook needs --verification-webhook URL');
    options.verificationSender = { kind: 'webhook', url: raw.verificationWebhook };
  }
  if (raw.rateLimit !== undefined) options.rateLimits = parseRateLimits(raw.rateLimit);
  if (raw.limit !== undefined) options.limits = parseLimits(raw.limit);
  return { kind: 'run', options };
}
