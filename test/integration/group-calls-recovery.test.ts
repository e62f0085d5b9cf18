// Group calls between Node SDK peers (@roamhq/wrtc) through the real server, when media changes or a pair
// breaks: a participant replaces its microphone track while in the call (the connected participant's sender
// switches, and one joining afterwards gets the new track, not the one the call was joined with), turns it off
// (a later participant's m-line is still there) and on again; a pair whose connection is closed under it
// reconnects with a fresh connection and a new offer (audio flows again; the other pairs keep their
// connections); and a device that can never connect (it gathers no ICE candidates) ends `failed` with every
// pair after the bounded attempts, not retried forever, while the others stay connected. Inside a
// loopback-only network namespace, as group-calls.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import wrtc from '@roamhq/wrtc';
import type { GroupCall, GroupCallParticipant } from '../../src/client/calls/group-call.ts';
import { offersTo } from '../../src/client/calls/topology.ts';
import type { CallParticipant } from '../../src/client/calls/wire.ts';
import { ClientError } from '../../src/client/errors.ts';
import type { GroupId } from '../../src/client/ids.ts';
import { NodeRTCPeerConnection } from '../../src/node/calls/index.ts';
import { tempDir } from '../support/cli.ts';
import {
  NETNS_ENV,
  Tones,
  audioSenderTrack,
  closeAll,
  describeInNetns,
  groupOf,
  inboundAudioBytes,
  primary,
  sleep,
  startServer,
  until,
  type CallDevice,
  type CliServer,
} from './calls-support.ts';

const FILE = fileURLToPath(import.meta.url);
/** Short enough for the retries to be seen within the test, long enough for loopback on a loaded machine. */
const CONNECT_TIMEOUT_MS = 6_000;
const ATTEMPTS = 3;

/** Connections made by the device that cannot connect (it counts them: one per attempt of each pair). */
let noIceConnections = 0;

/** An RTCPeerConnection that gathers no candidate at all (relay only, and no relay): it never connects. */
class NoIcePeerConnection extends NodeRTCPeerConnection {
  constructor(configuration?: RTCConfiguration) {
    super({ ...configuration, iceServers: [], iceTransportPolicy: 'relay' });
    noIceConnections++;
  }
}

const self = (d: CallDevice): CallParticipant => ({ accountId: d.client.accountId, deviceId: d.client.deviceId });

function participant(call: GroupCall, d: CallDevice): GroupCallParticipant {
  const p = call.participants.find((x) => x.accountId === d.client.accountId);
  assert.ok(p, `${d.name} is not a participant`);
  return p;
}

/** Inbound audio bytes `call` received from `from` (0 without a connection). */
async function bytesFrom(call: GroupCall, from: CallDevice): Promise<number> {
  const pc = participant(call, from).peerConnection;
  return pc ? inboundAudioBytes(pc) : 0;
}

/** Whether audio from `from` arrives on `call` now: more than `min` bytes within `ms`. */
async function audioArrives(call: GroupCall, from: CallDevice, ms = 2_000, min = 1_000): Promise<boolean> {
  const before = await bytesFrom(call, from);
  await sleep(ms);
  return (await bytesFrom(call, from)) - before > min;
}

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('group calls: replaced tracks and broken pairs', FILE, 400_000);
} else {
  describe('group calls: replaced tracks and broken pairs (in a loopback-only namespace)', () => {
    let server: CliServer;
    const tmp = tempDir('parley-group-calls-recovery-');
    let alice: CallDevice;
    let bob: CallDevice;
    let carol: CallDevice;
    let dave: CallDevice;
    let erin: CallDevice;
    let groupId: GroupId;
    const tones = new Tones(tmp.dir);
    const calls = new Map<CallDevice, GroupCall>();

    before(async () => {
      server = await startServer(`${tmp.dir}/server`);
      const options = { connectTimeoutMs: CONNECT_TIMEOUT_MS, connectAttempts: ATTEMPTS };
      alice = await primary(server, 'alice', options);
      bob = await primary(server, 'bob', options);
      carol = await primary(server, 'carol', options);
      dave = await primary(server, 'dave', options);
      erin = await primary(server, 'erin', { ...options, RTCPeerConnection: NoIcePeerConnection });
      groupId = await groupOf(alice, [bob, carol, dave, erin], 'calls that break');
    });

    after(async () => {
      tones.stopAll();
      await closeAll([alice, bob, carol, dave, erin], server, tmp);
    });

    /** `d` joins the group call (known to it: it rang, or it heard of it), sending `track`. */
    async function join(d: CallDevice, track: MediaStreamTrack): Promise<GroupCall> {
      await until(`${d.name} knows of the call`, 20_000, () => d.client.groupCall(groupId) !== undefined);
      const call = await d.client.joinGroupCall(groupId, { tracks: [track] });
      calls.set(d, call);
      return call;
    }

    it('sends a replaced track to the connected participant and to one joining later; off and on again', async () => {
      const first = await tones.play(440);
      const a = await alice.client.startGroupCall(groupId, { tracks: [first.track] });
      calls.set(alice, a);
      const b = await join(bob, (await tones.play(550)).track);
      await Promise.all([a.whenConnectedTo(1, 30_000), b.whenConnectedTo(1, 30_000)]);
      await assert.rejects(a.replaceLocalTrack('video', null), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'an audio call has no video');
      const video = new wrtc.nonstandard.RTCVideoSource().createTrack();
      await assert.rejects(a.replaceLocalTrack('audio', video), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'a video track is not audio');
      video.stop();

      // Alice switches microphones; the old one goes silent (a stopped source sends nothing).
      const second = await tones.play(880);
      await a.replaceLocalTrack('audio', second.track);
      first.stop();
      const toBob = participant(a, bob).peerConnection;
      assert.equal(audioSenderTrack(toBob), second.track.id, "alice's existing sender to bob was replaced");
      assert.ok(await audioArrives(b, alice), 'bob hears the new track');

      // Carol joins after the switch: alice's new connection to her sends the new track, and she hears it.
      const c = await join(carol, (await tones.play(660)).track);
      await Promise.all([a, b, c].map((x) => x.whenConnectedTo(2, 30_000)));
      assert.equal(audioSenderTrack(participant(a, carol).peerConnection), second.track.id, "alice's sender to carol has the new track");
      assert.ok(await audioArrives(c, alice), 'carol hears alice (the old track is silent: this is the new one)');
      assert.equal(participant(a, bob).peerConnection, toBob, 'the pair alice-bob kept its connection');

      // Off: nothing goes out; Dave joins meanwhile (his pair has the m-line, sending nothing); on again.
      await a.replaceLocalTrack('audio', null);
      assert.equal(audioSenderTrack(toBob), null);
      const d = await join(dave, (await tones.play(770)).track);
      await Promise.all([a, b, c, d].map((x) => x.whenConnectedTo(3, 30_000)));
      assert.equal(audioSenderTrack(participant(a, dave).peerConnection), null, "alice's sender to dave sends nothing");
      assert.equal(await audioArrives(d, alice, 1_500, 500), false, 'dave hears nothing from alice while she is muted');
      await a.replaceLocalTrack('audio', second.track);
      assert.equal(audioSenderTrack(participant(a, dave).peerConnection), second.track.id);
      assert.ok(await audioArrives(d, alice), 'dave hears alice once her track is back');
      assert.ok(await audioArrives(b, alice), 'bob hears alice once her track is back');
    });

    it('reconnects a pair whose connection was closed under it, with a new offer; the other pairs keep theirs', async () => {
      const [a, b, c, d] = [alice, bob, carol, dave].map((x) => calls.get(x) as GroupCall);
      assert.ok(a && b && c && d);
      // The pair bob-carol breaks on its offering side (the device with the lower address).
      const [offerer, answerer] = offersTo(self(bob), self(carol)) ? [bob, carol] : [carol, bob];
      const offererCall = calls.get(offerer) as GroupCall;
      const answererCall = calls.get(answerer) as GroupCall;
      const broken = participant(offererCall, answerer).peerConnection;
      assert.ok(broken);
      const others = [
        [a, bob],
        [a, carol],
        [a, dave],
        [b, dave],
        [c, dave],
      ] as const;
      const kept = others.map(([call, peer]) => participant(call, peer).peerConnection);
      const states: string[] = [];
      offererCall.on('participantState', ({ participant: p }) => {
        if (p.accountId === answerer.client.accountId) states.push(p.state);
      });
      const started = Date.now();
      broken.close();

      await until('the pair reconnects on both sides', 30_000, () => {
        const mine = participant(offererCall, answerer);
        const theirs = participant(answererCall, offerer);
        return mine.state === 'connected' && mine.peerConnection !== broken && theirs.state === 'connected' && theirs.peerConnection !== undefined;
      });
      const ms = Date.now() - started;
      assert.deepEqual(states.slice(0, 2), ['connecting', 'connected'], 'reported reconnecting, then connected');
      assert.ok(await audioArrives(offererCall, answerer), 'audio flows again one way');
      assert.ok(await audioArrives(answererCall, offerer), 'and the other');
      others.forEach(([call, peer], i) => assert.equal(participant(call, peer).peerConnection, kept[i], `pair ${i} kept its connection`));
      for (const x of [a, b, c, d]) assert.ok(x.participants.every((p) => p.state === 'connected'));
      process.stdout.write(`# group call: a pair closed under it reconnected in ${ms} ms\n`);
    });

    it('gives up a device that can never connect after the bounded attempts, and only then', async () => {
      const inCall = [alice, bob, carol, dave];
      const started = Date.now();
      const e = await join(erin, (await tones.play(990)).track);
      const failedAt = new Map<string, number>();
      for (const d of inCall) {
        (calls.get(d) as GroupCall).on('participantState', ({ participant: p }) => {
          if (p.accountId === erin.client.accountId && p.state === 'failed') failedAt.set(d.name, Date.now() - started);
        });
      }
      // Each attempt of a pair is one connection on erin's side: 3 per pair, 12 in all, then it stops.
      const worstMs = ATTEMPTS * CONNECT_TIMEOUT_MS + 1_000 + 2_000 + (CONNECT_TIMEOUT_MS + 8_000 + 5_000) + 15_000;
      await until('erin failed on every side', worstMs, () => e.participants.length === 4 && e.participants.every((p) => p.state === 'failed') && failedAt.size === 4);
      assert.ok(noIceConnections >= 4 * ATTEMPTS - 1, `erin made ${noIceConnections} connections: each pair was tried again`);
      assert.ok(noIceConnections <= 4 * ATTEMPTS, `erin made ${noIceConnections} connections: at most ${ATTEMPTS} per pair`);
      for (const [who, ms] of failedAt) assert.ok(ms > 2 * CONNECT_TIMEOUT_MS, `${who} gave erin up after ${ms} ms: not at the first failure`);
      const made = noIceConnections;
      await sleep(CONNECT_TIMEOUT_MS + 3_000);
      assert.equal(noIceConnections, made, 'no attempt after failing');
      for (const d of inCall) {
        const call = calls.get(d) as GroupCall;
        assert.equal(participant(call, erin).state, 'failed');
        assert.ok(call.participants.filter((p) => p.accountId !== erin.client.accountId).every((p) => p.state === 'connected'), `${d.name}'s other pairs stay connected`);
      }
      process.stdout.write(`# group call: a device that cannot connect was failed by ${[...failedAt.entries()].map(([w, ms]) => `${w} ${ms} ms`).join(', ')}\n`);
      for (const x of [...calls.values()]) await x.leave();
    });
  });
}
