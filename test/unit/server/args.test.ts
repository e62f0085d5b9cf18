// Flags and environment variables of the server, and the resolution of options into a configuration.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseServerArgs, SERVER_HELP } from '../../../src/server/main.ts';
import { DEFAULT_LIMITS, parseTestNumbers, resolveConfig } from '../../../src/server/config.ts';

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
