// Trust in linked devices against the REAL server: a device the account's signed list does not vouch for (a
// compromised server's forged list) is refused and gets nothing; a removed device gets nothing more, and
// contacts learn of the change (devicesChanged) and drop it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyPair, createSignedDeviceList, encodeSignedDeviceList, decodeDeviceList } from '../../../src/protocol/index.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { companion, primary, settle, startServer, type Device } from './devices-support.ts';
import { collect, crypto } from './support.ts';
import { sqliteStorage } from '../../../src/server/app.ts';

describe('linked devices: trust (real server)', () => {
  it('refuses a companion named by a forged device list (CLIENT_UNTRUSTED_DEVICE) and encrypts nothing to it', async () => {
    const t = await startServer();
    const devices: Device[] = [];
    try {
      const a1 = await primary(t, 1);
      const b1 = await primary(t, 2);
      devices.push(a1, b1);
      const b2 = await companion(t, b1, 'bob laptop');
      devices.push(b2.device);
      await settle(devices.map((d) => d.client));
      // The server is compromised: it replaces Bob's list with one signed by a key that is not Bob's account key.
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(sqliteStorage(t.server.app).file);
      try {
        const row = db.prepare('SELECT signed_list FROM device_lists WHERE account_id = ?').get(b1.client.accountId) as { signed_list: Uint8Array };
        const { decodeSignedDeviceList } = await import('../../../src/protocol/device-identity.ts');
        const real = decodeDeviceList(decodeSignedDeviceList(new Uint8Array(row.signed_list)).list);
        const forger = await KeyPair.generate(crypto);
        const forged = createSignedDeviceList(crypto, forger, {
          accountId: real.accountId,
          version: real.version + 1n,
          timestamp: 1,
          devices: real.devices.map((d) => ({ deviceId: d.deviceId, identity: d.identity as NonNullable<typeof d.identity> })),
        });
        db.prepare('UPDATE device_lists SET signed_list = ?, version = ? WHERE account_id = ?').run(Buffer.from(encodeSignedDeviceList(forged)), Number(real.version + 1n), b1.client.accountId);
      } finally {
        db.close();
      }
      const received = collect(b2.device.client, 'message');
      await assert.rejects(a1.client.sendText(b1.client.number, 'not for a forged device'), (err: unknown) => ClientError.is(err, ClientErrorCode.UntrustedDevice));
      await settle(devices.map((d) => d.client));
      assert.equal(received.items.length, 0);
      const stored = await a1.store.transaction(async (tx) => ({
        sessions: await tx.sessions.devices(b1.client.accountId),
        pinned: await tx.deviceIdentities.list(b1.client.accountId),
      }));
      assert.deepEqual(stored.sessions, [1], 'no session with the refused device');
      assert.deepEqual(stored.pinned, []);
      const failed = (await a1.client.messages(b1.client.number)).find((m) => m.body === 'not for a forged device');
      assert.equal(failed?.status, 'failed');
    } finally {
      for (const d of devices) await d.client.close();
      await t.close();
    }
  });

  it('a removed companion receives nothing more; contacts see devicesChanged and stop encrypting to it', async () => {
    const t = await startServer();
    const devices: Device[] = [];
    try {
      const a1 = await primary(t, 1);
      const b1 = await primary(t, 2);
      devices.push(a1, b1);
      const a2 = await companion(t, a1, 'laptop');
      const a3 = await companion(t, a1, 'browser');
      devices.push(a2.device, a3.device);
      const alice = a1.client.accountId;
      await b1.client.sendText(a1.client.number, 'before');
      await settle(devices.map((d) => d.client));
      assert.deepEqual((await a3.device.client.messages(b1.client.number)).map((m) => m.body), ['before']);
      assert.deepEqual(await b1.store.transaction((tx) => tx.sessions.devices(alice)), [1, 2, 3]);

      const changes = collect(b1.client, 'devicesChanged');
      const a3Got = collect(a3.device.client, 'message');
      await a1.client.removeDevice(a3.deviceId);
      assert.deepEqual((await a1.client.devices()).map((d) => d.deviceId), [1, 2]);
      await b1.client.sendText(a1.client.number, 'after');
      await a1.client.sendText(b1.client.number, 'reply after');
      await settle([a1.client, a2.device.client, b1.client]);
      assert.deepEqual(changes.items, [{ accountId: alice, added: [], removed: [3] }]);
      assert.deepEqual(await b1.store.transaction((tx) => tx.sessions.devices(alice)), [1, 2]);
      assert.deepEqual((await b1.store.transaction((tx) => tx.deviceIdentities.list(alice))).map((d) => d.deviceId), [2]);
      for (const d of [a1, a2.device]) assert.deepEqual((await d.client.messages(b1.client.number)).map((m) => m.body), ['before', 'after', 'reply after'], d.name);
      assert.equal(a3Got.items.length, 0, 'the removed device got nothing');
      assert.deepEqual((await a3.device.client.messages(b1.client.number)).map((m) => m.body), ['before']);

      // A companion logs itself out: the profile is unusable afterwards.
      await a2.device.client.removeDevice(a2.deviceId);
      const { Client } = await import('../../../src/client/client.ts');
      const { deviceOptions } = await import('./devices-support.ts');
      await assert.rejects(Client.open(deviceOptions(a2.device.store)), (err: unknown) => ClientError.is(err, ClientErrorCode.NotRegistered));
      // The server cannot sign a list: the one it holds still names the companion that left, until the
      // primary, on connecting, publishes one without it.
      const namedIds = async (client: typeof a1.client): Promise<number[]> => {
        const res = await client.api.devices();
        return decodeDeviceList((res.deviceList ?? assert.fail('no device list')).list).devices.map((d) => d.deviceId);
      };
      assert.deepEqual(await namedIds(a1.client), [a2.deviceId]);
      await a1.client.close();
      const reopened = await Client.open(deviceOptions(a1.store));
      devices.push({ ...a1, client: reopened });
      reopened.connect();
      await reopened.waitUntilConnected();
      await reopened.whenIdle();
      assert.deepEqual(await namedIds(reopened), []);
      await assert.rejects(a3.device.client.linkDevice('parley://link/x'), (err: unknown) => ClientError.is(err, ClientErrorCode.BadLinkUri));
    } finally {
      for (const d of devices) await d.client.close();
      await t.close();
    }
  });

  it('warns contacts when a device id comes back with another identity key (identityChanged with the device)', async () => {
    const t = await startServer();
    const devices: Device[] = [];
    try {
      const a1 = await primary(t, 1);
      const b1 = await primary(t, 2);
      devices.push(a1, b1);
      const first = await companion(t, a1, 'old laptop');
      devices.push(first.device);
      const alice = a1.client.accountId;
      await b1.client.sendText(a1.client.number, 'to the old laptop');
      await settle(devices.map((d) => d.client));
      const before = await b1.store.transaction((tx) => tx.deviceIdentities.get(alice, first.deviceId));
      assert.ok(before, 'Bob pinned the companion from the signed list');

      await a1.client.removeDevice(first.deviceId);
      await first.device.client.close();
      const second = await companion(t, a1, 'new laptop');
      devices.push(second.device);
      assert.equal(second.deviceId, first.deviceId, 'the server hands the freed device id out again');
      const warnings = collect(b1.client, 'identityChanged');
      const got = collect(second.device.client, 'message');
      await b1.client.sendText(a1.client.number, 'to the new laptop');
      await settle([a1.client, second.device.client, b1.client]);
      const warning = warnings.items.find((w) => w.accountId === alice && w.deviceId === first.deviceId);
      assert.ok(warning, `Bob is warned about device ${first.deviceId}: ${JSON.stringify(warnings.items.map((w) => w.deviceId))}`);
      assert.deepEqual(warning.previousKey, before.identityKey);
      const after = await b1.store.transaction((tx) => tx.deviceIdentities.get(alice, first.deviceId));
      assert.deepEqual(warning.newKey, after?.identityKey);
      assert.notDeepEqual(after?.identityKey, before.identityKey);
      assert.deepEqual(got.items.map((m) => m.message.body), ['to the new laptop']);
    } finally {
      for (const d of devices) await d.client.close();
      await t.close();
    }
  });
});
