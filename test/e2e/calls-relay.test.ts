// Browser calls forced through a TURN relay: coturn started by the test (scripts/coturn.sh), the server
// minting its REST-API credentials (--turn-secret, --turn-url), and both browsers set to "always relay"
// (relay-only ICE, `iceTransportPolicy: 'relay'`): the call connects through coturn on both sides (the selected
// pair's local candidate is a relay one), audio and video arrive both ways, hang-up ends it on the other
// side. Runs in a loopback-only network namespace, as the other call tests do.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { NETNS_ENV, describeInNetns, startCoturn } from '../integration/calls-support.ts';
import { cleanUpCalls, connectCall, hangUpFrom, statText, startCallWorld, twoInAChat, waitForStats, type CallWorld } from './calls-support.ts';
import { NUMBERS, screenshot, watchErrors } from './support.ts';

const FILE = fileURLToPath(import.meta.url);
const { alice: A, bob: B } = NUMBERS;

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('browser calls through a relay', FILE, 280_000);
} else {
  describe('two browsers call each other through coturn, relay only (in a loopback-only namespace)', () => {
    let world: CallWorld;
    let turn: Awaited<ReturnType<typeof startCoturn>> | undefined;
    let alice: Page;
    let bob: Page;
    const errors: string[] = [];

    before(async () => {
      const secret = 'e2e-call-secret-0123456789';
      const port = 3478 + (process.pid % 500);
      turn = await startCoturn(port, secret);
      world = await startCallWorld('calls-relay', ['--turn-secret', secret, '--turn-url', `turn:127.0.0.1:${port}?transport=udp`]);
      ({ alice, bob } = await twoInAChat(world, A, B));
      errors.push(...watchErrors(alice), ...watchErrors(bob));
      // The "always relay" choice of both browsers.
      for (const p of [alice, bob]) await p.evaluate(() => localStorage.setItem('parley.calls.alwaysRelay', '1'));
    });

    after(async () => {
      await world?.close();
      await turn?.stop();
    });

    afterEach(() => cleanUpCalls([alice, bob]));

    it('connects through the relay on both sides: audio and video both ways in getStats(); hang-up ends it on the other side', async () => {
      await connectCall(alice, bob, 'Video call');
      const media = { audioBytesIn: 2_000, videoBytesIn: 20_000, framesDecoded: 20 };
      await Promise.all([waitForStats(alice, 'alice', media), waitForStats(bob, 'bob', media)]);
      assert.equal(await statText(alice, 'route'), 'relay (TURN)');
      assert.equal(await statText(bob, 'route'), 'relay (TURN)');
      await screenshot(alice, 'call-relay-details');
      await hangUpFrom(alice, bob);
    });

    it('logged no page errors', () => {
      assert.deepEqual(errors.filter((e) => !/Failed to load resource|WebSocket/.test(e)), []);
    });
  });
}
