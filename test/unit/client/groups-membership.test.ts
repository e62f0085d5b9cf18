// Group membership against the real server: removal rotates every sender key (the removed member provably
// cannot decrypt what follows), new members cannot decrypt what came before, admin-only changes refused with
// typed errors, concurrent changes converge, invite links, leaving, and the retry path for a lost sender key.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope } from '../../../src/protocol/gen/service_pb.ts';
import { groupDecrypt, InMemorySenderKeyStore, ProtocolAddress, ProtocolError, SenderKeyMessage, SenderKeyRecord } from '../../../src/protocol/index.ts';
import type { Client } from '../../../src/client/client.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { senderKeyStore } from '../../../src/client/groups/state.ts';
import type { GroupId } from '../../../src/client/ids.ts';
import { crypto, eventually, nextEvent } from './support.ts';
import { groupWorld, settle, type Member } from './groups-support.ts';

/** The SenderKey envelope `member` received from `from` in `groupId` carrying the message sent at `timestamp`. */
function captured(member: Member, from: Client, groupId: GroupId, timestamp: number): Envelope {
  const env = member.envelopes.find((e) => e.type === 7 && e.groupId === groupId && e.sourceAccountId === from.accountId && Number(e.timestamp) === timestamp);
  assert.ok(env, 'the envelope was captured');
  return env;
}

/** Members whose group state matches on every client (revision and member set). */
async function converged(members: readonly Member[], groupId: GroupId, live: readonly Member[]): Promise<void> {
  await eventually(
    async () => {
      const views = await Promise.all(live.map((m) => m.client.group(groupId)));
      const first = views[0];
      return views.every(
        (v) =>
          v !== undefined &&
          first !== undefined &&
          v.revision === first.revision &&
          JSON.stringify(v.members.map((x) => [x.accountId, x.admin]).sort()) === JSON.stringify(first.members.map((x) => [x.accountId, x.admin]).sort()),
      );
    },
    10_000,
    `the group state of ${members.length} clients converged`,
  );
}

describe('groups: membership (real server)', () => {
  let world: Awaited<ReturnType<typeof groupWorld>>;
  let m: Member[];
  const live = (): Client[] => m.map((x) => x.client);

  before(async () => {
    world = await groupWorld(6);
    m = world.members;
  });
  after(async () => world.close());

  it('rotates sender keys on removal: the removed member cannot decrypt what is sent afterwards', async () => {
    const [alice, bob, carol, dave] = m as [Member, Member, Member, Member];
    const g = await alice.client.createGroup('Removal', [bob.number, carol.number, dave.number]);
    await settle(live());
    const before = await alice.client.sendText(g.id, 'before removal');
    await settle(live());
    assert.equal((await dave.client.message(before.id))?.body, 'before removal');
    // What Dave holds of Alice's sender key before he is removed (his own stored state).
    const aliceGroupBefore = await alice.store.transaction((tx) => tx.groups.get(g.id));
    const oldDistribution = aliceGroupBefore?.distributionId as string;
    const daveKey = await dave.store.transaction((tx) => tx.senderKeys.get(alice.client.accountId, alice.client.deviceId, oldDistribution));
    assert.ok(daveKey, 'Dave holds Alice\'s key');

    const daveOut = nextEvent(dave.client, 'groupUpdate', (e) => e.message.groupUpdate?.removed.includes(dave.client.accountId) === true);
    await alice.client.removeMembers(g.id, [dave.number]);
    await daveOut;
    await settle(live());
    const daveView = await dave.client.group(g.id);
    assert.equal(daveView?.active, false);
    await assert.rejects(dave.client.sendText(g.id, 'still here?'), (err: unknown) => ClientError.is(err, ClientErrorCode.NotGroupMember));

    const after1 = await alice.client.sendText(g.id, 'after removal');
    const after2 = await bob.client.sendText(g.id, 'bob after removal');
    await settle(live());
    assert.equal((await carol.client.message(after1.id))?.body, 'after removal');
    assert.equal((await carol.client.message(after2.id))?.body, 'bob after removal');
    assert.equal(await dave.client.message(after1.id), undefined, 'the server did not send it to Dave');

    const env = captured(carol, alice.client, g.id, after1.timestamp);
    const rotatedTo = SenderKeyMessage.deserialize(env.content).distributionId;
    assert.notEqual(rotatedTo, oldDistribution, 'Alice replaced her sender key');
    // Dave's own stored state, and the key he held before removal, both fail on the new ciphertext.
    await assert.rejects(
      dave.store.transaction((tx) => groupDecrypt(crypto, senderKeyStore(tx, g.id), new ProtocolAddress(alice.client.accountId, alice.client.deviceId), env.content)),
      (err: unknown) => ProtocolError.is(err),
    );
    const kept = new InMemorySenderKeyStore();
    await kept.storeSenderKey(new ProtocolAddress(alice.client.accountId, alice.client.deviceId), oldDistribution, SenderKeyRecord.deserialize(daveKey.record));
    await assert.rejects(groupDecrypt(crypto, kept, new ProtocolAddress(alice.client.accountId, alice.client.deviceId), env.content), (err: unknown) => ProtocolError.is(err));
    // Bob rotated too (he had given Dave his key when he first sent? he had not sent before: either way Dave has nothing of Bob's new key).
    const bobEnv = captured(carol, bob.client, g.id, after2.timestamp);
    await assert.rejects(
      dave.store.transaction((tx) => groupDecrypt(crypto, senderKeyStore(tx, g.id), new ProtocolAddress(bob.client.accountId, bob.client.deviceId), bobEnv.content)),
      (err: unknown) => ProtocolError.is(err),
    );
    // The remaining members still read each other.
    assert.equal((await alice.client.message(after2.id))?.body, 'bob after removal');
  });

  it('a new member cannot decrypt what was sent before it joined', async () => {
    const [alice, bob, carol, , eve] = m as [Member, Member, Member, Member, Member];
    const g = await alice.client.createGroup('Newcomers', [bob.number, carol.number]);
    await settle(live());
    const early = await alice.client.sendText(g.id, 'before eve');
    await settle(live());
    const earlyEnv = captured(bob, alice.client, g.id, early.timestamp);

    const eveIn = nextEvent(eve.client, 'groupUpdate', (e) => e.groupId === g.id);
    await alice.client.addMembers(g.id, [eve.number]);
    await eveIn;
    const later = await alice.client.sendText(g.id, 'welcome eve');
    await settle(live());
    assert.equal((await eve.client.message(later.id))?.body, 'welcome eve');
    assert.equal(await eve.client.message(early.id), undefined);
    assert.equal((await eve.client.group(g.id))?.name, 'Newcomers', 'the master key came with the sender key');
    // Eve holds Alice's current key, yet the earlier ciphertext does not decrypt with it.
    await assert.rejects(
      eve.store.transaction((tx) => groupDecrypt(crypto, senderKeyStore(tx, g.id), new ProtocolAddress(alice.client.accountId, alice.client.deviceId), earlyEnv.content)),
      (err: unknown) => ProtocolError.is(err),
    );
  });

  it('refuses admin-only changes by a plain member with CLIENT_FORBIDDEN and changes nothing', async () => {
    const [alice, bob, carol, dave] = m as [Member, Member, Member, Member];
    const g = await alice.client.createGroup('Admins only', [bob.number, carol.number]);
    await settle(live());
    const before = await bob.client.group(g.id);
    const forbidden = (what: RegExp) => (err: unknown) => ClientError.is(err, ClientErrorCode.Forbidden) && what.test(err.message);
    await assert.rejects(bob.client.addMembers(g.id, [dave.number]), forbidden(/only admins can add members/));
    await assert.rejects(bob.client.removeMembers(g.id, [carol.number]), forbidden(/only admins/));
    await assert.rejects(bob.client.promote(g.id, [carol.number]), forbidden(/only admins/));
    await assert.rejects(bob.client.demote(g.id, [alice.number]), forbidden(/only admins/));
    await assert.rejects(bob.client.updateGroup(g.id, { name: 'Hijacked' }), forbidden(/only admins can edit/));
    await assert.rejects(bob.client.createInviteLink(g.id), forbidden(/only admins/));
    assert.deepEqual(await bob.client.group(g.id), before);
    assert.equal((await alice.client.group(g.id))?.name, 'Admins only');

    // Announcement group: only admins send.
    await alice.client.updateGroup(g.id, { settings: { adminsSend: true } });
    await settle(live());
    await assert.rejects(bob.client.sendText(g.id, 'may I?'), forbidden(/only admins can send/));
    const ok = await alice.client.sendText(g.id, 'announcement');
    await settle(live());
    assert.equal((await bob.client.message(ok.id))?.body, 'announcement');
  });

  it('renames, and converges when two admins change the members at the same time', async () => {
    const [alice, bob, carol, dave, eve, frank] = m as [Member, Member, Member, Member, Member, Member];
    const g = await alice.client.createGroup('Busy', [bob.number, carol.number]);
    await alice.client.promote(g.id, [bob.number]);
    await settle(live());
    const renamed = nextEvent(carol.client, 'groupUpdate', (e) => e.message.groupUpdate?.name === 'Busier');
    await bob.client.updateGroup(g.id, { name: 'Busier', description: 'renamed by bob' });
    const carolSaw = await renamed;
    assert.equal(carolSaw.message.groupUpdate?.descriptionChanged, true);
    assert.equal(carolSaw.message.groupUpdate?.avatarChanged, false);
    assert.equal((await carol.client.group(g.id))?.description, 'renamed by bob');
    await settle(live());
    const bobSystem = (await bob.client.messages(g.id)).find((x) => x.groupUpdate?.revision === carolSaw.message.groupUpdate?.revision);
    assert.equal(bobSystem?.groupUpdate?.name, 'Busier', "the actor's own system message names the change too");
    const avatar = Uint8Array.from({ length: 2048 }, (_, i) => i % 251);
    const pictured = nextEvent(carol.client, 'groupUpdate', (e) => e.message.groupUpdate?.avatarChanged === true);
    await alice.client.updateGroup(g.id, { avatar: { bytes: avatar, contentType: 'image/png' } });
    const withAvatar = await pictured;
    assert.deepEqual(withAvatar.group.avatar, avatar);
    assert.equal(withAvatar.group.avatarContentType, 'image/png');
    assert.equal(withAvatar.message.groupUpdate?.name, undefined, 'the name did not change');
    await assert.rejects(
      alice.client.updateGroup(g.id, { avatar: { bytes: new Uint8Array(48 * 1024 + 1), contentType: 'image/png' } }),
      (err: unknown) => ClientError.is(err, ClientErrorCode.InvalidArgument),
    );

    await Promise.all([
      alice.client.addMembers(g.id, [dave.number]),
      bob.client.addMembers(g.id, [eve.number, frank.number]),
      bob.client.updateGroup(g.id, { description: 'busy indeed' }),
    ]);
    const everyone = [alice, bob, carol, dave, eve, frank];
    await settle(live());
    await converged(everyone, g.id, everyone);
    const view = await frank.client.group(g.id);
    assert.equal(view?.members.length, 6);
    assert.equal(view?.name, 'Busier');
    assert.equal(view?.description, 'busy indeed');
    // Everybody reads everybody after the changes.
    const hello = await dave.client.sendText(g.id, 'hi all from dave');
    await settle(live());
    for (const x of [alice, bob, carol, eve, frank]) assert.equal((await x.client.message(hello.id))?.body, 'hi all from dave', x.number);
    const system = (await carol.client.messages(g.id)).filter((x) => x.kind === 'group-update').map((x) => x.groupUpdate?.revision);
    assert.deepEqual(system, [...new Set(system)], 'one system message per revision');
  });

  it('joins through an invite link; a revoked or mangled link is refused with CLIENT_BAD_INVITE_LINK', async () => {
    const [alice, bob, , , , frank] = m as [Member, Member, Member, Member, Member, Member];
    const g = await alice.client.createGroup('Open door', [bob.number]);
    const link = await alice.client.createInviteLink(g.id);
    assert.match(link, /^parley:\/\/join#[A-Za-z0-9_-]+$/);
    await assert.rejects(frank.client.joinGroup('parley://join#nope'), (err: unknown) => ClientError.is(err, ClientErrorCode.BadInviteLink));
    const joined = await frank.client.joinGroup(link);
    assert.equal(joined.name, 'Open door');
    assert.ok(joined.members.some((x) => x.self));
    await settle(live());
    const hi = await frank.client.sendText(g.id, 'frank here');
    await settle(live());
    assert.equal((await bob.client.message(hi.id))?.body, 'frank here');

    await alice.client.revokeInviteLink(g.id);
    await frank.client.leaveGroup(g.id);
    assert.equal((await frank.client.group(g.id))?.active, false);
    await assert.rejects(frank.client.joinGroup(link), (err: unknown) => ClientError.is(err, ClientErrorCode.BadInviteLink));
    await settle(live());
    const left = (await alice.client.group(g.id))?.members.map((x) => x.accountId);
    assert.ok(!left?.includes(frank.client.accountId));
  });

  it('recovers a lost sender key: placeholder, RetryRequest, resend over the 1:1 session, readable', async () => {
    const [alice, bob, carol] = m as [Member, Member, Member];
    const g = await alice.client.createGroup('Retry', [bob.number, carol.number]);
    await settle(live());
    await alice.client.sendText(g.id, 'first');
    await settle(live());
    // Bob loses Alice's sender key.
    await bob.store.transaction((tx) => tx.senderKeys.removeGroup(g.id, alice.client.accountId));
    const failed = nextEvent(bob.client, 'decryptionFailed', (e) => e.groupId === g.id);
    const resent = nextEvent(bob.client, 'message', (e) => e.message.body === 'second');
    const sent = await alice.client.sendText(g.id, 'second');
    const f = await failed;
    assert.equal(f.retryRequested, true);
    const got = await resent;
    assert.equal(got.message.conversationId, g.id, 'the resend is filed under the group');
    assert.equal(got.message.id, sent.id);
    assert.equal((await bob.client.message(sent.id))?.kind, 'text');
    // And the next group message decrypts with the key Alice sent again.
    await settle(live());
    const third = await alice.client.sendText(g.id, 'third');
    await settle(live());
    assert.equal((await bob.client.message(third.id))?.body, 'third');
  });
});
