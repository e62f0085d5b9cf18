// Linked devices end to end against the REAL server: a primary with two companions and a contact with two
// devices see every message exactly once on every device (also what was sent while some were offline, and
// while the primary was closed); read state syncs; a new companion gets the history.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '../../../src/client/client.ts';
import type { MessageRecord } from '../../../src/client/store/types.ts';
import { companion, primary, settle, startServer, type Device } from './devices-support.ts';
import { collect, eventually } from './support.ts';

/** Every stored message of a conversation on a device, as `direction:body`. */
async function bodies(c: Client, conversation: string): Promise<string[]> {
  return (await c.messages(conversation)).filter((m) => m.kind === 'text').map((m) => `${m.direction}:${m.body}`);
}

describe('linked devices (real server)', () => {
  it('links companions; every message appears on every device of both accounts exactly once, also while some were offline', async () => {
    const t = await startServer();
    const devices: Device[] = [];
    try {
      const a1 = await primary(t, 1, 'alice phone');
      const b1 = await primary(t, 2, 'bob phone');
      devices.push(a1, b1);
      const a2 = await companion(t, a1, 'alice laptop');
      const a3 = await companion(t, a1, 'alice browser');
      const b2 = await companion(t, b1, 'bob laptop');
      devices.push(a2.device, a3.device, b2.device);
      assert.deepEqual([a2.deviceId, a3.deviceId, b2.deviceId], [2, 3, 2]);
      assert.equal(a2.device.client.isPrimary, false);
      assert.equal(a1.client.isPrimary, true);
      const listed = await a1.client.devices();
      assert.deepEqual(
        listed.map((d) => [d.deviceId, d.primary, d.listed, d.self, d.name]),
        [
          [1, true, true, true, undefined],
          [2, false, true, false, 'alice laptop'],
          [3, false, true, false, 'alice browser'],
        ],
      );
      const all = (): Client[] => devices.map((d) => d.client);
      await settle(all());
      const alice = a1.client.number;
      const bob = b1.client.number;

      // Alice's phone to Bob: both of Bob's devices get it, Alice's companions show it as sent.
      const hello = await a1.client.sendText(bob, 'hello from the phone');
      assert.equal(hello.status, 'sent');
      await settle(all());
      for (const d of [b1, b2.device]) assert.deepEqual(await bodies(d.client, alice), ['incoming:hello from the phone'], d.name);
      for (const d of [a2.device, a3.device]) {
        assert.deepEqual(await bodies(d.client, bob), ['outgoing:hello from the phone'], d.name);
        const synced = await d.client.message(hello.id);
        // Filed under the same id as sent; Bob's delivery receipts reach every device of Alice's, this one too.
        assert.equal(synced?.direction, 'outgoing');
        assert.equal(synced?.status, 'delivered');
      }

      // Bob's laptop answers: Alice's three devices and Bob's phone.
      await b2.device.client.sendText(alice, 'hi from the laptop');
      await settle(all());
      for (const d of [a1, a2.device, a3.device]) assert.deepEqual(await bodies(d.client, bob), ['outgoing:hello from the phone', 'incoming:hi from the laptop'], d.name);
      assert.deepEqual(await bodies(b1.client, alice), ['incoming:hello from the phone', 'outgoing:hi from the laptop']);

      // Alice's phone is switched off; her laptop keeps working, Bob's phone writes to her.
      await a1.client.close();
      await b1.client.sendText(alice, 'while your phone is off');
      await a2.device.client.sendText(bob, 'sent from the laptop');
      await settle([b1.client, b2.device.client, a2.device.client, a3.device.client]);
      const expected = ['outgoing:hello from the phone', 'incoming:hi from the laptop', 'incoming:while your phone is off', 'outgoing:sent from the laptop'];
      for (const d of [a2.device, a3.device]) assert.deepEqual(await bodies(d.client, bob), expected, d.name);
      for (const d of [b1, b2.device]) {
        const bobs = ['incoming:hello from the phone', 'outgoing:hi from the laptop', 'outgoing:while your phone is off', 'incoming:sent from the laptop'];
        assert.deepEqual(await bodies(d.client, alice), bobs, d.name);
      }
      // The phone comes back and catches up, exactly once.
      await a1.reopen();
      await settle(all());
      assert.deepEqual(await bodies(a1.client, bob), expected);

      // Reading on the laptop marks the messages read on the phone and the browser, without receipts of their own.
      const synced = collect(a1.client, 'readSynced');
      const read = await a2.device.client.markRead(bob);
      assert.deepEqual(read.map((m) => m.body).sort(), ['hi from the laptop', 'while your phone is off']);
      await settle(all());
      for (const d of [a1, a3.device]) {
        const incoming = (await d.client.messages(bob)).filter((m: MessageRecord) => m.direction === 'incoming');
        assert.deepEqual(incoming.map((m) => m.status), ['read', 'read'], d.name);
      }
      assert.equal(synced.items.length, 1);
      synced.stop();
      // Bob's devices got read receipts from the laptop only (his messages turned read there).
      const hi = (await b2.device.client.messages(alice)).find((m) => m.body === 'hi from the laptop');
      assert.equal(hi?.status, 'read');

      // A group with both accounts: every device of both sees each group message once; our own are outgoing.
      const group = await a1.client.createGroup('both of us', [bob]);
      await settle(all());
      await a1.client.sendText(group.id, 'to the group from the phone');
      await settle(all());
      await b2.device.client.sendText(group.id, 'to the group from bobs laptop');
      await settle(all());
      for (const d of devices) {
        await eventually(async () => (await bodies(d.client, group.id)).length === 2, 5_000, `${d.name} has both group messages`);
        const own = d === a1 || d === a2.device || d === a3.device;
        assert.deepEqual(
          (await bodies(d.client, group.id)).sort(),
          [`${own ? 'outgoing' : 'incoming'}:to the group from the phone`, `${own ? 'incoming' : d === b2.device ? 'outgoing' : 'outgoing'}:to the group from bobs laptop`].sort(),
          d.name,
        );
      }
    } finally {
      for (const d of devices) await d.client.close();
      await t.close();
    }
  });

  it('sends a new companion the recent history: it matches the primary', async () => {
    const t = await startServer();
    const devices: Device[] = [];
    try {
      const a1 = await primary(t, 1);
      const b1 = await primary(t, 2);
      devices.push(a1, b1);
      const bob = b1.client.number;
      for (let i = 0; i < 3; i++) await a1.client.sendText(bob, `before linking ${i}`);
      await b1.client.sendText(a1.client.number, 'answer');
      await settle([a1.client, b1.client]);
      const group = await a1.client.createGroup('history group', [bob]);
      await a1.client.sendText(group.id, 'group message');
      await settle([a1.client, b1.client]);
      const a2 = await companion(t, a1, 'laptop');
      devices.push(a2.device);
      const history = collect(a2.device.client, 'historySynced');
      await settle(devices.map((d) => d.client));
      await eventually(() => history.items.length === 1, 5_000, 'history imported');
      assert.ok((history.items[0]?.messages ?? 0) >= 5);
      const strip = (m: MessageRecord) => ({ id: m.id, direction: m.direction, body: m.body, timestamp: m.timestamp, kind: m.kind });
      assert.deepEqual((await a2.device.client.messages(bob)).map(strip), (await a1.client.messages(bob)).map(strip));
      await eventually(async () => (await a2.device.client.group(group.id))?.name === 'history group', 5_000, 'group state fetched after import');
      assert.deepEqual(
        (await a2.device.client.messages(group.id)).filter((m) => m.kind === 'text').map(strip),
        (await a1.client.messages(group.id)).filter((m) => m.kind === 'text').map(strip),
      );
      // The companion then sends in the group and 1:1 like any device of the account.
      await a2.device.client.sendText(bob, 'from the new laptop');
      await settle(devices.map((d) => d.client));
      assert.deepEqual((await bodies(b1.client, a1.client.number)).at(-1), 'incoming:from the new laptop');
      assert.deepEqual((await bodies(a1.client, bob)).at(-1), 'outgoing:from the new laptop');
    } finally {
      for (const d of devices) await d.client.close();
      await t.close();
    }
  });
});
