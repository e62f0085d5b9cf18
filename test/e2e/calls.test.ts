// Calls between two browsers (headless Chromium with fake cameras and microphones) through the real server:
// a video call answered on a phone-width screen, media both ways seen in getStats() on both sides (audio and
// video bytes, decoded frames), mute, camera off and on (the peer's frames stop and resume), switch camera,
// the duration, the audio output (setSinkId on the remote sound, remembered in the profile across a reload), hang-up on one side
// ending it on the other, the call in both chats; a call declined, and one cancelled before it was answered (a
// missed call with "Call back"), with the ringtone and the ringback tone stopping at each; the ringtone turned
// off in Settings. Relay-only calls: calls-relay.test.ts. WebRTC gathers candidates on every interface, so the file re-runs
// itself in a loopback-only network namespace (`unshare -n`), as test/integration/calls.test.ts does.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { NETNS_ENV, describeInNetns } from '../integration/calls-support.ts';
import { callScreen, cleanUpCalls, connectCall, hangUpFrom, stat, statText, startCallWorld, twoInAChat, waitForCallState, waitForStats, type CallWorld } from './calls-support.ts';
import { NUMBERS, screenshot, watchErrors } from './support.ts';

const FILE = fileURLToPath(import.meta.url);
const { alice: A, bob: B } = NUMBERS;

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('browser calls', FILE, 280_000);
} else {
  describe('two browsers call each other (in a loopback-only namespace)', () => {
    let world: CallWorld;
    let alice: Page;
    let bob: Page;
    const errors: string[] = [];

    before(async () => {
      world = await startCallWorld('calls');
      // Bob is on a phone.
      ({ alice, bob } = await twoInAChat(world, A, B));
      errors.push(...watchErrors(alice), ...watchErrors(bob));
    });

    after(async () => {
      await world?.close();
    });

    // A failed test leaves no call behind for the next one.
    afterEach(() => cleanUpCalls([alice, bob]));

    it('video call: media both ways in getStats(), mute, camera off and on, switch camera, duration, hang-up ends it on the other side', async () => {
      await connectCall(alice, bob, 'Video call');
      const media = { audioBytesIn: 2_000, audioEnergyIn: 0, videoBytesIn: 20_000, framesDecoded: 20 };
      await Promise.all([waitForStats(alice, 'alice', media), waitForStats(bob, 'bob', media)]);
      assert.match(await statText(alice, 'route'), /^direct/);
      assert.match(await statText(bob, 'route'), /^direct/);
      // The duration counts.
      assert.match(await callScreen(alice).getByRole('status').innerText(), /^0:\d\d$/);
      await screenshot(bob, 'call-video-phone');
      await screenshot(alice, 'call-video-desktop');
      // At phone width every control is on screen.
      for (const name of ['Mute', 'Camera off', 'Switch camera', 'Call details', 'Hang up']) {
        const box = await callScreen(bob).getByRole('button', { name, exact: true }).boundingBox();
        assert.ok(box && box.x >= 0 && box.y >= 0 && box.x + box.width <= 390 && box.y + box.height <= 844, `${name} is off screen: ${JSON.stringify(box)}`);
      }
      // The video we send follows the bandwidth ladder (a maxBitrate was set on the sender).
      assert.match(await statText(alice, 'videoLimit'), /^up to \d+ kbit\/s/);

      // The audio output: Chromium's fake outputs are listed; choosing one routes the peer's media to it.
      const output = callScreen(alice).getByLabel('Audio output');
      const options = await output.locator('option').evaluateAll((os) => os.map((o) => ({ id: (o as HTMLOptionElement).value, label: o.textContent ?? '' })));
      assert.equal(options[0]?.id, '', `the system default comes first: ${JSON.stringify(options)}`);
      const fake = options.find((o) => o.label === 'Fake Audio Output 1');
      assert.ok(fake, `no fake output listed: ${JSON.stringify(options)}`);
      const sinkOf = (): Promise<string> => alice.locator('audio.call-audio-out').evaluate((v) => (v as HTMLMediaElement & { sinkId: string }).sinkId);
      assert.equal(await sinkOf(), '');
      await output.selectOption(fake.id);
      for (let i = 0; i < 40 && (await sinkOf()) !== fake.id; i++) await alice.waitForTimeout(100);
      assert.equal(await sinkOf(), fake.id, 'the peer’s sound plays on the chosen output');

      // Mute: the button says so.
      const mute = callScreen(alice).getByRole('button', { name: 'Mute', exact: true });
      await mute.click();
      assert.equal(await mute.getAttribute('aria-pressed'), 'true');
      await mute.click();
      assert.equal(await mute.getAttribute('aria-pressed'), 'false');

      // Camera off: Bob decodes no more of Alice's frames; on again: they resume.
      await callScreen(alice).getByRole('button', { name: 'Camera off' }).click();
      await alice.locator('video.local-preview').waitFor({ state: 'detached', timeout: 5_000 }); // no preview while the camera is off
      await bob.waitForTimeout(1_500);
      const frozen = await stat(bob, 'framesDecoded');
      await bob.waitForTimeout(2_500);
      const still = await stat(bob, 'framesDecoded');
      assert.ok(still - frozen <= 2, `frames kept coming with the camera off: ${frozen} -> ${still}`);
      await callScreen(alice).getByRole('button', { name: 'Camera off' }).click();
      await alice.locator('video.local-preview').waitFor();
      await waitForStats(bob, 'bob after camera on', { framesDecoded: still + 20 });

      // Switch camera: the next device's track goes out on the same sender, and Bob gets its frames. The fake
      // cameras are fake_device_0, 1 (a depth camera, Y16, which WebRTC does not encode) and 2: two switches.
      const label = (): Promise<string> => alice.locator('video.local-preview').evaluate((v) => ((v as HTMLVideoElement).srcObject as MediaStream).getVideoTracks()[0]?.label ?? '');
      assert.equal(await label(), 'fake_device_0');
      for (const next of ['fake_device_1', 'fake_device_2']) {
        await callScreen(alice).getByRole('button', { name: 'Switch camera' }).click();
        for (let i = 0; i < 40 && (await label()) !== next; i++) await alice.waitForTimeout(250);
        assert.equal(await label(), next, 'the camera did not change');
      }
      const after = await stat(bob, 'framesDecoded');
      await waitForStats(bob, 'bob after switch', { framesDecoded: after + 20 });

      await hangUpFrom(bob, alice);
      // Both chats record the call with its duration.
      await alice.locator('.call-record', { hasText: /Outgoing video call · 0:\d\d/ }).waitFor();
      await bob.locator('.call-record', { hasText: /Incoming video call · 0:\d\d/ }).waitFor();
      // The output chosen during the call is the default in Settings now.
      await alice.getByRole('button', { name: 'Settings' }).click();
      assert.equal(await alice.getByLabel('Call audio output').inputValue(), fake.id);
      await alice.getByRole('dialog', { name: 'Settings' }).getByRole('button', { name: 'Close' }).click();
    });

    it('a voice call declined ends as declined for the caller; one cancelled before an answer is a missed call with "Call back"', async () => {
      await alice.getByRole('button', { name: 'Voice call', exact: true }).click();
      await callScreen(bob).getByRole('status').filter({ hasText: 'Incoming voice call' }).waitFor();
      await screenshot(bob, 'call-incoming-phone');
      // Bob's phone rings (its AudioContext runs); Alice hears the ringback tone while it rings.
      await bob.locator('.call-screen[data-tone="ring"]').waitFor();
      await alice.locator('.call-screen[data-state="ringing"][data-tone="ringback"]').waitFor();
      await callScreen(bob).getByRole('button', { name: 'Decline' }).click();
      await callScreen(alice).getByRole('status').filter({ hasText: 'Declined' }).waitFor();
      assert.equal(await callScreen(alice).getAttribute('data-tone'), '', 'the ringback stopped');
      assert.equal(await bob.locator('.call-screen[data-tone="ring"]').count(), 0, 'the ringing stopped');
      await alice.locator('.call-record', { hasText: 'Voice call declined' }).waitFor();
      await bob.locator('.call-record', { hasText: 'Declined voice call' }).waitFor();
      await callScreen(alice).waitFor({ state: 'detached', timeout: 10_000 });

      await alice.getByRole('button', { name: 'Voice call', exact: true }).click();
      await callScreen(bob).getByRole('status').filter({ hasText: 'Incoming voice call' }).waitFor();
      await bob.locator('.call-screen[data-tone="ring"]').waitFor();
      await callScreen(alice).getByRole('button', { name: 'Hang up' }).click();
      await callScreen(bob).getByRole('status').filter({ hasText: 'Missed call' }).waitFor();
      assert.equal(await callScreen(bob).getAttribute('data-tone'), '', 'a missed call stops ringing');
      const missed = bob.locator('.call-record.missed', { hasText: 'Missed voice call' });
      await missed.waitFor();
      await missed.getByRole('button', { name: 'Call back' }).waitFor();
      // The chats list says so too.
      await bob.getByRole('button', { name: 'Back to chats' }).click();
      await bob.getByRole('button', { name: new RegExp(`^${A.number.replace('+', '\\+')}`) }).filter({ hasText: 'Missed voice call' }).waitFor();
    });

    it('with the ringtone off in Settings an incoming call rings silently; answering stops the caller’s ringback; the chosen output outlives a reload', async () => {
      // The call preferences live in the profile: a reload keeps the output chosen in the first test.
      await alice.reload();
      await alice.getByRole('heading', { name: 'Chats' }).waitFor();
      await alice.getByRole('button', { name: 'Settings' }).click();
      const output = alice.getByLabel('Call audio output');
      const saved = await output.inputValue();
      assert.notEqual(saved, '', 'the output chosen during the first call is still chosen');
      const ringtone = alice.getByRole('checkbox', { name: /Ringtone/ });
      assert.equal(await ringtone.isChecked(), true, 'on by default');
      await ringtone.uncheck();
      await alice.getByRole('dialog', { name: 'Settings' }).getByRole('button', { name: 'Close' }).click();
      // Bob (back in the chat with Alice) calls her.
      await bob.getByRole('button', { name: new RegExp(`^${A.number.replace('+', '\\+')}`) }).first().click();
      await bob.getByRole('button', { name: 'Voice call', exact: true }).click();
      await callScreen(alice).getByRole('status').filter({ hasText: 'Incoming voice call' }).waitFor();
      await bob.locator('.call-screen[data-state="ringing"][data-tone="ringback"]').waitFor();
      await alice.waitForTimeout(1_000);
      assert.equal(await callScreen(alice).getAttribute('data-tone'), '', 'no ringtone');
      await callScreen(alice).getByRole('button', { name: 'Answer', exact: true }).click();
      await waitForCallState(bob, 'connected');
      assert.equal(await callScreen(bob).getAttribute('data-tone'), '', 'the ringback stopped on the answer');
      // Bob's voice plays on that output.
      const sink = (): Promise<string> => alice.locator('audio.call-audio-out').evaluate((a) => (a as HTMLMediaElement & { sinkId: string }).sinkId);
      for (let i = 0; i < 40 && (await sink()) !== saved; i++) await alice.waitForTimeout(100);
      assert.equal(await sink(), saved);
      await hangUpFrom(alice, bob);
    });

    it('logged no page errors', () => {
      assert.deepEqual(errors.filter((e) => !/Failed to load resource|WebSocket/.test(e)), []);
    });
  });
}
