// Calls end to end between Node SDK peers (@roamhq/wrtc) through the real server (`parley serve`): audio
// both ways (recordings non-silent, ffprobe says opus), hang-up, relay forced through a coturn started by the
// test, a local track switched, turned off and on (and added by a side that answered without one) with no
// new offer, ringing on two devices (one answers, the other stops), decline, busy, ring timeout (a missed call in
// the chat), a forged hang-up from another account refused. WebRTC gathers candidates on every interface, so
// this file re-runs itself inside a network namespace that has only loopback (`unshare -n`); where unshare is
// not allowed it skips, except under CI=true, where that is a failure.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Call } from '../../src/client/calls/call.ts';
import type { CallRejectedEvent } from '../../src/client/calls/manager.ts';
import { ClientError } from '../../src/client/errors.ts';
import { PcmPlayer, TrackRecorder, decodeToPcm } from '../../src/node/calls/index.ts';
import { mintTurnCredentials } from '../../src/server/turn.ts';
import { tempDir } from '../support/cli.ts';
import {
  NETNS_ENV,
  audioSenderTrack,
  closeAll,
  companion,
  inboundAudioBytes,
  nextCall,
  primary,
  probeAudio,
  describeInNetns,
  selectedLocalCandidateType,
  sleep,
  startCoturn,
  startServer,
  toneFile,
  type CallDevice,
  type CliServer,
} from './calls-support.ts';

const FILE = fileURLToPath(import.meta.url);

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('calls', FILE, 540_000);
} else {
  describe('calls between Node SDK peers (in a loopback-only namespace)', () => {
    let server: CliServer;
    const tmp = tempDir('parley-calls-');
    let alice: CallDevice;
    let bob: CallDevice;
    let carol: CallDevice;
    let toneA: string;
    let toneB: string;

    before(async () => {
      server = await startServer(`${tmp.dir}/server`);
      toneA = toneFile(tmp.dir, 'a.opus', 440, 2);
      toneB = toneFile(tmp.dir, 'b.opus', 660, 2);
      // Short timeouts: a missed call in seconds, not 45.
      alice = await primary(server, 'alice', { ringTimeoutMs: 4_000 });
      bob = await primary(server, 'bob', { ringTimeoutMs: 4_000 });
      carol = await primary(server, 'carol', { ringTimeoutMs: 4_000 });
      // Sessions and contacts exist before the first call (as in a chat that is going on).
      await alice.client.sendText(bob.number, 'hi');
      await carol.client.sendText(bob.number, 'hi');
      for (const d of [alice, bob, carol]) await d.client.whenIdle();
    });

    after(async () => {
      await closeAll([alice, bob, carol], server, tmp);
    });

    /** Plays `tone` into the call on `d`'s side and records what arrives; returns a stopper. */
    async function media(call: Call, tone: string, out: string): Promise<{ player: PcmPlayer; stop: () => Promise<Awaited<ReturnType<TrackRecorder['stop']>> | undefined> }> {
      const player = new PcmPlayer(await decodeToPcm(tone), { loop: true });
      let recorder: TrackRecorder | undefined;
      call.on('track', ({ track }) => {
        if (track.kind === 'audio' && !recorder) recorder = new TrackRecorder(track, out);
      });
      return {
        player,
        stop: async () => {
          player.stop();
          return recorder?.stop();
        },
      };
    }

    async function audioCall(caller: CallDevice, callee: CallDevice, extra: { relayOnly?: boolean } = {}): Promise<{ a: Call; b: Call }> {
      const mark = callee.events.length;
      const pa = new PcmPlayer(await decodeToPcm(toneA), { loop: true });
      const a = await caller.client.placeCall(callee.number, { tracks: [pa.track], relayOnly: extra.relayOnly });
      const recA: { r?: TrackRecorder } = {};
      a.on('track', ({ track }) => (recA.r ??= new TrackRecorder(track, `${tmp.dir}/${caller.name}-${a.id}.opus`)));
      const b = await nextCall(callee, 'incoming', 20_000, mark);
      assert.equal(b.id, a.id);
      const mb = await media(b, toneB, `${tmp.dir}/${callee.name}-${b.id}.opus`);
      await b.answer({ tracks: [mb.player.track], relayOnly: extra.relayOnly });
      await Promise.all([a.whenConnected(30_000), b.whenConnected(30_000)]);
      pa.start();
      mb.player.start();
      await sleep(3_000);
      const bytesA = await inboundAudioBytes(a.peerConnection as RTCPeerConnection);
      const bytesB = await inboundAudioBytes(b.peerConnection as RTCPeerConnection);
      assert.ok(bytesA > 1000 && bytesB > 1000, `inbound audio bytes: caller ${bytesA}, callee ${bytesB}`);
      const types = [await selectedLocalCandidateType(a.peerConnection as RTCPeerConnection), await selectedLocalCandidateType(b.peerConnection as RTCPeerConnection)];
      (a as { testCandidateTypes?: unknown }).testCandidateTypes = types;
      await a.hangup();
      const endB = await b.whenEnded();
      assert.deepEqual([endB.reason, endB.by, endB.outcome], ['normal', 'remote', 'answered']);
      const endA = await a.whenEnded();
      assert.deepEqual([endA.reason, endA.by, endA.outcome], ['normal', 'local', 'answered']);
      pa.stop();
      const recB = await mb.stop();
      const ra = await recA.r?.stop();
      for (const [who, rec] of [['caller', ra], ['callee', recB]] as const) {
        assert.ok(rec?.path, `${who} recorded nothing`);
        assert.ok(rec.frames > 100, `${who} received ${rec.frames} frames`);
        assert.ok(rec.rms > 500, `${who}'s recording is silent (rms ${rec.rms.toFixed(0)})`);
        const probe = probeAudio(rec.path);
        assert.equal(probe.codec, 'opus', `${who}: ${JSON.stringify(probe)}`);
        assert.ok(probe.seconds > 1, `${who}: ${probe.seconds} s`);
      }
      return { a, b };
    }

    it('connects two SDK peers through the server: audio both ways, hang-up ends it on the other side, both chats record it', async () => {
      const { a } = await audioCall(alice, bob);
      await Promise.all([alice.client.whenIdle(), bob.client.whenIdle()]);
      for (const [d, peer, direction] of [[alice, bob, 'outgoing'], [bob, alice, 'incoming']] as const) {
        const records = (await d.client.messages(peer.number)).filter((m) => m.kind === 'call');
        const r = records.find((m) => m.call?.callId === a.id);
        assert.ok(r, `${d.name} has no call record`);
        assert.equal(r.direction, direction);
        assert.equal(r.call?.outcome, 'answered');
        assert.ok((r.call?.durationMs ?? 0) >= 2_000, `duration ${r.call?.durationMs}`);
      }
    });

    it('connects through a TURN relay (coturn, REST-API credentials) with relay forced', async () => {
      const secret = 'call-test-secret-0123456789';
      const port = 3478 + (process.pid % 500);
      const turn = await startCoturn(port, secret);
      try {
        const creds = mintTurnCredentials({ secret, urls: [`turn:127.0.0.1:${port}?transport=udp`], ttlSeconds: 600 }, 'call-test', Date.now());
        const iceServers = [{ urls: [...creds.urls], username: creds.username, credential: creds.credential }];
        const relayAlice = await primary(server, 'dave', { iceServers, useServerTurn: false, relayOnly: true });
        const relayBob = await primary(server, 'erin', { iceServers, useServerTurn: false, relayOnly: true });
        try {
          await relayAlice.client.sendText(relayBob.number, 'hi');
          await relayBob.client.whenIdle();
          const { a } = await audioCall(relayAlice, relayBob);
          assert.deepEqual((a as { testCandidateTypes?: unknown }).testCandidateTypes, ['relay', 'relay']);
        } finally {
          await relayAlice.client.close();
          await relayBob.client.close();
        }
      } finally {
        await turn.stop();
      }
    });

    it('switches, turns off and turns back on a local track without renegotiation (one side answered without any)', async () => {
      const player = async (file: string): Promise<PcmPlayer> => new PcmPlayer(await decodeToPcm(file), { loop: true });
      const [first, second, later] = [await player(toneA), await player(toneB), await player(toneA)];
      const players = [first, second, later];
      try {
        const mark = bob.events.length;
        const a = await alice.client.placeCall(bob.number, { tracks: [first.track] });
        const b = await nextCall(bob, 'incoming', 20_000, mark);
        await assert.rejects(b.replaceLocalTrack('audio', later.track), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'not before answering');
        await b.answer(); // receive only
        await Promise.all([a.whenConnected(30_000), b.whenConnected(30_000)]);
        first.start();
        const pa = a.peerConnection as RTCPeerConnection;
        const pb = b.peerConnection as RTCPeerConnection;
        const arrives = async (pc: RTCPeerConnection, ms = 1_500): Promise<boolean> => {
          const before = await inboundAudioBytes(pc);
          await sleep(ms);
          return (await inboundAudioBytes(pc)) - before > 500;
        };
        assert.ok(await arrives(pb), 'bob hears the first track');
        assert.equal(await arrives(pa), false, 'bob sends nothing yet');

        // Alice switches to a second track (the first goes silent), then turns it off and on again.
        second.start();
        await a.replaceLocalTrack('audio', second.track);
        first.stop();
        assert.equal(audioSenderTrack(pa), second.track.id);
        assert.ok(await arrives(pb), 'bob hears the second track');
        await a.replaceLocalTrack('audio', null);
        assert.equal(audioSenderTrack(pa), null);
        await sleep(500); // packets under way
        assert.equal(await arrives(pb), false, 'nothing while off');
        await a.replaceLocalTrack('audio', second.track);
        assert.ok(await arrives(pb), 'back on');

        // Bob, who answered without a track, starts sending one: his m-line was left able to send.
        later.start();
        await b.replaceLocalTrack('audio', later.track);
        assert.ok(await arrives(pa), 'alice hears the track bob added later');
        assert.equal(a.peerConnection, pa, 'the same connection throughout');
        await a.hangup();
        await b.whenEnded();
        await assert.rejects(a.replaceLocalTrack('audio', null), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'not after the end');
      } finally {
        for (const p of players) p.stop();
      }
    });

    it('rings on every device of the callee; answering on one stops the other (answered elsewhere)', async () => {
      const laptop = await companion(server, bob, 'bob laptop', { ringTimeoutMs: 4_000 });
      try {
        // Alice learns of Bob's new device (the next send repairs the device set).
        await alice.client.sendText(bob.number, 'new device?');
        await Promise.all([bob.client.whenIdle(), laptop.client.whenIdle()]);
        const markBob = bob.events.length;
        const markLaptop = laptop.events.length;
        const a = await alice.client.placeCall(bob.number);
        const [onPhone, onLaptop] = await Promise.all([nextCall(bob, 'incoming', 20_000, markBob), nextCall(laptop, 'incoming', 20_000, markLaptop)]);
        assert.equal(onPhone.id, a.id);
        assert.equal(onLaptop.id, a.id);
        await nextCall(alice, 'ringing');
        await onLaptop.answer();
        await Promise.all([a.whenConnected(30_000), onLaptop.whenConnected(30_000)]);
        const endPhone = await onPhone.whenEnded();
        assert.deepEqual([endPhone.reason, endPhone.outcome], ['answered-elsewhere', 'answered-elsewhere']);
        assert.equal(a.peerDeviceId, laptop.client.deviceId);
        await onLaptop.hangup();
        assert.equal((await a.whenEnded()).by, 'remote');
      } finally {
        await laptop.client.close();
      }
    });

    it('a declined call ends for the caller as declined, and both chats record it', async () => {
      const mark = bob.events.length;
      const a = await alice.client.placeCall(bob.number);
      const b = await nextCall(bob, 'incoming', 20_000, mark);
      await b.decline();
      const end = await a.whenEnded();
      assert.deepEqual([end.reason, end.by, end.outcome], ['declined', 'remote', 'declined']);
      assert.equal((await b.whenEnded()).outcome, 'declined');
    });

    it('a callee already in a call answers busy', async () => {
      const mark = bob.events.length;
      const a = await alice.client.placeCall(bob.number);
      const b = await nextCall(bob, 'incoming', 20_000, mark);
      await b.answer();
      await Promise.all([a.whenConnected(30_000), b.whenConnected(30_000)]);
      const c = await carol.client.placeCall(bob.number);
      const end = await c.whenEnded();
      assert.deepEqual([end.reason, end.outcome], ['busy', 'busy']);
      assert.equal(b.state, 'connected', 'the call in progress goes on');
      await b.hangup();
      await a.whenEnded();
    });

    it('nobody answers: the caller gives up after the ring timeout and the callee records a missed call', async () => {
      const mark = bob.events.length;
      const a = await alice.client.placeCall(bob.number);
      const b = await nextCall(bob, 'incoming', 20_000, mark);
      const endA = await a.whenEnded();
      assert.deepEqual([endA.reason, endA.by, endA.outcome], ['timeout', 'local', 'unanswered']);
      const endB = await b.whenEnded();
      assert.equal(endB.outcome, 'missed');
      await bob.client.whenIdle();
      await sleep(200);
      const missed = (await bob.client.messages(alice.number)).find((m) => m.kind === 'call' && m.call?.callId === a.id);
      assert.equal(missed?.call?.outcome, 'missed');
      assert.equal(missed?.direction, 'incoming');
    });

    it('refuses a hang-up forged by another account for a call it is not in', async () => {
      const mark = bob.events.length;
      const rejected: CallRejectedEvent[] = [];
      const off = bob.client.on('callRejected', (e) => rejected.push(e));
      const a = await alice.client.placeCall(bob.number);
      const b = await nextCall(bob, 'incoming', 20_000, mark);
      await b.answer();
      await Promise.all([a.whenConnected(30_000), b.whenConnected(30_000)]);
      // Carol knows the call id (say, leaked): her hang-up is authentic as hers, but she is not the peer.
      await carol.client.sendCallSignal(bob.number, { kind: 'hangup', reason: 'normal', deviceId: 1, callId: a.id, destinationDeviceId: 0, groupId: undefined, participants: [] });
      for (let i = 0; i < 100 && rejected.length === 0; i++) await sleep(50);
      off();
      assert.deepEqual(rejected.map((r) => [r.reason, r.callId, r.from.accountId]), [['wrong-peer', a.id, carol.client.accountId]]);
      assert.equal(b.state, 'connected');
      await a.hangup();
      await b.whenEnded();
      // The same call id offered again after it ended is a replay.
      const replays: CallRejectedEvent[] = [];
      const off2 = bob.client.on('callRejected', (e) => replays.push(e));
      await alice.client.sendCallSignal(bob.number, { kind: 'offer', sdp: 'v=0\r\n', media: 'audio', callId: a.id, destinationDeviceId: 0, groupId: undefined, participants: [] });
      for (let i = 0; i < 100 && replays.length === 0; i++) await sleep(50);
      off2();
      assert.deepEqual(replays.map((r) => r.reason), ['replayed']);
      assert.equal(bob.client.activeCalls.length, 0);
    });
  });
}
