// Shared pieces of the browser end-to-end tests: a real `parley serve` (bin/parley.js, loopback, temporary
// folder, test numbers with fixed codes) serving the production build of the web app, Debian's Chromium
// driven by playwright-core, and helpers that act as a user would (through labelled controls).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { startServer, tempDir, type CliServer } from '../support/cli.ts';

export { NUMBERS } from '../support/cli.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** Where screenshots go (CI keeps the folder as an artefact). */
export const ARTIFACTS = path.join(root, '.tmp/e2e-artifacts');
export const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
/** Headless Chromium on a closed network (../shared/ENVIRONMENT.md): no background connections. */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Flags for a fake camera and microphone that need no permission prompt (add `--use-file-for-fake-video-capture=<file>` for a given picture). */
export const FAKE_MEDIA_FLAGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] as const;
/** How long one expectation waits for the page. */
export const WAIT_MS = 20_000;

/** A server and a browser for one test file; `close` stops both and removes the folder. */
export interface E2eWorld {
  readonly server: CliServer;
  readonly browser: Browser;
  readonly tmp: string;
  /** A new browser profile (its own IndexedDB, like another person's browser); in `options.browser` when given. */
  context(options?: { width?: number; height?: number; colorScheme?: 'light' | 'dark'; browser?: Browser; permissions?: string[] }): Promise<BrowserContext>;
  /** Another Chromium with extra flags (a fake camera, say), closed with the world. */
  launch(extraFlags: readonly string[]): Promise<Browser>;
  close(): Promise<void>;
}

export async function startWorld(name: string, serverArgs: readonly string[] = [], options: { chromiumArgs?: readonly string[] } = {}): Promise<E2eWorld> {
  const tmp = tempDir(`parley-e2e-${name}-`);
  const server = await startServer(path.join(tmp.dir, 'server'), serverArgs);
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS, ...(options.chromiumArgs ?? [])], timeout: 30_000 });
  } catch (err) {
    await server.stop();
    tmp.remove();
    throw err;
  }
  const contexts: BrowserContext[] = [];
  const browsers: Browser[] = [];
  return {
    server,
    browser,
    tmp: tmp.dir,
    async context(options = {}) {
      const c = await (options.browser ?? browser).newContext({ viewport: { width: options.width ?? 1100, height: options.height ?? 760 }, colorScheme: options.colorScheme ?? 'light', baseURL: server.url, permissions: options.permissions });
      c.setDefaultTimeout(WAIT_MS);
      contexts.push(c);
      return c;
    },
    async launch(extraFlags) {
      const b = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS, ...extraFlags], timeout: 30_000 });
      browsers.push(b);
      return b;
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => undefined);
      for (const b of browsers) await b.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await server.stop();
      tmp.remove();
    },
  };
}

/** Collects the page's console errors and uncaught exceptions (a test can assert there were none). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/** Saves a screenshot under .tmp/e2e-artifacts/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** Opens the app in a new page and registers `number` with `code`, as a user does. */
export async function registerInBrowser(context: BrowserContext, who: { number: string; code: string }): Promise<Page> {
  const page = await context.newPage();
  await page.goto('/');
  await page.getByLabel('Phone number (with country code)').fill(who.number);
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByLabel('Verification code').fill(who.code);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByRole('heading', { name: 'Chats' }).waitFor();
  return page;
}

/** Starts (or opens) the chat with a number from the chats list. */
export async function openChatWith(page: Page, number: string): Promise<void> {
  const row = page.getByRole('button', { name: new RegExp(`^${escapeRegExp(number)}`) });
  if ((await row.count()) > 0) {
    await row.first().click();
  } else {
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByRole('dialog', { name: 'New chat' }).getByLabel('Phone number').fill(number);
    await page.getByRole('button', { name: 'Start chat' }).click();
  }
  await page.getByRole('heading', { level: 2, name: number }).waitFor();
}

/** Opens a chat by its title in the chats list. */
export async function openChat(page: Page, title: string): Promise<void> {
  await page.getByRole('button', { name: new RegExp(`^${escapeRegExp(title)}`) }).first().click();
  await page.getByRole('heading', { level: 2, name: title }).waitFor();
}

/** Creates a group of `members` (phone numbers) from the chats list; resolves once its chat is open. */
export async function createGroup(page: Page, name: string, members: readonly string[]): Promise<void> {
  await page.getByRole('button', { name: 'New group' }).click();
  const dialog = page.getByRole('dialog', { name: 'New group' });
  await dialog.getByLabel('Group name').fill(name);
  await dialog.getByLabel(/^Members/).fill(members.join(', '));
  await dialog.getByRole('button', { name: 'Create group' }).click();
  await page.getByRole('heading', { level: 2, name }).waitFor();
}

/** Types a message into the open chat and sends it with Enter. */
export async function sendMessage(page: Page, text: string): Promise<void> {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

/** The bubble of the message whose text is `text`. */
export function bubble(page: Page, text: string): Locator {
  return page.locator('article.bubble', { has: page.locator('p.body', { hasText: text }) });
}

/** Waits until the bubble of `text` shows `status` ticks (sent, delivered, read). */
export async function waitForTicks(page: Page, text: string, status: 'pending' | 'sent' | 'delivered' | 'read', timeoutMs = WAIT_MS): Promise<void> {
  await bubble(page, text).locator(`[data-ticks="${status}"]`).waitFor({ timeout: timeoutMs });
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
