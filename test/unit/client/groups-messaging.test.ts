// Group chats end to end against the real server: create, sender keys, one request per message, system
// messages, offline delivery exactly once, receipts, reactions, edits, deletes, typing and timers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '../../../src/client/client.ts';
import { groupReceiptCounts } from '../../../src/client/groups/receipts.ts';
import type { GroupId } from '../../../src/client/ids.ts';
import { collect, eventually, nextEvent } from './support.ts';
import { groupWorld, settle, type Member } from './groups-support.ts';

describe('groups: messaging (real server)', () => {
  let world: Awaited<ReturnType<typeof groupWorld>>;
  let alice: Member;
  let bob: Member;
  let carol: Member;
  let groupId: GroupId;
  const clients = (): Client[] => world.members.map((m) => m.client);

  before(async () => {
    world = await groupWorld(3);
    [alice, bob, carol] = world.members as [Member, Member, Member];
    const bobSees = nextEvent(bob.client, 'groupUpdate', (e) => e.message.groupUpdate?.created === true);
    const view = await alice.client.createGroup('Family', [bob.number, carol.number], { description: 'us three' });
    groupId = view.id;
    await bobSees;
    await settle(clients());
  });
  after(async () => world.close());

  it('creates the group on every member with its decrypted name and a system message', async () => {
    for (const m of world.members) {
      const g = await m.client.group(groupId);
      assert.ok(g, `${m.number} knows the group`);
      assert.equal(g.name, 'Family', 'the master key arrived with the sender key, so the name decrypts');
      assert.equal(g.description, 'us three');
      assert.equal(g.revision, 0);
      assert.equal(g.active, true);
      assert.deepEqual(g.members.map((x) => x.accountId).sort(), clients().map((c) => c.accountId).sort());
      assert.deepEqual(g.members.filter((x) => x.admin).map((x) => x.accountId), [alice.client.accountId]);
      const updates = (await m.client.messages(groupId)).filter((x) => x.kind === 'group-update');
      assert.equal(updates.length, 1, 'one system message, even though the update may arrive twice');
      assert.equal(updates[0]?.groupUpdate?.created, true);
    }
  });

  it('delivers messages of each member to every other member, filed under the group', async () => {
    const bobGot = nextEvent(bob.client, 'message', (e) => e.message.body === 'hello group');
    const carolGot = nextEvent(carol.client, 'message', (e) => e.message.body === 'hello group');
    const sent = await alice.client.sendText(groupId, 'hello group');
    assert.equal(sent.status, 'sent');
    assert.equal(sent.conversationId, groupId);
    for (const ev of [await bobGot, await carolGot]) {
      assert.equal(ev.message.conversationId, groupId);
      assert.equal(ev.from.accountId, alice.client.accountId);
      assert.equal(ev.message.timestamp, sent.timestamp);
    }
    const aliceGot = nextEvent(alice.client, 'message', (e) => e.message.body === 'hi from bob');
    const carolGot2 = nextEvent(carol.client, 'message', (e) => e.message.body === 'hi from bob');
    await bob.client.sendText(groupId, 'hi from bob');
    assert.equal((await aliceGot).message.conversationId, groupId);
    assert.equal((await carolGot2).message.conversationId, groupId);
  });

  it('sends one sender-key envelope per message to each member once the key is shared', async () => {
    await settle(clients());
    const before = carol.envelopes.length;
    const got = collect(carol.client, 'message');
    for (let i = 0; i < 3; i++) await alice.client.sendText(groupId, `steady ${i}`);
    await eventually(() => got.items.length === 3, 5_000, 'three messages');
    got.stop();
    const fresh = carol.envelopes.slice(before).filter((e) => e.sourceAccountId === alice.client.accountId);
    assert.deepEqual(fresh.map((e) => e.type), [7, 7, 7], 'no sender key again, just one SenderKey message each');
    assert.ok(fresh.every((e) => e.groupId === groupId));
  });

  it('counts delivery and read receipts per member ("read by 2 of 2")', async () => {
    const sent = await alice.client.sendText(groupId, 'read me');
    await eventually(async () => (await alice.client.message(sent.id))?.status === 'delivered', 5_000, 'delivered by everybody');
    const delivered = await alice.client.message(sent.id);
    assert.equal(delivered?.receipts.length, 2);
    const aliceGroup = await alice.store.transaction((tx) => tx.groups.get(groupId));
    assert.ok(aliceGroup && delivered);
    assert.deepEqual(groupReceiptCounts(delivered, aliceGroup, alice.client.accountId), { total: 2, delivered: 2, read: 0, viewed: 0 });
    await bob.client.markRead(groupId);
    await eventually(async () => (await alice.client.message(sent.id))?.receipts.some((r) => r.status === 'read') === true, 5_000, "bob's read receipt");
    const half = await alice.client.message(sent.id);
    assert.equal(half?.status, 'delivered', 'read only once every member read it');
    assert.equal(groupReceiptCounts(half, aliceGroup, alice.client.accountId).read, 1);
    await carol.client.markRead(groupId);
    await eventually(async () => (await alice.client.message(sent.id))?.status === 'read', 5_000, 'read by everybody');
    const all = await alice.client.message(sent.id);
    assert.equal(groupReceiptCounts(all as NonNullable<typeof all>, aliceGroup, alice.client.accountId).read, 2);
  });

  it('carries reactions, edits, deletes, typing and timers in the group', async () => {
    const original = await alice.client.sendText(groupId, 'typo');
    await settle(clients());
    const bobCopy = await bob.client.message(original.id);
    assert.equal(bobCopy?.body, 'typo');

    const typing = nextEvent(bob.client, 'typing', (e) => e.groupId === groupId);
    await carol.client.sendTyping(groupId, true);
    assert.equal((await typing).from.accountId, carol.client.accountId);

    const reaction = nextEvent(alice.client, 'reaction', (e) => e.groupId === groupId);
    await bob.client.react(original.id, '👍');
    assert.equal((await reaction).emoji, '👍');
    await settle(clients());
    assert.deepEqual((await carol.client.message(original.id))?.reactions.map((r) => r.emoji), ['👍']);

    const edited = nextEvent(carol.client, 'edit', (e) => e.groupId === groupId);
    await alice.client.edit(original.id, 'fixed');
    await edited;
    assert.equal((await carol.client.message(original.id))?.body, 'fixed');
    await eventually(async () => (await bob.client.message(original.id))?.body === 'fixed', 5_000, "bob's copy edited");

    const deleted = nextEvent(bob.client, 'delete', (e) => e.groupId === groupId);
    await alice.client.deleteForEveryone(original.id);
    await deleted;
    assert.equal((await bob.client.message(original.id))?.deleted, true);

    const timer = nextEvent(carol.client, 'timer', (e) => e.groupId === groupId);
    await bob.client.setExpireTimer(groupId, 3600);
    assert.equal((await timer).expireTimer, 3600);
    assert.equal((await carol.client.group(groupId))?.expireTimer, 3600);
    await eventually(async () => (await alice.client.group(groupId))?.expireTimer === 3600, 5_000, "alice's copy of the timer");
    const next = nextEvent(carol.client, 'message', (e) => e.message.body === 'now disappearing');
    const sent = await alice.client.sendText(groupId, 'now disappearing');
    assert.equal(sent.expireTimer, 3600, "the sender took the group's timer");
    assert.equal((await next).message.expireTimer, 3600);
  });

  it('delivers what was sent while a member was offline once it reconnects, exactly once', async () => {
    await settle(clients());
    await carol.client.close();
    for (let i = 0; i < 3; i++) await alice.client.sendText(groupId, `while away ${i}`);
    await bob.client.sendText(groupId, 'bob while away');
    const carolClient = await carol.reopen();
    await settle(clients());
    const away = (await carolClient.messages(groupId)).filter((m) => m.body.includes('away'));
    assert.deepEqual(away.map((m) => m.body), ['while away 0', 'while away 1', 'while away 2', 'bob while away']);
    // Redelivery of the same envelopes changes nothing (their guids were recorded).
    await carolClient.close();
    const again = await carol.reopen();
    await settle(clients());
    assert.equal((await again.messages(groupId)).filter((m) => m.body.includes('away')).length, 4);
  });
});
