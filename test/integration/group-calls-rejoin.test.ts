// Leaving a group call and joining it again, between three Node SDK peers (@roamhq/wrtc) through the real
// server (`parley serve`): Alice, Bob and Carol are in a call; Carol leaves, and the call goes on being known
// on her device (a new `idle` GroupCall with the same id, announced as `running`) while Alice and Bob keep
// talking; Carol joins it again, every pair to her is set up afresh, and audio flows on all six directed links.
// Then a replay: Carol's device sends her first join again, with its old sender timestamp (the device
// reopened with its clock set back): Alice and Bob refuse it (`replayed`) and Carol stays out. Once the last
// two leave, the call is over on every device. Runs inside a loopback-only network namespace (`unshare -n`),
// as the other call tests do; where unshare is not allowed it skips, except under CI=true.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/client.ts';
import type { GroupCall, GroupCallParticipant } from '../../src/client/calls/group-call.ts';
import type { CallRejectedEvent } from '../../src/client/calls/manager.ts';
import type { GroupId } from '../../src/client/ids.ts';
import { tempDir } from '../support/cli.ts';
import { NETNS_ENV, Tones, bytesByPeer, closeAll, describeInNetns, deviceOptions, groupOf, nextGroupCall, primary, sleep, startServer, until, type CallDevice, type CliServer } from './calls-support.ts';

const FILE = fileURLToPath(import.meta.url);

/** Collects the `callRejected` events of a client until `off()`. */
function rejections(client: Client): { readonly list: CallRejectedEvent[]; off: () => void } {
  const list: CallRejectedEvent[] = [];
  return { list, off: client.on('callRejected', (e) => list.push(e)) };
}

/** Resolves when `x` sees the participant of `accountId` leave. */
function leaves(x: GroupCall, accountId: string): Promise<string> {
  return new Promise((resolve) => {
    const off = x.on('participantLeft', ({ participant, reason }) => {
      if (participant.accountId !== accountId) return;
      off();
      resolve(reason);
    });
  });
}

const byAccount = (call: GroupCall, accountId: string): GroupCallParticipant | undefined => call.participants.find((p) => p.accountId === accountId);

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('group calls: leave and join again', FILE, 300_000);
} else {
  describe('leaving a group call and joining it again (Node SDK peers, loopback-only namespace)', () => {
    let server: CliServer;
    const tmp = tempDir('parley-group-rejoin-');
    let alice: CallDevice;
    let bob: CallDevice;
    let carol: CallDevice;
    let replayer: Client | undefined;
    let groupId: GroupId;
    const tones = new Tones(tmp.dir);

    before(async () => {
      server = await startServer(`${tmp.dir}/server`);
      alice = await primary(server, 'alice');
      bob = await primary(server, 'bob');
      carol = await primary(server, 'carol');
      groupId = await groupOf(alice, [bob, carol], 'rejoin');
    });

    after(async () => {
      tones.stopAll();
      await replayer?.close();
      await closeAll([alice, bob, carol], server, tmp);
    });

    it('Carol leaves, Alice and Bob carry on, Carol joins again with fresh pairs and audio on every link; her old join replayed is refused', async () => {
      const ringing = [bob, carol].map((d) => nextGroupCall(d, 'incoming'));
      const a = await alice.client.startGroupCall(groupId, { tracks: [(await tones.play(440)).track] });
      const [b, c] = (await Promise.all(ringing)) as [GroupCall, GroupCall];
      await Promise.all([b.join({ tracks: [(await tones.play(550)).track] }), c.join({ tracks: [(await tones.play(660)).track] })]);
      await Promise.all([a, b, c].map((x) => x.whenConnectedTo(2, 30_000)));
      const firstJoin = byAccount(a, carol.client.accountId)?.joinedAt ?? 0;
      const oldPcs = [a, b].map((x) => byAccount(x, carol.client.accountId)?.peerConnection);
      assert.ok(firstJoin > 0 && oldPcs.every((pc) => pc !== undefined));

      // Carol leaves: her call ends, and the same call is announced again on her device, idle and joinable.
      const running = nextGroupCall(carol, 'running');
      const left = [a, b].map((x) => leaves(x, carol.client.accountId));
      await c.leave();
      assert.deepEqual([c.state, c.end?.reason, c.end?.by], ['ended', 'normal', 'local']);
      const again = await running;
      assert.notEqual(again, c);
      assert.equal(carol.client.groupCall(groupId), again);
      assert.deepEqual([again.id, again.state], [a.id, 'idle']);
      assert.deepEqual(new Set(again.participants.map((p) => p.accountId)), new Set([alice.client.accountId, bob.client.accountId]));
      assert.deepEqual(await Promise.all(left), ['normal', 'normal']);

      // Alice and Bob keep talking.
      const before2 = await Promise.all([a, b].map(bytesByPeer));
      await sleep(2_000);
      const after2 = await Promise.all([a, b].map(bytesByPeer));
      [a, b].forEach((x, i) => {
        assert.deepEqual([x.state, x.participants.length, x.participants[0]?.state], ['joined', 1, 'connected']);
        for (const [peer, n] of after2[i] ?? []) assert.ok(n > (before2[i]?.get(peer) ?? 0) + 1000, `audio still arrives from ${peer}`);
      });

      // Carol joins again, through the client (it knows the call): new pairs to both, audio on all six links.
      const joinedAgain = [a, b].map((x) => new Promise<void>((resolve) => x.on('participantJoined', ({ participant }) => participant.accountId === carol.client.accountId && resolve())));
      const started = Date.now();
      const rejoined = await carol.client.joinGroupCall(groupId, { tracks: [(await tones.play(770)).track] });
      assert.equal(rejoined, again);
      await Promise.all(joinedAgain);
      await Promise.all([a, b, again].map((x) => x.whenConnectedTo(2, 30_000)));
      const rejoinMs = Date.now() - started;
      [a, b].forEach((x, i) => {
        const p = byAccount(x, carol.client.accountId);
        assert.ok(p && p.joinedAt > firstJoin, 'carol is in with her new join');
        assert.ok(p.peerConnection && p.peerConnection !== oldPcs[i], 'a fresh connection to carol');
      });
      const before3 = await Promise.all([a, b].map(bytesByPeer));
      await sleep(3_000);
      for (const [i, x] of [a, b, again].entries()) {
        const bytes = await bytesByPeer(x);
        assert.equal(bytes.size, 2);
        for (const [peer, n] of bytes) {
          const floor = peer === carol.client.accountId || i === 2 ? 0 : (before3[i]?.get(peer) ?? 0);
          assert.ok(n > floor + 1000, `${['alice', 'bob', 'carol'][i]}: inbound audio bytes from ${peer}: ${n} (before ${floor})`);
        }
      }

      // Carol leaves again (she is followed once more); then her first join comes again from her device, with its
      // old timestamp: a replay, refused by Alice and Bob, who stay connected to each other only.
      const leftAgain = [a, b].map((x) => leaves(x, carol.client.accountId));
      await rejoined.leave();
      await Promise.all(leftAgain);
      assert.equal(carol.client.groupCall(groupId)?.state, 'idle');
      await carol.client.close();
      const seen = [alice, bob].map((d) => rejections(d.client));
      // The sender timestamp of the first join.
      replayer = await Client.open({ ...deviceOptions(carol.store), now: () => firstJoin });
      replayer.connect();
      await replayer.waitUntilConnected({ timeoutMs: 15_000 });
      const join = { kind: 'join', reply: false, media: a.media, callId: a.id, destinationDeviceId: 0, groupId, participants: [{ accountId: carol.client.accountId, deviceId: 1 }] } as const;
      const stamps = [await replayer.sendCallSignal(alice.number, join), await replayer.sendCallSignal(bob.number, join)];
      assert.equal(stamps[0], firstJoin);
      await until('alice and bob refuse the replayed join', 15_000, () => seen.every((s) => s.list.some((r) => r.kind === 'join')));
      for (const s of seen) {
        s.off();
        assert.deepEqual(
          s.list.map((r) => [r.reason, r.kind, r.from.accountId, r.callId]),
          [['replayed', 'join', carol.client.accountId, a.id]],
        );
      }
      await sleep(1_000);
      for (const x of [a, b]) assert.deepEqual([x.participants.length, x.participants[0]?.state, byAccount(x, carol.client.accountId)], [1, 'connected', undefined]);

      // The last two leave: the call is over.
      await a.leave();
      assert.equal(alice.client.groupCall(groupId)?.state, 'idle', 'bob is still in it');
      await b.leave();
      assert.equal(bob.client.groupCall(groupId), undefined, 'nobody was left in the call when bob left');
      await until('the call is over on alice', 10_000, () => alice.client.groupCall(groupId) === undefined);
      process.stdout.write(`# group call: carol connected to both again ${rejoinMs} ms after joining again\n`);
    });
  });
}
