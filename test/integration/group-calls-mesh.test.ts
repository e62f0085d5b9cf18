// The group call mesh's retries, on real @roamhq/wrtc connections but without a server: MeshTopology
// instances whose call messages are handed to each other in process (so that a test can drop or replay
// them). A pair whose first offer is lost connects on the offerer's second attempt, audio flowing, and the
// replay checks still hold afterwards (the lost offer, the applied offer and the applied answer delivered again
// are refused as `replayed`); a pair whose answering side's connection is closed under it waits for the
// offerer, whose side fails and offers again; a pair whose offers never arrive ends `failed` on both sides after the bounded
// attempts and makes no more. Inside a loopback-only network namespace, as group-calls.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { GroupCallParticipantState } from '../../src/client/calls/group-call.ts';
import type { CallRejectReason } from '../../src/client/calls/manager.ts';
import { MeshTopology } from '../../src/client/calls/mesh.ts';
import { offersTo, type MediaSignal } from '../../src/client/calls/topology.ts';
import type { CallParticipant, CallSignal } from '../../src/client/calls/wire.ts';
import type { AccountId, GroupId } from '../../src/client/ids.ts';
import { NodeRTCPeerConnection, PcmPlayer } from '../../src/node/calls/index.ts';
import { NETNS_ENV, describeInNetns, inboundAudioBytes, sleep, until } from './calls-support.ts';

const FILE = fileURLToPath(import.meta.url);
const GROUP = 'ab'.repeat(16) as GroupId;
const CALL_ID = '00112233445566778899aabbccddeeff';
const LOW: CallParticipant = { accountId: '00000001-1111-4111-8111-111111111111' as AccountId, deviceId: 1 };
const HIGH: CallParticipant = { accountId: '00000002-1111-4111-8111-111111111111' as AccountId, deviceId: 1 };
const CONNECT_TIMEOUT_MS = 1_500;
const ATTEMPTS = 3;

/** A second of a 440 Hz tone played in a loop (PcmPlayer: it also spares the process wrtc's native teardown). */
function toneTrack(): PcmPlayer {
  const pcm = new Int16Array(48_000);
  for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 48_000));
  const player = new PcmPlayer(pcm, { loop: true });
  player.start();
  return player;
}

interface Sent {
  readonly from: CallParticipant;
  readonly to: CallParticipant;
  readonly timestamp: number;
  readonly signal: MediaSignal;
}

/** Meshes of one call handing their messages to each other; `drop` decides which never arrive. */
class Net {
  readonly meshes = new Map<string, Node>();
  readonly sent: Sent[] = [];
  drop: (m: Sent) => boolean = () => false;
  #clock = Date.now();

  add(self: CallParticipant, track: MediaStreamTrack | undefined): Node {
    const node = new Node(this, self, track);
    this.meshes.set(self.accountId, node);
    return node;
  }

  send(from: CallParticipant, to: AccountId, signal: CallSignal): number {
    const timestamp = ++this.#clock;
    const target = this.meshes.get(to);
    const m: Sent = { from, to: { accountId: to, deviceId: signal.destinationDeviceId }, timestamp, signal: signal as MediaSignal };
    this.sent.push(m);
    if (target && !this.drop(m)) setTimeout(() => target.mesh.signal(from, timestamp, m.signal), 1);
    return timestamp;
  }

  /** Delivers a message again, as it was (a replay). */
  replay(m: Sent): void {
    this.meshes.get(m.to.accountId)?.mesh.signal(m.from, m.timestamp, m.signal);
  }

  close(): void {
    for (const n of this.meshes.values()) n.mesh.close();
  }
}

/** One device: its mesh, and what the mesh reported. */
class Node {
  readonly mesh: MeshTopology;
  readonly states: GroupCallParticipantState[] = [];
  readonly rejected: Array<{ kind: string; reason: CallRejectReason }> = [];
  readonly errors: unknown[] = [];
  pc: RTCPeerConnection | undefined;
  connections = 0;

  constructor(net: Net, self: CallParticipant, track: MediaStreamTrack | undefined) {
    this.mesh = new MeshTopology({
      callId: CALL_ID,
      groupId: GROUP,
      media: 'audio',
      self,
      local: { tracks: track ? [track] : [] },
      createConnection: async () => {
        this.connections++;
        return new NodeRTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
      },
      send: async (to, signal) => net.send(self, to, signal),
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      connectAttempts: ATTEMPTS,
      host: {
        connection: (_peer, pc) => {
          this.pc = pc;
        },
        state: (_peer, state) => {
          if (this.states.at(-1) !== state) this.states.push(state); // as GroupCallParticipant.setState
        },
        track: () => undefined,
        rejected: (_peer, kind, reason) => {
          this.rejected.push({ kind, reason });
        },
      },
      onError: (e) => this.errors.push(e),
    });
  }

  get state(): GroupCallParticipantState | undefined {
    return this.states.at(-1);
  }
}

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('group call mesh: retries', FILE, 200_000);
} else {
  describe('group call mesh: retries (in a loopback-only namespace)', () => {
    it('connects on the second attempt when the first offer is lost, and still refuses replays', async () => {
      assert.ok(offersTo(LOW, HIGH));
      const net = new Net();
      const tone = toneTrack();
      const low = net.add(LOW, tone.track);
      const high = net.add(HIGH, undefined);
      let offers = 0;
      net.drop = (m) => m.signal.kind === 'offer' && ++offers === 1;
      try {
        high.mesh.connect(LOW); // as on the answering side's join: it waits for the offer
        low.mesh.connect(HIGH);
        await until('both sides connected', 20_000, () => low.state === 'connected' && high.state === 'connected');
        assert.deepEqual(low.states, ['connecting', 'connected']);
        assert.equal(offers, 2);
        assert.equal(low.connections, 2, 'a fresh connection for the second attempt');
        assert.equal(high.connections, 1, 'the answerer made one, for the offer that arrived');
        const pc = high.pc;
        assert.ok(pc);
        const before = await inboundAudioBytes(pc);
        await sleep(1_500);
        assert.ok((await inboundAudioBytes(pc)) - before > 1_000, 'audio flows from the offerer');

        // Replays: the lost offer, the applied one, and the applied answer.
        const sentOffers = net.sent.filter((m) => m.signal.kind === 'offer');
        const answer = net.sent.find((m) => m.signal.kind === 'answer');
        assert.ok(answer && sentOffers.length === 2);
        for (const m of [...sentOffers, answer]) net.replay(m);
        assert.deepEqual(high.rejected, [
          { kind: 'offer', reason: 'replayed' },
          { kind: 'offer', reason: 'replayed' },
        ]);
        assert.deepEqual(low.rejected, [{ kind: 'answer', reason: 'replayed' }]);
        await sleep(500);
        assert.deepEqual([low.state, high.state, high.pc, high.connections], ['connected', 'connected', pc, 1], 'nothing changed');
      } finally {
        net.close();
        tone.stop();
      }
    });

    it('reconnects when the answering side’s connection is closed: it waits; the offering side fails, and offers again', async () => {
      const net = new Net();
      const tone = toneTrack();
      const low = net.add(LOW, tone.track);
      const high = net.add(HIGH, undefined);
      try {
        high.mesh.connect(LOW);
        low.mesh.connect(HIGH);
        await until('both sides connected', 20_000, () => low.state === 'connected' && high.state === 'connected');
        const broken = high.pc;
        assert.ok(broken);
        broken.close();
        await until('the answerer waits for a new offer', 5_000, () => high.state === 'connecting' && high.pc === undefined);
        // The offerer's ICE notices (no more answers to its checks), then it offers again on a fresh connection.
        await until('both sides connected again', 45_000, () => low.state === 'connected' && high.state === 'connected' && high.pc !== undefined);
        assert.equal(net.sent.filter((m) => m.signal.kind === 'offer').length, 2);
        assert.deepEqual([low.connections, high.connections], [2, 2]);
        const pc = high.pc as RTCPeerConnection;
        const before = await inboundAudioBytes(pc);
        await sleep(1_500);
        assert.ok((await inboundAudioBytes(pc)) - before > 1_000, 'audio flows again');
      } finally {
        net.close();
        tone.stop();
      }
    });

    it('ends failed on both sides after the bounded attempts when the offers never arrive', async () => {
      const net = new Net();
      const low = net.add(LOW, undefined);
      const high = net.add(HIGH, undefined);
      net.drop = (m) => m.signal.kind === 'offer';
      const started = Date.now();
      try {
        high.mesh.connect(LOW);
        low.mesh.connect(HIGH);
        await until('the offerer gives up', 20_000, () => low.state === 'failed');
        const offererMs = Date.now() - started;
        assert.equal(net.sent.filter((m) => m.signal.kind === 'offer').length, ATTEMPTS);
        assert.equal(low.connections, ATTEMPTS);
        assert.ok(offererMs >= ATTEMPTS * CONNECT_TIMEOUT_MS + 1_000 + 2_000 - 200, `gave up after ${offererMs} ms: after every attempt and pause`);
        await until('the answerer gives up', 30_000, () => high.state === 'failed');
        const answererMs = Date.now() - started;
        assert.deepEqual(high.states, ['connecting', 'failed']);
        assert.ok(answererMs >= 2 * CONNECT_TIMEOUT_MS + 8_000, `the answerer waited for a new offer after its timeout (failed after ${answererMs} ms)`);
        const offers = net.sent.length;
        await sleep(CONNECT_TIMEOUT_MS * 2);
        assert.equal(net.sent.length, offers, 'nothing is sent after failing');
        assert.deepEqual([low.connections, high.connections], [ATTEMPTS, 0]);
      } finally {
        net.close();
      }
    });
  });
}
