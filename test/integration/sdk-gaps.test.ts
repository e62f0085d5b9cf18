// SDK gaps the browser app ran into (issue 7), against the real server on port 0 (in process, SQLite in a
// temporary folder) with in-memory client stores: a peer's timer change is recorded in both histories; a group
// announces when its keys and state arrive; the sender keeps its copy of a file it sends; the chats list comes
// from the store's indexes; markRead touches only what is unread, with receipts for those only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/client.ts';
import type { ConversationId } from '../../src/client/ids.ts';
import type { ClientStore, MessageRecord, StoreTx } from '../../src/client/store/types.ts';
import type { TestServer } from '../support/server-harness.ts';
import { nextEvent } from '../unit/client/support.ts';
import { bytesOf, mediaDevice, mediaOptions, settle, sourceOf, startMediaServer, type MediaDevice } from '../unit/client/media-support.ts';

/** Counts the store's reads of whole conversations (`messages.list` without a limit). */
function countFullLists(store: ClientStore): { store: ClientStore; fullLists: () => number } {
  let n = 0;
  const wrapTx = (tx: StoreTx): StoreTx =>
    new Proxy(tx, {
      get(target, prop, receiver) {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'messages') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        const messages = target.messages;
        return {
          ...messages,
          get: messages.get.bind(messages),
          put: messages.put.bind(messages),
          remove: messages.remove.bind(messages),
          expired: messages.expired.bind(messages),
          unread: messages.unread.bind(messages),
          summaries: messages.summaries.bind(messages),
          list: (c: ConversationId, o?: { limit?: number }) => {
            if (o?.limit === undefined) n++;
            return messages.list(c, o);
          },
        };
      },
    });
  return {
    store: { transaction: (fn) => store.transaction((tx) => fn(wrapTx(tx))), close: () => store.close() },
    fullLists: () => n,
  };
}

describe('SDK gaps of the browser app (real server)', () => {
  let t: TestServer;
  let alice: MediaDevice;
  let bob: MediaDevice;
  let carol: MediaDevice;
  let bobLists: () => number = () => 0;

  before(async () => {
    t = await startMediaServer();
    alice = await mediaDevice(t, 1);
    bob = await mediaDevice(t, 2, { autoDownloadBytes: 0 });
    // Bob's client sees his store through a counter of whole-history reads.
    await bob.client.close();
    const counted = countFullLists(bob.store);
    bobLists = counted.fullLists;
    bob.client = await Client.open({ ...mediaOptions(bob, { autoDownloadBytes: 0 }), store: counted.store });
    bob.client.connect();
    await bob.client.waitUntilConnected();
    carol = await mediaDevice(t, 3);
  });

  after(async () => {
    for (const d of [alice, bob, carol]) await d.client.close();
    await t.close();
  });

  it("records a peer's timer change in the receiver's history too, with the system message in the event", async () => {
    const timer = nextEvent(bob.client, 'timer', (e) => e.expireTimer === 604_800);
    const sent = await alice.client.setExpireTimer(bob.number, 604_800);
    const e = await timer;
    assert.ok(e.message, 'the event carries the system message');
    assert.equal(e.groupId, undefined);
    assert.equal(e.message.kind, 'timer');
    assert.equal(e.message.conversationId, alice.client.accountId);
    assert.equal(e.message.senderId, alice.client.accountId);
    assert.equal(e.message.direction, 'incoming');
    assert.equal(e.message.expireTimer, 604_800);
    assert.equal(e.message.id, sent.id, 'the same id on both sides');
    const bobsChat = await bob.client.messages(alice.number);
    assert.deepEqual(bobsChat.filter((m) => m.kind === 'timer').map((m) => [m.id, m.expireTimer]), [[sent.id, 604_800]]);
    const alicesChat = await alice.client.messages(bob.number);
    assert.deepEqual(alicesChat.filter((m) => m.kind === 'timer').map((m) => [m.direction, m.expireTimer]), [['outgoing', 604_800]]);

    // Turned off: a second entry; and bob's own change is recorded on alice's side.
    const off = nextEvent(bob.client, 'timer', (x) => x.expireTimer === 0);
    await alice.client.setExpireTimer(bob.number, 0);
    assert.equal((await off).message?.expireTimer, 0);
    const back = nextEvent(alice.client, 'timer', (x) => x.expireTimer === 3600);
    await bob.client.setExpireTimer(alice.number, 3600);
    const b = await back;
    assert.equal(b.message?.conversationId, bob.client.accountId);
    assert.equal(b.message?.direction, 'incoming');
    await bob.client.setExpireTimer(alice.number, 0);
    await settle([alice.client, bob.client]);
    assert.deepEqual(
      (await bob.client.messages(alice.number)).filter((m) => m.kind === 'timer').map((m) => [m.direction, m.expireTimer]),
      [
        ['incoming', 604_800],
        ['incoming', 0],
        ['outgoing', 3600],
        ['outgoing', 0],
      ],
    );
  });

  it('emits groupState when a group one was added to gets its keys and state (then it has a name)', async () => {
    const states: Array<{ cause: string; name: string | undefined; hasMasterKey: boolean }> = [];
    const stop = carol.client.on('groupState', (e) => states.push({ cause: e.cause, name: e.group?.name, hasMasterKey: e.hasMasterKey }));
    const ready = nextEvent(carol.client, 'groupState', (e) => e.hasMasterKey && e.group?.name === 'Book club');
    const g = await alice.client.createGroup('Book club', [carol.number]);
    const e = await ready;
    stop();
    assert.equal(e.groupId, g.id);
    assert.ok(e.group?.members.some((m) => m.self), 'carol is a member');
    assert.ok(states.some((s) => s.cause === 'sender-key' && s.hasMasterKey), `the sender key brought the master key: ${JSON.stringify(states)}`);
    assert.equal((await carol.client.group(g.id))?.name, 'Book club');
    // It is usable: carol reads what alice sends and can answer.
    const got = nextEvent(carol.client, 'message', (x) => x.message.conversationId === g.id);
    await alice.client.sendText(g.id, 'chapter 1?');
    assert.equal((await got).message.body, 'chapter 1?');
    await carol.client.sendText(g.id, 'yes');
  });

  it("keeps the sender's copy of a sent file under the message: shown after a restart without downloading, removed with the message", async () => {
    const data = bytesOf(300_000, 7);
    const m = await alice.client.sendAttachment(bob.number, { source: sourceOf(data), contentType: 'image/png', fileName: 'cat.png' });
    const a = m.attachments[0];
    assert.ok(a?.path !== undefined, 'the attachment has a saved path');
    assert.equal(a.state, 'saved');
    assert.deepEqual(alice.media.bytes(a.path), data);
    // After a restart (a reload): still there, and "downloading" it needs no request.
    await alice.reopen();
    alice.tap.clear();
    const stored = (await alice.client.message(m.id))?.attachments[0];
    assert.equal(stored?.path, a.path);
    assert.deepEqual(await alice.client.downloadAttachment(m.id), stored);
    assert.equal(alice.tap.calls.length, 0, 'no blob request');
    // A failed send leaves no copy behind.
    const before = alice.media.savedLocations().length;
    await assert.rejects(alice.client.sendAttachment(bob.number, { source: { size: 10, open: () => sourceOf(bytesOf(5)).open() }, contentType: 'image/png' }));
    assert.equal(alice.media.savedLocations().length, before, 'nothing kept of a failed send');
    // Deleted for everyone: the copy goes.
    await alice.client.deleteForEveryone(m.id);
    assert.equal(alice.media.bytes(a.path), undefined);
    await settle([alice.client, bob.client]);
  });

  it('summarizes conversations (newest message, unread count) and marks read only what is unread, with receipts for those', async () => {
    await settle([alice.client, bob.client, carol.client]);
    // Bob reads what is there, then three more from alice and one from carol arrive.
    await bob.client.markRead(alice.number);
    await settle([alice.client, bob.client]);
    const sent: MessageRecord[] = [];
    for (const text of ['one', 'two', 'three']) sent.push(await alice.client.sendText(bob.number, text));
    const fromCarol = await carol.client.sendText(bob.number, 'hi bob');
    await settle([alice.client, bob.client, carol.client]);

    const summaries = await bob.client.conversationSummaries();
    const ofAlice = summaries.find((s) => s.conversationId === alice.client.accountId);
    const ofCarol = summaries.find((s) => s.conversationId === carol.client.accountId);
    assert.equal(ofAlice?.unread, 3);
    assert.equal(ofAlice?.last.id, sent[2]?.id);
    assert.equal(ofCarol?.unread, 1);
    assert.equal(ofCarol?.last.id, fromCarol.id);
    assert.equal(summaries[0]?.conversationId, carol.client.accountId, 'newest first');

    // markRead without ids: the three unread ones change, nothing else, and no history is read whole.
    const lists = bobLists();
    const receipt = nextEvent(alice.client, 'receipt', (e) => e.kind === 'read');
    const changed = await bob.client.markRead(alice.number);
    assert.deepEqual(changed.map((m) => m.id).sort(), sent.map((m) => m.id).sort());
    assert.equal(bobLists(), lists, 'markRead does not list the whole conversation');
    const r = await receipt;
    assert.deepEqual([...r.timestamps].sort(), sent.map((m) => m.timestamp).sort(), 'one receipt, for the unread messages only');
    assert.equal((await bob.client.conversationSummaries()).find((s) => s.conversationId === alice.client.accountId)?.unread, 0);
    assert.deepEqual(await bob.client.markRead(alice.number), [], 'nothing left to mark');
    // The timer entries alice's changes left in bob's chat were unread too, and are read now (they get no receipt).
    const timers = (await bob.client.messages(alice.number)).filter((m) => m.kind === 'timer' && m.direction === 'incoming');
    assert.ok(timers.length > 0 && timers.every((m) => m.status === 'read'));
  });
});
