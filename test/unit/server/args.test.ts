// Flags and environment variables of the server, and the resolution of options into a configuration.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseServerArgs, SERVER_HELP } from '../../../src/server/main.ts';
import { DEFAULT_LIMITS, parseTestNumbers, resolveConfig } from '../../../src/server/config.ts';
import { createApp } from '../../../src/server/app.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const run = (argv: string[], env: Record<string, string> = {}) => {
  const parsed = parseServerArgs(argv, env);
  assert.equal(parsed.kind, 'run');
  return parsed.kind === 'run' ? parsed.options : {};
};

describe('parseServerArgs', () => {
  it('has defaults: port 8080, ./data, log sender', () => {
    const options = run([]);
    assert.equal(options.port, 8080);
    assert.equal(options.dataDir, './data');
    assert.equal(options.verificationSender, undefined, 'the log sender is the default');
    const config = resolveConfig(options);
    assert.equal(config.verificationSender.kind, 'log');
    assert.equal(config.limits.maxEnvelopeBytes, 256 * 1024);
    assert.equal(config.limits.maxQueueDepth, 10_000);
    assert.equal(config.queueTtlMs, 30 * 24 * 3600 * 1000);
  });

  it('configures TURN with --turn-secret and --turn-url (or PARLEY_TURN_SECRET/PARLEY_TURN_URLS), both or neither', () => {
    assert.equal(resolveConfig(run([])).turn, undefined);
    const secret = 'a-shared-secret-of-some-length';
    const turn = resolveConfig(run(['--turn-secret', secret, '--turn-url', 'turn:127.0.0.1:3478?transport=udp, stun:127.0.0.1:3478', '--turn-ttl', '600'])).turn;
    assert.deepEqual(turn, { secret, urls: ['turn:127.0.0.1:3478?transport=udp', 'stun:127.0.0.1:3478'], ttlSeconds: 600 });
    const fromEnv = resolveConfig(run([], { PARLEY_TURN_SECRET: secret, PARLEY_TURN_URLS: 'turns:turn.example.org:5349' })).turn;
    assert.deepEqual(fromEnv, { secret, urls: ['turns:turn.example.org:5349'], ttlSeconds: 86400 });
    assert.throws(() => run(['--turn-secret', secret]), /--turn-secret and --turn-url go together/);
    assert.throws(() => run(['--turn-url', 'turn:127.0.0.1:3478']), /go together/);
    assert.throws(() => run(['--turn-secret', 'short', '--turn-url', 'turn:127.0.0.1:3478']), (err: Error) => err instanceof RangeError && !err.message.includes('short') && /16 characters/.test(err.message));
    assert.throws(() => run(['--turn-secret', secret, '--turn-url', 'http://127.0.0.1']), /not a turn:/);
  });

  it('reads --blob-retention and PARLEY_BLOB_RETENTION (default expiry, 10-minute grace, 4 GiB quota)', () => {
    const defaults = resolveConfig(run([]));
    assert.equal(defaults.blobRetention, 'expiry');
    assert.equal(defaults.blobFetchedGraceMs, 10 * 60 * 1000);
    assert.equal(defaults.limits.blobQuotaBytes, 4 * 1024 ** 3);
    assert.ok(defaults.limits.blobQuotaBytes >= defaults.limits.maxUploadBytes * 2, 'one largest upload fits next to other blobs');
    assert.equal(run(['--blob-retention', 'fetched']).blobRetention, 'fetched');
    assert.equal(run([], { PARLEY_BLOB_RETENTION: 'fetched' }).blobRetention, 'fetched');
    assert.equal(run(['--blob-retention', 'expiry'], { PARLEY_BLOB_RETENTION: 'fetched' }).blobRetention, 'expiry', 'the flag wins');
    assert.throws(() => parseServerArgs(['--blob-retention', 'never'], {}), RangeError);
    assert.throws(() => parseServerArgs([], { PARLEY_BLOB_RETENTION: 'never' }), /PARLEY_BLOB_RETENTION/);
    assert.throws(() => resolveConfig({ blobRetention: 'never' as 'expiry' }), /blobRetention/);
    assert.throws(() => resolveConfig({ blobFetchedGraceMs: 0 }), /blobFetchedGraceMs/);
    assert.match(SERVER_HELP, /--blob-retention/);
  });

  it('reads flags, then variables for what the flags leave out', () => {
    const options = run(['--port', '9000', '--test-numbers', '+15550100001=123456'], { PARLEY_PORT: '7000', PARLEY_DATA_DIR: '/tmp/x', PARLEY_LOG_LEVEL: 'debug' });
    assert.equal(options.port, 9000, 'the flag wins');
    assert.equal(options.dataDir, '/tmp/x', 'the variable fills in');
    assert.equal(options.logLevel, 'debug');
    assert.deepEqual([...(options.testNumbers as Map<string, string>)], [['+15550100001', '123456']]);
  });

  it('parses rate limits, limits and the webhook sender', () => {
    const options = run(['--rate-limit', 'messagesPerSender=50/1000, lookupPerAccount=5/60000', '--limit', 'maxQueueDepth=20'], {
      PARLEY_VERIFICATION_SENDER: 'webhook',
      PARLEY_VERIFICATION_WEBHOOK: 'http://127.0.0.1:9/sms',
    });
    assert.deepEqual(options.rateLimits, { messagesPerSender: { capacity: 50, windowMs: 1000 }, lookupPerAccount: { capacity: 5, windowMs: 60000 } });
    assert.deepEqual(options.limits, { maxQueueDepth: 20 });
    assert.deepEqual(options.verificationSender, { kind: 'webhook', url: 'http://127.0.0.1:9/sms' });
    const config = resolveConfig(options);
    assert.equal(config.limits.maxQueueDepth, 20);
    assert.equal(config.limits.maxEnvelopeBytes, DEFAULT_LIMITS.maxEnvelopeBytes);
  });

  it('selects the cluster backends with --database, --bus, --blobs and --node-id (or their variables)', () => {
    const defaults = resolveConfig(run(['--data', '/tmp/parley-x']));
    assert.deepEqual(defaults.database, { kind: 'sqlite', dir: '/tmp/parley-x' });
    assert.deepEqual(defaults.bus, { kind: 'local' });
    assert.deepEqual(defaults.blobs, { kind: 'filesystem', dir: '/tmp/parley-x/blobs' });
    assert.match(defaults.nodeId, /^[A-Za-z0-9._-]+-\d+$/, 'hostname-pid');
    assert.ok(defaults.nodeId.endsWith(`-${process.pid}`));

    const options = run([
      '--database', 'postgresql://parley:secret@db.internal:5432/parley',
      '--bus', 'nats://n1:4222,n2:4222?prefix=parley.prod',
      '--blobs', 's3://media?endpoint=http://127.0.0.1:7480&region=us-east-1&forcePathStyle=true',
      '--node-id', 'node-1',
      '--database-pool', '25',
    ]);
    const config = resolveConfig(options);
    assert.deepEqual(config.database, { kind: 'postgres', url: 'postgresql://parley:secret@db.internal:5432/parley', poolSize: 25 });
    assert.deepEqual(config.bus, { kind: 'nats', servers: 'nats://n1:4222,n2:4222', subjectPrefix: 'parley.prod' });
    assert.deepEqual(config.blobs, { kind: 's3', url: 's3://media?endpoint=http://127.0.0.1:7480&region=us-east-1&forcePathStyle=true' });
    assert.equal(config.nodeId, 'node-1');

    const fromEnv = resolveConfig(
      run([], { PARLEY_DATABASE: 'postgres://127.0.0.1/p', PARLEY_BUS: 'nats://127.0.0.1:4222', PARLEY_BLOBS: 's3://bucket', PARLEY_NODE_ID: 'n2', PARLEY_DATABASE_POOL: '3' }),
    );
    assert.deepEqual(
      [fromEnv.database, fromEnv.bus, fromEnv.blobs.kind, fromEnv.nodeId],
      [{ kind: 'postgres', url: 'postgres://127.0.0.1/p', poolSize: 3 }, { kind: 'nats', servers: 'nats://127.0.0.1:4222', subjectPrefix: undefined }, 's3', 'n2'],
    );
    assert.equal(run(['--bus', 'local'], { PARLEY_BUS: 'nats://x:1' }).bus, 'local', 'the flag wins');
    assert.deepEqual(resolveConfig(run(['--database', 'sqlite'])).database.kind, 'sqlite');
    for (const word of ['--database', '--bus', '--blobs', '--node-id', 'PARLEY_DATABASE', 'PARLEY_BUS', 'PARLEY_BLOBS', 'PARLEY_NODE_ID']) {
      assert.ok(SERVER_HELP.includes(word), `help mentions ${word}`);
    }
  });

  it('refuses bad backend URLs with a RangeError naming the flag or variable, never echoing a password', () => {
    const bad: Array<[string[], Record<string, string>, RegExp]> = [
      [['--database', 'mysql://root:hunter2@h/db'], {}, /^--database: .*mysql:/],
      [['--database', 'not a url'], {}, /^--database: /],
      [['--database', 'postgres://h'], {}, /^--database: .*names no database/],
      [[], { PARLEY_DATABASE: 'redis://h:6379' }, /^PARLEY_DATABASE: /],
      [['--bus', 'redis://h:6379'], {}, /^--bus: expected local or nats:/],
      [['--bus', 'nats://h:4222,http://x'], {}, /^--bus: /],
      [['--bus', 'nats://h:4222?prefix=a b'], {}, /^--bus: prefix/],
      [['--bus', 'nats://h:4222?queue=x'], {}, /^--bus: unknown query parameter "queue"/],
      [[], { PARLEY_BUS: 'nats:/' }, /^PARLEY_BUS: /],
      [['--blobs', '/var/blobs'], {}, /^--blobs: /],
      [['--blobs', 'gs://bucket'], {}, /^--blobs: .*gs:/],
      [['--blobs', 's3://bucket?endpoint=ftp://x'], {}, /^--blobs: endpoint/],
      [['--blobs', 's3://B?region=x'], {}, /^--blobs: .*bucket/],
      [['--blobs', 's3://bucket?secretAccessKey=hunter2&nope=1'], {}, /^--blobs: unknown query parameter "nope"/],
      [[], { PARLEY_BLOBS: 'file:///x' }, /^PARLEY_BLOBS: /],
      [['--node-id', 'a/b'], {}, /^--node-id: /],
      [['--node-id', 'x'.repeat(65)], {}, /^--node-id: /],
      [['--database-pool', '0'], {}, /^--database-pool: /],
    ];
    for (const [argv, env, message] of bad) {
      assert.throws(
        () => parseServerArgs(argv, env),
        (err) => err instanceof RangeError && message.test(err.message) && !err.message.includes('hunter2'),
        `${argv.join(' ')} ${JSON.stringify(env)}`,
      );
    }
    assert.throws(() => resolveConfig({ database: 'mysql://h/db' }), /^RangeError: database: /);
    assert.throws(() => resolveConfig({ bus: 'amqp://h' }), /^RangeError: bus: /);
    assert.throws(() => resolveConfig({ nodeId: '' }), /nodeId/);
    assert.throws(() => resolveConfig({ databasePoolSize: 0 }), /databasePoolSize/);
  });

  it('returns the help text for --help and -h', () => {
    for (const flag of ['--help', '-h']) {
      const parsed = parseServerArgs([flag], {});
      assert.equal(parsed.kind, 'help');
      assert.equal(parsed.kind === 'help' ? parsed.text : '', SERVER_HELP);
    }
    for (const word of ['--port', '--data', '--test-numbers', 'PARLEY_PORT', 'PARLEY_DATA_DIR', 'PARLEY_TEST_NUMBERS', '--verification-sender', '--rate-limit']) {
      assert.ok(SERVER_HELP.includes(word), `help mentions ${word}`);
    }
  });

  it('refuses bad values with a RangeError naming the flag', () => {
    const bad: Array<[string[], Record<string, string>, RegExp]> = [
      [['--port', '70000'], {}, /--port/],
      [['--port', 'x'], {}, /--port/],
      [['--nope'], {}, /unknown option/],
      [['--verification-sender', 'carrier-pigeon'], {}, /verification-sender/],
      [['--verification-sender', 'webhook'], {}, /verification-webhook/],
      [['--rate-limit', 'bogus=1/1'], {}, /unknown name/],
      [['--rate-limit', 'messagesPerSender=0/1'], {}, /positive integer/],
      [['--limit', 'maxQueueDepth=-1'], {}, /positive integer/],
      [['--test-numbers', '+1555=12'], {}, /6-digit/],
      [[], { PARLEY_LOG_LEVEL: 'loud' }, /PARLEY_LOG_LEVEL/],
    ];
    for (const [argv, env, message] of bad) assert.throws(() => parseServerArgs(argv, env), (err) => err instanceof RangeError && message.test(err.message), argv.join(' '));
  });
});

describe('resolveConfig', () => {
  it('refuses out-of-range options', () => {
    assert.throws(() => resolveConfig({ port: -1 }), RangeError);
    assert.throws(() => resolveConfig({ limits: { maxQueueDepth: 0 } }), RangeError);
    assert.throws(() => resolveConfig({ rateLimits: { messagesPerSender: { capacity: 1, windowMs: 0 } } }), RangeError);
    assert.throws(() => resolveConfig({ verificationSender: { kind: 'webhook', url: 'file:///etc/passwd' } }), RangeError);
  });

  it('parses test numbers', () => {
    assert.deepEqual([...parseTestNumbers(' +15550100001=111111 , +15550100002=222222 ,')], [
      ['+15550100001', '111111'],
      ['+15550100002', '222222'],
    ]);
    assert.throws(() => parseTestNumbers('15550100001=111111'), /E\.164/);
  });
});

describe('createApp with a backend that cannot be opened', () => {
  // Port 1 on loopback refuses at once: nothing listens there.
  const quiet = { logLevel: 'fatal' as const };
  it('names the flag, hides the password, and leaves nothing open', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-backends-'));
    try {
      await assert.rejects(
        createApp(resolveConfig({ ...quiet, dataDir: dir, database: 'postgres://parley:hunter2@127.0.0.1:1/parley' })),
        (err: Error) => /^--database: cannot open PostgreSQL postgres:\/\/parley:\*\*\*@127\.0\.0\.1:1\/parley: /.test(err.message) && !err.message.includes('hunter2'),
      );
      await assert.rejects(createApp(resolveConfig({ ...quiet, dataDir: dir, bus: 'nats://127.0.0.1:1' })), /^Error: --bus: cannot connect to NATS nats:\/\/127\.0\.0\.1:1: /);
      await assert.rejects(
        createApp(resolveConfig({ ...quiet, dataDir: dir, blobs: 's3://bucket?endpoint=http://127.0.0.1:1&region=us-east-1&forcePathStyle=true&accessKeyId=a&secretAccessKey=hunter2' })),
        (err: Error) => err.message.startsWith('--blobs: cannot open the S3 bucket s3://bucket: ') && !err.message.includes('hunter2'),
      );
      // The SQLite database opened before the bus or bucket failed was closed again: it opens anew.
      const app = await createApp(resolveConfig({ ...quiet, dataDir: dir }));
      await app.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
