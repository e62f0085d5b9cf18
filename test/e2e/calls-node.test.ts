// A browser (headless Chromium, fake microphone) and a Node SDK peer (@roamhq/wrtc, a 660 Hz tone from a
// file, a recorder) call each other through the real server, both ways round: audio flows both ways, seen by
// getStats() in the page (bytes and energy of the received audio) and by the Node side (inbound bytes, a
// non-silent recording); hang-up on either side ends the call on the other. Runs in a loopback-only network
// namespace, as test/integration/calls.test.ts does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import type { Call } from '../../src/client/calls/call.ts';
import { PcmPlayer, TrackRecorder, decodeToPcm } from '../../src/node/calls/index.ts';
import { NETNS_ENV, inboundAudioBytes, nextCall, primary, describeInNetns, toneFile, type CallDevice } from '../integration/calls-support.ts';
import { callScreen, openDetails, startCallWorld, waitForCallState, waitForStats, type CallWorld } from './calls-support.ts';
import { NUMBERS, bubble, openChatWith, registerInBrowser, sendMessage, watchErrors } from './support.ts';

const FILE = fileURLToPath(import.meta.url);
const { alice: A } = NUMBERS;

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('browser <-> Node calls', FILE, 280_000);
} else {
  describe('a browser and a Node SDK peer call each other (in a loopback-only namespace)', () => {
    let world: CallWorld;
    let alice: Page;
    let bob: CallDevice;
    let tone: string;
    const errors: string[] = [];

    before(async () => {
      world = await startCallWorld('calls-node');
      tone = toneFile(world.tmp, 'bob.opus', 660, 2);
      bob = await primary(world.server, 'bob');
      alice = await registerInBrowser(await world.context(), A);
      errors.push(...watchErrors(alice));
      await openChatWith(alice, bob.number);
      await sendMessage(alice, 'Hello Node');
      await bob.client.sendText(A.number, 'Hello browser');
      await bubble(alice, 'Hello browser').waitFor();
    });

    after(async () => {
      await bob?.client.close();
      await world?.close();
    });

    /** Bob's side of a call: his tone goes out, what arrives is recorded. */
    async function nodeMedia(call: Call, name: string): Promise<{ player: PcmPlayer; recording: () => TrackRecorder | undefined }> {
      const player = new PcmPlayer(await decodeToPcm(tone), { loop: true });
      let recorder: TrackRecorder | undefined;
      call.on('track', ({ track }) => {
        if (track.kind === 'audio') recorder ??= new TrackRecorder(track, `${world.tmp}/${name}.opus`);
      });
      return { player, recording: () => recorder };
    }

    /** Audio both ways, checked on both sides; then `hangup` ends it and the other side follows. */
    async function checkAudio(call: Call, media: Awaited<ReturnType<typeof nodeMedia>>, hangup: 'browser' | 'node'): Promise<void> {
      await Promise.all([call.whenConnected(30_000), waitForCallState(alice, 'connected')]);
      media.player.start();
      await openDetails(alice);
      // The browser hears the tone: bytes, and energy (a silent stream has none).
      await waitForStats(alice, 'browser', { audioBytesIn: 5_000, audioEnergyIn: 0.001 });
      // Node hears the browser's fake microphone.
      const deadline = Date.now() + 15_000;
      let bytes = 0;
      while (Date.now() < deadline && (bytes = await inboundAudioBytes(call.peerConnection as RTCPeerConnection)) < 5_000) await new Promise((r) => setTimeout(r, 250));
      assert.ok(bytes >= 5_000, `Node received ${bytes} audio bytes`);
      await new Promise((r) => setTimeout(r, 1_500));
      if (hangup === 'browser') {
        await callScreen(alice).getByRole('button', { name: 'Hang up' }).click();
        const end = await call.whenEnded();
        assert.deepEqual([end.reason, end.by, end.outcome], ['normal', 'remote', 'answered']);
      } else {
        await call.hangup();
        await callScreen(alice).getByRole('status').filter({ hasText: 'Call ended' }).waitFor();
      }
      media.player.stop();
      const rec = await media.recording()?.stop();
      assert.ok(rec, 'Node recorded nothing');
      assert.ok(rec.frames > 100, `Node received ${rec.frames} frames`);
      assert.ok(rec.peak > 1_000, `what Node received from the browser is silent (peak ${rec.peak}, rms ${rec.rms.toFixed(0)})`);
      await callScreen(alice).waitFor({ state: 'detached', timeout: 10_000 });
    }

    it('the browser calls the Node peer: audio both ways; the browser hangs up', async () => {
      const mark = bob.events.length;
      await alice.getByRole('button', { name: 'Voice call', exact: true }).click();
      const call = await nextCall(bob, 'incoming', 20_000, mark);
      assert.equal(call.media, 'audio');
      const media = await nodeMedia(call, 'from-browser');
      await call.answer({ tracks: [media.player.track] });
      await checkAudio(call, media, 'browser');
      await alice.locator('.call-record', { hasText: /Outgoing voice call · 0:\d\d/ }).waitFor();
    });

    it('the Node peer calls the browser: it rings, is answered, audio both ways; Node hangs up', async () => {
      const player = new PcmPlayer(await decodeToPcm(tone), { loop: true });
      const call = await bob.client.placeCall(A.number, { tracks: [player.track] });
      let recorder: TrackRecorder | undefined;
      call.on('track', ({ track }) => {
        if (track.kind === 'audio') recorder ??= new TrackRecorder(track, `${world.tmp}/to-browser.opus`);
      });
      await callScreen(alice).getByRole('status').filter({ hasText: 'Incoming voice call' }).waitFor();
      await callScreen(alice).getByRole('button', { name: 'Answer', exact: true }).click();
      await checkAudio(call, { player, recording: () => recorder }, 'node');
      await alice.locator('.call-record', { hasText: /Incoming voice call · 0:\d\d/ }).waitFor();
    });

    it('logged no page errors', () => {
      assert.deepEqual(errors.filter((e) => !/Failed to load resource|WebSocket/.test(e)), []);
    });
  });
}
