// Support for the browser call tests: Chromium with a fake camera (two of them, for "switch camera") and a
// fake microphone, candidates on loopback (the tests run in a loopback-only network namespace: see
// ../shared/ENVIRONMENT.md and test/integration/calls-support.ts), the real `parley serve` (with a coturn when
// asked), and helpers that read the call screen's statistics (getStats() in the page).
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startServer, tempDir, type CliServer } from '../support/cli.ts';
import { CHROMIUM, CHROMIUM_FLAGS, WAIT_MS, bubble, openChatWith, registerInBrowser, sendMessage } from './support.ts';

const FLAGS = [
  ...CHROMIUM_FLAGS,
  // Fake devices: a test pattern with a beep; three cameras so that "switch camera" has somewhere to go
  // (Chromium's fake_device_1 is a Y16 depth camera, which WebRTC does not encode: the tests skip past it).
  '--use-fake-device-for-media-stream=device-count=3',
  '--use-fake-ui-for-media-stream',
  // Without it WebRTC gathers no candidates on loopback (the only interface in the namespace).
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
];

export interface CallWorld {
  readonly server: CliServer;
  readonly browser: Browser;
  readonly tmp: string;
  context(options?: { width?: number; height?: number }): Promise<BrowserContext>;
  close(): Promise<void>;
}

/** A server (with `serverArgs`) and a Chromium that can call. */
export async function startCallWorld(name: string, serverArgs: readonly string[] = []): Promise<CallWorld> {
  const tmp = tempDir(`parley-e2e-${name}-`);
  const server = await startServer(path.join(tmp.dir, 'server'), serverArgs);
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 30_000 });
  } catch (err) {
    await server.stop();
    tmp.remove();
    throw err;
  }
  const contexts: BrowserContext[] = [];
  return {
    server,
    browser,
    tmp: tmp.dir,
    async context(options = {}) {
      const c = await browser.newContext({ viewport: { width: options.width ?? 1100, height: options.height ?? 760 }, baseURL: server.url, permissions: ['camera', 'microphone'] });
      c.setDefaultTimeout(WAIT_MS);
      contexts.push(c);
      return c;
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await server.stop();
      tmp.remove();
    },
  };
}

/** The call screen of a page. */
export function callScreen(page: Page): ReturnType<Page['getByRole']> {
  return page.getByRole('dialog', { name: /^Call with / });
}

/** Waits until the call screen is in `state` (dialing, ringing, connecting, connected, ended). */
export async function waitForCallState(page: Page, state: string, timeoutMs = 30_000): Promise<void> {
  await page.locator(`.call-screen[data-state="${state}"]`).waitFor({ timeout: timeoutMs });
}

/** Opens the call's statistics panel (getStats() in the page, refreshed every second). */
export async function openDetails(page: Page): Promise<void> {
  const button = callScreen(page).getByRole('button', { name: 'Call details' });
  if ((await button.getAttribute('aria-expanded')) !== 'true') await button.click();
  await page.getByRole('definition').first().waitFor();
}

/** One figure of the statistics panel, as a number (NaN when it is not one). */
export async function stat(page: Page, key: string): Promise<number> {
  return Number(await page.locator(`dd[data-stat="${key}"]`).innerText());
}

export async function statText(page: Page, key: string): Promise<string> {
  return page.locator(`dd[data-stat="${key}"]`).innerText();
}

/** Waits (bounded) until every figure of `min` is above its minimum on `page`; fails with what it saw. */
export async function waitForStats(page: Page, who: string, min: Record<string, number>, timeoutMs = 20_000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  let seen: Record<string, number> = {};
  while (Date.now() < deadline) {
    seen = {};
    for (const key of Object.keys(min)) seen[key] = await stat(page, key);
    if (Object.entries(min).every(([k, v]) => (seen[k] ?? 0) > v)) return seen;
    await page.waitForTimeout(500);
  }
  assert.fail(`${who}: stats did not reach ${JSON.stringify(min)}; last seen ${JSON.stringify(seen)}`);
}

/** `caller` places a call from the open 1:1 chat and `callee` answers it; resolves once both are connected, with details open. */
export async function connectCall(caller: Page, callee: Page, media: 'Video call' | 'Voice call'): Promise<void> {
  await caller.getByRole('button', { name: media, exact: true }).click();
  const incoming = callScreen(callee);
  await incoming.getByRole('status').filter({ hasText: media === 'Video call' ? 'Incoming video call' : 'Incoming voice call' }).waitFor();
  await incoming.getByRole('button', { name: media === 'Video call' ? 'Answer with video' : 'Answer', exact: true }).click();
  await Promise.all([waitForCallState(caller, 'connected'), waitForCallState(callee, 'connected')]);
  await Promise.all([openDetails(caller), openDetails(callee)]);
}

/** `who` hangs up: `other` shows "Call ended", and both call screens go away by themselves. */
export async function hangUpFrom(who: Page, other: Page): Promise<void> {
  await callScreen(who).getByRole('button', { name: 'Hang up' }).click();
  await waitForCallState(other, 'ended', 15_000);
  await callScreen(other).getByRole('status').filter({ hasText: 'Call ended' }).waitFor();
  await callScreen(who).waitFor({ state: 'detached', timeout: 10_000 });
  await callScreen(other).waitFor({ state: 'detached', timeout: 10_000 });
}

/** Hangs up whatever call a page shows (after a failed test) and waits for its screen to go. */
export async function cleanUpCalls(pages: readonly Page[]): Promise<void> {
  for (const p of pages) {
    const hangup = callScreen(p).getByRole('button', { name: 'Hang up' });
    if ((await hangup.count()) > 0) await hangup.click().catch(() => undefined);
    await callScreen(p).waitFor({ state: 'detached', timeout: 10_000 }).catch(() => undefined);
  }
}

/** Registers two browsers (the second at phone width) and has them exchange a message in their 1:1 chat. */
export async function twoInAChat(world: CallWorld, a: { number: string; code: string }, b: { number: string; code: string }): Promise<{ alice: Page; bob: Page }> {
  const alice = await registerInBrowser(await world.context(), a);
  const bob = await registerInBrowser(await world.context({ width: 390, height: 844 }), b);
  await openChatWith(alice, b.number);
  await sendMessage(alice, 'Can I call you?');
  await openChatWith(bob, a.number);
  await bubble(bob, 'Can I call you?').waitFor();
  return { alice, bob };
}
