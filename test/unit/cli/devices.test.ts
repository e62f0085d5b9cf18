// The terminal client's linked-device commands without a server: usage errors, codes refused before the
// profile is touched, a registered profile never turned into a companion, and how devices and the new
// events (sync messages, device changes, history) print.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../../src/cli/main.ts';
import type { Io } from '../../../src/cli/io.ts';
import { checkLinkUri, deviceText } from '../../../src/cli/commands/devices.ts';
import { humanLine, type EventLine } from '../../../src/cli/events.ts';
import { SqliteClientStore } from '../../../src/cli/store/sqlite-store.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { encodeLinkUri } from '../../../src/client/link-crypto.ts';
import { KeyPair } from '../../../src/protocol/index.ts';
import { crypto } from '../../../src/cli/profile.ts';
import type { AccountId, E164 } from '../../../src/client/ids.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;

function io(input = ''): { io: Io; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const stdin = new PassThrough();
  stdin.end(input);
  return { io: { stdout, stderr, stdin }, out: () => out, err: () => err };
}

function line(fields: Partial<EventLine> & { type: string }): EventLine {
  return { id: 'x', from: '+15550100002', fromAccountId: B, fromVerified: true, timestamp: Date.UTC(2026, 0, 2, 3, 4, 5), body: '', ...fields };
}

describe('parley devices: command line', () => {
  it('exits 2 on usage errors', async () => {
    for (const argv of [
      ['link'],
      ['link', '--server', 'http://127.0.0.1:9', '--timeout', 'soon'],
      ['devices', 'link'],
      ['devices', 'remove'],
      ['devices', 'remove', 'two'],
      ['devices', 'remove', '0'],
      ['devices', 'remove', '2.5'],
      ['devices', 'extra'],
    ]) {
      const t = io();
      assert.equal(await main(argv, t.io), 2, argv.join(' '));
    }
  });

  it('refuses what is not a linking code before opening the profile', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-devices-'));
    try {
      const t = io();
      assert.equal(await main(['devices', 'link', 'https://example.com/link/abc', '--yes', '--profile', path.join(dir, 'none')], t.io), 1);
      assert.match(t.err(), /^parley devices link: not a linking code.*\[CLIENT_BAD_LINK_URI\]\n$/);
      const uri = encodeLinkUri({ linkId: new Uint8Array(16).fill(1), linkingSecret: new Uint8Array(32).fill(2), identityKey: (await KeyPair.generate(crypto)).publicKey.serialized });
      assert.equal(checkLinkUri(`  ${uri}\n`), uri);
      for (const bad of ['parley://link/', 'parley://link/AAAA', `${uri}!`, uri.replace('parley://link/', 'parley://group/'), '']) {
        assert.throws(() => checkLinkUri(bad), (e: unknown) => ClientError.is(e, ClientErrorCode.BadLinkUri), bad);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never links a profile that already holds an account', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-devices-'));
    try {
      const store = SqliteClientStore.open(dir);
      await store.transaction(async (tx) =>
        tx.account.put({
          serverUrl: 'http://127.0.0.1:9',
          number: '+15550100001' as E164,
          accountId: A,
          deviceId: 1,
          password: 'pw',
          registrationId: 1,
          identityPublicKey: new Uint8Array(33).fill(5),
          identityPrivateKey: new Uint8Array(32),
          registeredAt: 1,
        }),
      );
      await store.close();
      const t = io();
      assert.equal(await main(['link', '--server', 'http://127.0.0.1:9', '--profile', dir, '--json'], t.io), 1);
      assert.match(t.err(), /already belongs to \+15550100001 \(device 1\).*new profile folder.*\[CLIENT_INVALID_ARGUMENT\]/);
      assert.equal(t.out(), '', 'no code was shown');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names unregistered profiles for devices and unlink', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-devices-'));
    try {
      for (const argv of [['devices'], ['devices', 'remove', '2'], ['unlink']]) {
        const t = io();
        assert.equal(await main([...argv, '--profile', dir], t.io), 1, argv.join(' '));
        assert.match(t.err(), /CLIENT_NOT_REGISTERED/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parley devices: output', () => {
  it('prints a device with its role, name, dates and flags', () => {
    const created = Date.UTC(2026, 4, 1);
    assert.equal(
      deviceText({ deviceId: 1, name: 'phone', primary: true, self: true, listed: true, createdAt: created, lastSeen: created }),
      ' 1  primary    phone                 created 2026-05-01  last seen 2026-05-01  (this device)',
    );
    assert.equal(
      deviceText({ deviceId: 3, name: null, primary: false, self: false, listed: false, createdAt: created, lastSeen: 0 }),
      ' 3  companion  (no name)             created 2026-05-01  last seen never  (not in the signed device list yet)',
    );
  });

  it('prints sync messages as sent by us, device changes and history', () => {
    const at = '2026-01-02T03:04:05.000Z';
    assert.equal(
      humanLine(line({ type: 'text', body: 'hi', direction: 'outgoing', fromDeviceId: 2, to: '+15550100003', toAccountId: A, groupId: null })),
      `${at} you (device 2) to +15550100003: hi`,
    );
    assert.equal(humanLine(line({ type: 'text', body: 'hi', direction: 'incoming', groupId: null })), `${at} +15550100002: hi`);
    assert.equal(humanLine(line({ type: 'devices-changed', self: false, added: [2, 3], removed: [] })), `${at} +15550100002 linked device(s) 2, 3`);
    assert.equal(humanLine(line({ type: 'devices-changed', self: true, added: [], removed: [4] })), `${at} your account removed device(s) 4`);
    assert.equal(
      humanLine(line({ type: 'history-synced', messages: 12, contacts: 2, groups: 1 })),
      `${at} history from the primary device arrived: 12 message(s), 2 contact(s), 1 group(s)`,
    );
    assert.equal(humanLine(line({ type: 'read-synced', messages: ['a:1', 'a:2'] })), `${at} 2 message(s) read on another of your devices`);
    assert.equal(humanLine(line({ type: 'identity-changed', deviceId: 2, status: 'unverified' })), `${at} the identity key of +15550100002's device 2 changed`);
    assert.equal(
      humanLine(line({ type: 'identity-changed', deviceId: null, status: 'verification-required' })),
      `${at} the safety number with +15550100002 changed: verify it before sending again`,
    );
  });
});
