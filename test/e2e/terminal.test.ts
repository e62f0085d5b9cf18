// A browser user and a terminal-client user (bin/parley.js) talk to each other through the same server:
// the browser's message is decrypted by the CLI, the CLI's reply appears in the browser, and the browser
// sends the CLI a read receipt the CLI's message status shows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { cliOk } from '../support/cli.ts';
import { bubble, NUMBERS, openChatWith, registerInBrowser, screenshot, sendMessage, startWorld, waitForTicks, type E2eWorld } from './support.ts';

const { alice: A, carol: C } = NUMBERS;

describe('browser and terminal client', () => {
  let world: E2eWorld;
  let alice: Page;
  let carol: string;
  const as = (...args: string[]): string[] => [...args, '--profile', carol, '--json'];

  before(async () => {
    world = await startWorld('terminal');
    carol = path.join(world.tmp, 'carol');
  });
  after(async () => {
    await world?.close();
  });

  it('registers one in the browser and one in the terminal', async () => {
    alice = await registerInBrowser(await world.context(), A);
    const r = await cliOk(['register', C.number, '--server', world.server.url, '--code', C.code, '--profile', carol, '--json']);
    assert.equal(r.lines[0]?.number, C.number);
  });

  it('the terminal receives and decrypts what the browser sent', async () => {
    await openChatWith(alice, C.number);
    await sendMessage(alice, 'From the browser to the terminal');
    await waitForTicks(alice, 'From the browser to the terminal', 'sent');
    const r = await cliOk(as('receive', '--until-empty'));
    const texts = r.lines.filter((l) => l.type === 'text');
    assert.deepEqual(
      texts.map((l) => [l.from, l.body]),
      [[A.number, 'From the browser to the terminal']],
    );
    // The CLI's delivery receipt reaches the browser.
    await waitForTicks(alice, 'From the browser to the terminal', 'delivered', 30_000);
  });

  it('the browser shows what the terminal sent, and the terminal sees it read', async () => {
    const sent = await cliOk(as('send', A.number, 'From the terminal to the browser'));
    assert.equal(sent.lines.at(-1)?.status, 'sent');
    await bubble(alice, 'From the terminal to the browser').waitFor();
    await screenshot(alice, 'browser-and-terminal');
    // Alice has the chat open: the browser sends a read receipt, which the terminal takes in.
    const deadline = Date.now() + 30_000;
    let read = false;
    while (!read && Date.now() < deadline) {
      const r = await cliOk(as('receive', '--until-empty'));
      read = r.lines.some((l) => l.type === 'receipt' && l.receipt === 'read');
    }
    assert.ok(read, 'the terminal got a read receipt from the browser');
  });
});
