// Group calls end to end between four Node SDK peers (@roamhq/wrtc) through the real server (`parley serve`):
// one starts a call in the group, every other member rings, two join at once and one joins late (after
// declining), so every pair of the four has its own connection (full mesh) and audio flows both ways on each
// (getStats, and a non-silent recording of one participant's track); one leaves and the other three carry on
// (bytes keep arriving on their pairs). Then the refusals: a member removed from the group cannot start or
// join a call and its join is refused (`not-member`), a hang-up naming another device (`wrong-device`) and a
// ring of a call that ended (`replayed`). Runs inside a loopback-only network namespace (`unshare -n`), as
// calls.test.ts does; where unshare is not allowed it skips, except under CI=true.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { GroupCall } from '../../src/client/calls/group-call.ts';
import type { CallRejectedEvent } from '../../src/client/calls/manager.ts';
import { ClientError } from '../../src/client/errors.ts';
import type { GroupId } from '../../src/client/ids.ts';
import { TrackRecorder } from '../../src/node/calls/index.ts';
import { tempDir } from '../support/cli.ts';
import {
  NETNS_ENV,
  Tones,
  bytesByPeer,
  closeAll,
  describeInNetns,
  groupOf,
  nextGroupCall,
  primary,
  probeAudio,
  sleep,
  startServer,
  until,
  type CallDevice,
  type CliServer,
} from './calls-support.ts';

const FILE = fileURLToPath(import.meta.url);

/** Resolves with the next `callRejected` event on `d` within `ms`. */
function nextRejected(d: CallDevice, ms = 15_000): Promise<CallRejectedEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${d.name}: no callRejected event in ${ms} ms`));
    }, ms);
    const off = d.client.on('callRejected', (e) => {
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('group calls', FILE, 400_000);
} else {
  describe('group calls between Node SDK peers (in a loopback-only namespace)', () => {
    let server: CliServer;
    const tmp = tempDir('parley-group-calls-');
    let alice: CallDevice;
    let bob: CallDevice;
    let carol: CallDevice;
    let dave: CallDevice;
    let erin: CallDevice;
    let groupId: GroupId;
    const tones = new Tones(tmp.dir);
    let callId = '';

    before(async () => {
      server = await startServer(`${tmp.dir}/server`);
      alice = await primary(server, 'alice');
      bob = await primary(server, 'bob');
      carol = await primary(server, 'carol');
      dave = await primary(server, 'dave');
      erin = await primary(server, 'erin');
      groupId = await groupOf(alice, [bob, carol, dave, erin], 'call us');
      // Erin is removed before the call (she still knows the group, inactive).
      await alice.client.removeMembers(groupId, [erin.number]);
      for (const d of [alice, bob, carol, dave, erin]) await d.client.whenIdle();
    });

    after(async () => {
      tones.stopAll();
      await closeAll([alice, bob, carol, dave, erin], server, tmp);
    });

    it('rings every member, connects every pair (one joining late), carries audio on every pair, and goes on when one leaves', async () => {
      const ringing = [bob, carol, dave].map((d) => nextGroupCall(d, 'incoming'));
      const a = await alice.client.startGroupCall(groupId, { tracks: [(await tones.play(440)).track] });
      callId = a.id;
      assert.deepEqual([a.state, a.direction, a.groupId], ['joined', 'outgoing', groupId]);
      const [b, c, d] = await Promise.all(ringing);
      for (const x of [b, c, d]) assert.deepEqual([x?.id, x?.state, x?.startedBy?.accountId], [a.id, 'ringing', alice.client.accountId]);

      // Bob records Alice's track.
      let recorder: TrackRecorder | undefined;
      b?.on('track', ({ participant, track }) => {
        if (participant.accountId === alice.client.accountId && track.kind === 'audio') recorder ??= new TrackRecorder(track, `${tmp.dir}/bob-hears-alice.opus`);
      });
      const [tb, tc, td] = [await tones.play(550), await tones.play(660), await tones.play(770)]; // decoded before the clock starts
      const started = Date.now();
      await Promise.all([b?.join({ tracks: [tb.track] }), c?.join({ tracks: [tc.track] })]);
      await d?.decline();
      assert.equal(d?.state, 'idle', 'a declined call stays joinable');
      await Promise.all([a.whenConnectedTo(2, 30_000), b?.whenConnectedTo(2, 30_000), c?.whenConnectedTo(2, 30_000)]);
      const threeMs = Date.now() - started;

      // Dave joins late, through the client (the call is known here: it rang).
      assert.equal(dave.client.groupCall(groupId)?.id, a.id);
      const lateStart = Date.now();
      const dd = await dave.client.joinGroupCall(groupId, { tracks: [td.track] });
      assert.equal(dd, d);
      const calls = [a, b, c, d] as GroupCall[];
      await Promise.all(calls.map((x) => x.whenConnectedTo(3, 30_000)));
      const lateMs = Date.now() - lateStart;
      for (const x of calls) assert.equal(x.participants.length, 3);

      // Audio on every pair, both ways: 12 directed links.
      await sleep(3_000);
      for (const x of calls) {
        const bytes = await bytesByPeer(x);
        assert.equal(bytes.size, 3);
        for (const [peer, n] of bytes) assert.ok(n > 1000, `inbound audio bytes from ${peer}: ${n}`);
      }
      const rec = await recorder?.stop();
      assert.ok(rec?.path, 'bob recorded nothing of alice');
      assert.ok(rec.frames > 100 && rec.rms > 100, `bob's recording of alice: frames ${rec.frames}, rms ${rec.rms}`);
      assert.equal(probeAudio(rec.path).codec, 'opus');

      // Carol leaves: everybody else sees it and carries on.
      const left = [a, b, d].map(
        (x) =>
          new Promise<string>((resolve) => {
            const off = x?.on('participantLeft', ({ participant, reason }) => {
              if (participant.accountId !== carol.client.accountId) return;
              off?.();
              resolve(reason);
            });
          }),
      );
      await c?.leave();
      assert.deepEqual([c?.state, c?.end?.reason, c?.end?.by], ['ended', 'normal', 'local']);
      assert.deepEqual(await Promise.all(left), ['normal', 'normal', 'normal']);
      const rest = [a, b, d] as GroupCall[];
      const before2 = await Promise.all(rest.map(bytesByPeer));
      await sleep(2_000);
      const after2 = await Promise.all(rest.map(bytesByPeer));
      rest.forEach((x, i) => {
        assert.equal(x.participants.length, 2);
        assert.ok(
          x.participants.every((p) => p.state === 'connected'),
          `${i}: ${x.participants.map((p) => p.state).join()}`,
        );
        for (const [peer, n] of after2[i] ?? []) assert.ok(n > (before2[i]?.get(peer) ?? 0) + 1000, `audio still arrives from ${peer}`);
      });

      // Everybody leaves; the chat of each records the call.
      for (const x of rest) await x.leave();
      for (const x of calls) assert.equal(x.state, 'ended');
      // Who left while others stayed still follows the call (to join it again) until it hears the last leave:
      // then it is over on every device (a call started now is a new one).
      await until('the call is over on every device', 10_000, () => [alice, bob, carol, dave].every((d) => d.client.groupCall(groupId) === undefined));
      process.stdout.write(`# group call: 3 fully connected ${threeMs} ms after two joined; the 4th connected to all ${lateMs} ms after joining late\n`);
    });

    it('refuses a removed member, a hang-up naming another device, and a ring of a call that ended', async () => {
      // Erin was removed: she cannot start a call, and her join is refused.
      await assert.rejects(erin.client.startGroupCall(groupId), (e: unknown) => ClientError.is(e, 'CLIENT_NOT_GROUP_MEMBER'));
      // Listening first: the ring may reach Alice before Bob's start resolves.
      const ringing = nextGroupCall(alice, 'incoming');
      const fresh = await bob.client.startGroupCall(groupId);
      await ringing;
      const refusedJoin = nextRejected(bob);
      await erin.client.sendCallSignal(bob.number, {
        kind: 'join',
        reply: false,
        media: 'audio',
        callId: fresh.id,
        destinationDeviceId: 0,
        groupId,
        participants: [{ accountId: erin.client.accountId, deviceId: 1 }],
      });
      const r1 = await refusedJoin;
      assert.deepEqual([r1.reason, r1.from.accountId, r1.kind], ['not-member', erin.client.accountId, 'join']);
      assert.equal(fresh.participants.length, 0);

      // Carol (a member) sends a hang-up naming device 7: not the device it came from.
      const forged = nextRejected(bob);
      await carol.client.sendCallSignal(bob.number, { kind: 'hangup', reason: 'normal', deviceId: 7, callId: fresh.id, destinationDeviceId: 0, groupId, participants: [] });
      assert.equal((await forged).reason, 'wrong-device');

      // A ring of the first call, which ended on Alice's device: a replay.
      const replay = nextRejected(alice);
      await carol.client.sendCallSignal(alice.number, { kind: 'ring', media: 'audio', callId, destinationDeviceId: 0, groupId, participants: [{ accountId: carol.client.accountId, deviceId: 1 }] });
      assert.equal((await replay).reason, 'replayed');
      await fresh.leave();
    });
  });
}
