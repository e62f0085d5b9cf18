// The command line of `parley` in process: usage errors exit 2, failures exit 1 with the error code on
// stderr, `serve --help` is the server's help.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../../src/cli/main.ts';
import type { Io } from '../../../src/cli/io.ts';

function io(): { io: Io; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const stdin = new PassThrough();
  stdin.end();
  return { io: { stdout, stderr, stdin }, out: () => out, err: () => err };
}

describe('parley command line', () => {
  it('prints help and exits 0', async () => {
    const t = io();
    assert.equal(await main(['--help'], t.io), 0);
    assert.match(t.out(), /Usage: parley/);
    assert.match(t.out(), /safety-number/);
  });

  it('passes serve --help through to the server', async () => {
    const t = io();
    assert.equal(await main(['serve', '--help'], t.io), 0);
    assert.match(t.out(), /--test-numbers/);
  });

  it('exits 2 on usage errors', async () => {
    for (const argv of [['send'], ['nope'], ['register', '+15550100001'], ['receive', '--timeout', 'soon'], []]) {
      const t = io();
      assert.equal(await main(argv, t.io), 2, argv.join(' '));
    }
  });

  it('exits 1 with the error code for failures', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-main-'));
    try {
      const notRegistered = io();
      assert.equal(await main(['contacts', '--profile', dir], notRegistered.io), 1);
      assert.match(notRegistered.err(), /CLIENT_NOT_REGISTERED/);
      const badNumber = io();
      assert.equal(await main(['register', '12345', '--server', 'http://127.0.0.1:9', '--code', '111111', '--profile', dir], badNumber.io), 1);
      assert.match(badNumber.err(), /CLIENT_INVALID_ARGUMENT/);
      const unreachable = io();
      assert.equal(await main(['register', '+15550100001', '--server', 'http://127.0.0.1:9', '--code', '111111', '--profile', dir], unreachable.io), 1);
      assert.match(unreachable.err(), /CLIENT_CONNECTION_CLOSED/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes --profile and --json before or after the command', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-main-'));
    try {
      const before = io();
      assert.equal(await main(['--profile', dir, '--json', 'contacts'], before.io), 1);
      assert.match(before.err(), /CLIENT_NOT_REGISTERED/);
      const after = io();
      assert.equal(await main(['contacts', '--json', '--profile', dir], after.io), 1);
      assert.match(after.err(), /CLIENT_NOT_REGISTERED/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
