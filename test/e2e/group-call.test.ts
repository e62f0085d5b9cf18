// A three-party group video call in three browser profiles (headless Chromium, fake cameras and
// microphones) through the real server: one starts it from the group's header, the other two answer from
// their incoming-call screen, and each browser shows a grid of the two others with audio and video arriving
// from both (getStats() per connection: bytes and decoded frames); the ringtone plays while it rings; speaker
// view follows whoever speaks (Chromium's fake microphones beep; the others are muted); a camera that went
// off and on again before the third answered reaches the third (who joined later); the third, answering with
// audio only, is heard, and turns the camera on later (on a 360px-wide phone, every control in one row); one
// leaves and the two others go on; she sees the call still going (banner, header, chats list), joins it again
// and gets audio and video from both again; once everyone left, no "Join" is offered; in a voice call she
// declines, she joins late from the header and hears both. Runs in a loopback-only network namespace, as the
// other call tests do.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { NETNS_ENV, describeInNetns } from '../integration/calls-support.ts';
import { callScreen, openDetails, startCallWorld, waitForCallState, type CallWorld } from './calls-support.ts';
import { createGroup, NUMBERS, openChat, registerInBrowser, screenshot, sendMessage, bubble, watchErrors } from './support.ts';

const FILE = fileURLToPath(import.meta.url);
const { alice: A, bob: B, carol: C } = NUMBERS;
const GROUP = 'Call crew';

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('browser group calls', FILE, 400_000);
} else {
  describe('a three-party group call in three browsers (in a loopback-only namespace)', () => {
    let world: CallWorld;
    let alice: Page;
    let bob: Page;
    let carol: Page;
    const errors: string[] = [];

    before(async () => {
      world = await startCallWorld('group-call');
      alice = await registerInBrowser(await world.context(), A);
      bob = await registerInBrowser(await world.context(), B);
      carol = await registerInBrowser(await world.context({ width: 360, height: 780 }), C);
      errors.push(...watchErrors(alice), ...watchErrors(bob), ...watchErrors(carol));
      await createGroup(alice, GROUP, [B.number, C.number]);
      await sendMessage(alice, 'Call in a minute');
      for (const page of [bob, carol]) {
        await openChat(page, GROUP);
        await bubble(page, 'Call in a minute').waitFor();
      }
      // Sessions between Bob and Carol too (each device links to each other one).
      await sendMessage(bob, 'Ready');
      await bubble(carol, 'Ready').waitFor();
      await sendMessage(carol, 'Me too');
      await bubble(bob, 'Me too').waitFor();
    });

    after(async () => {
      await world?.close();
    });

    /** The per-participant figures of a page's grid: tile name -> { framesDecoded, audioBytesIn, videoBytesIn }. */
    async function tileStats(page: Page): Promise<Record<string, Record<string, number>>> {
      return page.locator('li.call-tile').evaluateAll((tiles) =>
        Object.fromEntries(
          tiles.map((t) => [
            t.getAttribute('aria-label') ?? '',
            Object.fromEntries(['framesDecoded', 'audioBytesIn', 'videoBytesIn'].map((k) => [k, Number(t.querySelector(`dd[data-stat="${k}"]`)?.textContent ?? 'NaN')])),
          ]),
        ),
      );
    }

    /** Waits (bounded) until `page` hears `who` (the audio level measured on their tile is above the speech threshold). */
    async function waitForLevel(page: Page, name: string, who: string): Promise<void> {
      const tile = page.locator('li.call-tile', { has: page.locator('.tile-name', { hasText: who }) });
      const deadline = Date.now() + 20_000;
      let level = '';
      while (Date.now() < deadline) {
        level = (await tile.getAttribute('data-level')) ?? '';
        if (Number(level) > 0.01) return;
        await page.waitForTimeout(250);
      }
      assert.fail(`${name}: ${who} was not heard; level ${JSON.stringify(level)}`);
    }

    /** Waits (bounded) until `page` shows exactly `names` as tiles, each with audio and video arriving. */
    async function waitForGrid(page: Page, who: string, names: readonly string[]): Promise<void> {
      const deadline = Date.now() + 40_000;
      let seen: Record<string, Record<string, number>> = {};
      while (Date.now() < deadline) {
        seen = await tileStats(page);
        const ok =
          Object.keys(seen).sort().join() === [...names].sort().join() &&
          names.every((n) => (seen[n]?.framesDecoded ?? 0) > 20 && (seen[n]?.audioBytesIn ?? 0) > 2_000 && (seen[n]?.videoBytesIn ?? 0) > 20_000);
        if (ok) return;
        await page.waitForTimeout(500);
      }
      assert.fail(`${who}: the grid did not show ${names.join(', ')} with media; saw ${JSON.stringify(seen)}`);
    }

    it('starts a video call in the group; both others answer; everyone gets audio and video from both others', async () => {
      await alice.getByRole('button', { name: 'Video call', exact: true }).click();
      for (const p of [bob, carol]) {
        await callScreen(p).getByRole('status').filter({ hasText: 'Incoming video call' }).waitFor();
        assert.equal(await callScreen(p).getAttribute('aria-label'), `Call with ${GROUP}`);
        // The ringtone plays (its AudioContext runs); the one who started the call hears the ringback tone.
        await p.locator('.call-screen[data-tone="ring"]').waitFor();
      }
      await alice.locator('.call-screen[data-tone="ringback"]').waitFor();
      await screenshot(carol, 'group-call-incoming-phone');
      await callScreen(bob).getByRole('button', { name: 'Answer with video' }).click();
      for (const p of [alice, bob]) {
        await waitForCallState(p, 'connected');
        await callScreen(p).getByRole('button', { name: 'Call details' }).click();
      }
      assert.equal(await callScreen(bob).getAttribute('data-tone'), '', 'the ringing stopped on the answer');
      await alice.locator('.call-screen[data-tone=""]').waitFor({ timeout: 5_000 }); // the ringback stops once someone joined
      assert.equal(await callScreen(carol).getAttribute('data-tone'), 'ring', 'Carol has not answered yet');
      await Promise.all([waitForGrid(alice, 'alice', [B.number]), waitForGrid(bob, 'bob', [A.number])]);

      // Alice's camera goes off and on again (a new camera track, sent through GroupCall.replaceLocalTrack)
      // before Carol answers: Carol, joining later, must get that new track.
      await callScreen(alice).getByRole('button', { name: 'Camera off' }).click();
      await alice.locator('video.local-preview').waitFor({ state: 'detached' });
      await callScreen(alice).getByRole('button', { name: 'Camera off' }).click();
      await alice.locator('video.local-preview').waitFor();

      // Carol answers with audio only (her camera off from the start): the others hear her all the same (her
      // tile's video never got a frame, which must not hold her sound back); then she turns her camera on.
      await callScreen(carol).getByRole('button', { name: 'Answer with audio' }).click();
      await waitForCallState(carol, 'connected');
      assert.equal(await callScreen(carol).getAttribute('data-tone'), '', 'the ringing stopped on the answer');
      assert.equal(await carol.locator('video.local-preview').count(), 0);
      await Promise.all([waitForLevel(alice, 'alice', C.number), waitForLevel(bob, 'bob', C.number)]);
      await callScreen(carol).getByRole('button', { name: 'Camera off' }).click();
      await carol.locator('video.local-preview').waitFor();
      await callScreen(carol).getByRole('button', { name: 'Call details' }).click();
      await Promise.all([waitForGrid(alice, 'alice', [B.number, C.number]), waitForGrid(bob, 'bob', [A.number, C.number]), waitForGrid(carol, 'carol', [A.number, B.number])]);
      await screenshot(alice, 'group-call-grid');
      await screenshot(carol, 'group-call-grid-phone');
      // On Carol's 360px-wide phone the seven controls of a group video call fit one row (Hang up included).
      const tops = await callScreen(carol).locator('.call-controls > .call-btn').evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
      assert.ok(tops.length >= 6 && new Set(tops).size === 1, `carol's controls in one row: tops ${JSON.stringify(tops)}`);
    });

    /** Who `page` shows large in speaker view, and who has the speaking ring. */
    async function stage(page: Page): Promise<{ main: string; speaking: string[]; levels: Record<string, string> }> {
      return page.locator('ul.call-grid').evaluate((ul) => ({
        main: ul.querySelector('li.call-tile.main')?.getAttribute('aria-label') ?? '',
        speaking: Array.from(ul.querySelectorAll('li.call-tile[data-speaking="true"]')).map((t) => t.getAttribute('aria-label') ?? ''),
        levels: Object.fromEntries(Array.from(ul.querySelectorAll('li.call-tile')).map((t) => [t.getAttribute('aria-label') ?? '', t.getAttribute('data-level') ?? ''])),
      }));
    }

    /** Waits (bounded) until `page`'s speaker view shows `who` large with the speaking ring, and only them speaking. */
    async function waitForSpeaker(page: Page, name: string, who: string): Promise<void> {
      const deadline = Date.now() + 20_000;
      let seen = await stage(page);
      while (Date.now() < deadline) {
        seen = await stage(page);
        if (seen.main === who && seen.speaking.join() === who) return;
        await page.waitForTimeout(250);
      }
      assert.fail(`${name}: the speaker view did not show ${who} speaking; saw ${JSON.stringify(seen)}`);
    }

    /** Waits (bounded: the speaking hold of the last beep before a mute) until `page` shows nobody speaking. */
    async function waitForSilence(page: Page, name: string): Promise<Awaited<ReturnType<typeof stage>>> {
      let seen = await stage(page);
      for (let i = 0; i < 20 && seen.speaking.length > 0; i++) {
        await page.waitForTimeout(250);
        seen = await stage(page);
      }
      assert.deepEqual(seen.speaking, [], `${name} hears somebody speak: ${JSON.stringify(seen)}`);
      return seen;
    }

    it('speaker view shows whoever speaks large, with a ring; a muted participant never takes the stage', async (t) => {
      // Every fake microphone beeps: mute Bob and Carol, so that only Alice is heard.
      for (const p of [alice, bob, carol]) {
        const toggle = callScreen(p).getByRole('button', { name: 'Speaker view' });
        await toggle.click();
        assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
        await p.locator('ul.call-grid[data-layout="speaker"]').waitFor();
      }
      for (const p of [bob, carol]) await callScreen(p).getByRole('button', { name: 'Mute', exact: true }).click();
      await Promise.all([waitForSpeaker(bob, 'bob', A.number), waitForSpeaker(carol, 'carol', A.number)]);
      // The muted ones are silent in Alice's view: nobody speaks there, whoever holds her stage.
      const aliceStage = await waitForSilence(alice, 'alice');
      // The levels measured (RMS over the last second; the threshold is 0.01): the beeping one and the muted ones.
      t.diagnostic(`levels seen by bob: ${JSON.stringify((await stage(bob)).levels)}; by alice: ${JSON.stringify(aliceStage.levels)}`);
      await screenshot(bob, 'group-call-speaker-view');
      await screenshot(carol, 'group-call-speaker-view-phone');

      // Carol unmutes and Alice mutes: the stage moves to Carol in the two other browsers, and stays off Bob.
      await callScreen(carol).getByRole('button', { name: 'Mute', exact: true }).click();
      await callScreen(alice).getByRole('button', { name: 'Mute', exact: true }).click();
      await Promise.all([waitForSpeaker(alice, 'alice', C.number), waitForSpeaker(bob, 'bob', C.number)]);
      await waitForSilence(carol, 'carol');

      // Back to the grid (every tile the same size), everyone unmuted.
      for (const p of [alice, bob]) await callScreen(p).getByRole('button', { name: 'Mute', exact: true }).click();
      for (const p of [alice, bob, carol]) {
        await callScreen(p).getByRole('button', { name: 'Speaker view' }).click();
        await p.locator('ul.call-grid[data-layout="grid"]').waitFor();
      }
    });

    it('one leaves and the others go on; she sees the call still going, joins it again and gets both again; once all left, nobody is offered to join', async () => {
      await callScreen(carol).getByRole('button', { name: 'Hang up' }).click();
      await callScreen(carol).getByRole('status').filter({ hasText: 'Call ended' }).waitFor();
      await Promise.all([waitForGrid(alice, 'alice', [B.number]), waitForGrid(bob, 'bob', [A.number])]);
      await callScreen(carol).waitFor({ state: 'detached', timeout: 10_000 });

      // Carol's group chat says the call goes on (a banner, "Join" in the header); so does her chats list.
      const banner = carol.getByRole('region', { name: 'Call in progress' });
      await banner.filter({ hasText: 'A video call is going on · 2 in it' }).waitFor();
      await carol.getByRole('button', { name: 'Join video call' }).waitFor();
      await screenshot(carol, 'group-call-rejoin-banner-phone');
      await carol.getByRole('button', { name: 'Back to chats' }).click();
      await carol.locator('li.chat', { hasText: GROUP }).locator('.chat-call[aria-label="Call in progress"]').waitFor();
      await openChat(carol, GROUP);

      // She joins again from the banner: a new join, new connections; audio and video from both others again.
      await banner.getByRole('button', { name: 'Join' }).click();
      await waitForCallState(carol, 'connected');
      await openDetails(carol);
      await Promise.all([waitForGrid(alice, 'alice', [B.number, C.number]), waitForGrid(bob, 'bob', [A.number, C.number]), waitForGrid(carol, 'carol', [A.number, B.number])]);
      assert.equal(await banner.count(), 0, 'no banner while she is in the call');
      await screenshot(carol, 'group-call-rejoined-phone');

      // She leaves again (offered to join again), then the two others: the call is over, nothing to join.
      await callScreen(carol).getByRole('button', { name: 'Hang up' }).click();
      await callScreen(carol).waitFor({ state: 'detached', timeout: 10_000 });
      await banner.waitFor();
      await callScreen(bob).getByRole('button', { name: 'Hang up' }).click();
      await callScreen(alice).getByRole('button', { name: 'Hang up' }).click();
      for (const p of [alice, bob]) await callScreen(p).waitFor({ state: 'detached', timeout: 10_000 });
      await banner.waitFor({ state: 'detached', timeout: 15_000 });
      assert.equal(await carol.getByRole('button', { name: 'Join video call' }).count(), 0);
      await carol.getByRole('button', { name: 'Video call', exact: true }).waitFor();
      for (const p of [alice, bob, carol]) assert.equal(await p.locator('.chat-call').count(), 0, 'no ongoing-call mark');
      // The group chat records the call.
      await alice.locator('.call-record').first().waitFor();
    });

    it('a declined ring leaves the call joinable: Carol declines, sees it going on, joins late from the header and hears both', async () => {
      await alice.getByRole('button', { name: 'Voice call', exact: true }).click();
      for (const p of [bob, carol]) await callScreen(p).getByRole('status').filter({ hasText: 'Incoming voice call' }).waitFor();
      await callScreen(bob).getByRole('button', { name: 'Answer', exact: true }).click();
      await callScreen(carol).getByRole('button', { name: 'Decline' }).click();
      await callScreen(carol).waitFor({ state: 'detached', timeout: 10_000 });
      const banner = carol.getByRole('region', { name: 'Call in progress' });
      await banner.filter({ hasText: 'A voice call is going on · 2 in it' }).waitFor();
      await carol.getByRole('button', { name: 'Join voice call' }).click();
      await waitForCallState(carol, 'connected');
      await Promise.all([waitForLevel(carol, 'carol', A.number), waitForLevel(carol, 'carol', B.number), waitForLevel(alice, 'alice', C.number), waitForLevel(bob, 'bob', C.number)]);
      for (const p of [carol, bob, alice]) {
        await callScreen(p).getByRole('button', { name: 'Hang up' }).click();
        await callScreen(p).waitFor({ state: 'detached', timeout: 10_000 });
      }
      await banner.waitFor({ state: 'detached', timeout: 15_000 });
    });

    it('logged no page errors', () => {
      assert.deepEqual(errors.filter((e) => !/Failed to load resource|WebSocket/.test(e)), []);
    });
  });
}
