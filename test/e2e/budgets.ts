// `node --import tsx test/e2e/budgets.ts`: the web app's budgets, measured on the production build (dist/web,
// built first when stale, as test/e2e/run.ts does) served by a real `parley serve`, in headless Chromium:
//
// - JavaScript shipped before the first chat renders (gzip, as a cold load with the browser cache disabled
//   fetches it; target under 250 KB), with CSS next to it;
// - time to interactive on a cold load from localhost: navigation start until the onboarding form (a new
//   profile) and until the chats list (a registered profile) can be used;
// - time to open a 10,000-message chat (seeded straight into the profile's IndexedDB store), and how many
//   rows the virtualised list keeps in the DOM while scrolling back to the first message.
//
// Prints a table and one JSON line; exits 1 when the JavaScript budget is exceeded.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { Page, Response } from 'playwright-core';
import { cliOk } from '../support/cli.ts';
import { NUMBERS, registerInBrowser, startWorld } from './support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const JS_BUDGET_BYTES = 250 * 1024;
const MESSAGES = Number(process.env.PARLEY_BUDGET_MESSAGES ?? 10_000);

function ensureBuild(): void {
  // run.ts with no test files would exit early: build the same way it does.
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'src/web/vite.config.ts', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('the web build failed');
}

/** Records every script and stylesheet the page loads, with its gzip size. */
function recordAssets(page: Page): { js: Map<string, number>; css: Map<string, number>; done: Promise<void>[] } {
  const out = { js: new Map<string, number>(), css: new Map<string, number>(), done: [] as Promise<void>[] };
  page.on('response', (res: Response) => {
    const type = res.headers()['content-type'] ?? '';
    const kind = type.includes('javascript') ? out.js : type.includes('text/css') ? out.css : undefined;
    if (!kind) return;
    out.done.push(
      res
        .body()
        .then((b) => void kind.set(new URL(res.url()).pathname, gzipSync(b, { level: 9 }).length))
        .catch(() => undefined),
    );
  });
  return out;
}

const kb = (n: number): string => `${(n / 1024).toFixed(1)} KB`;
const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  ensureBuild();
  const world = await startWorld('budgets');
  const seedFile = path.join(root, 'dist/web', `budget-seed-${process.pid}.js`);
  try {
    // ---- cold load of a new profile: onboarding
    const ctx = await world.context();
    const first = await ctx.newPage();
    const cdp = await ctx.newCDPSession(first);
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await first.goto('/');
    await first.getByRole('button', { name: 'Send code' }).waitFor();
    const onboardingMs = await first.evaluate(() => performance.now());
    await first.close();

    // ---- a registered profile with a long chat
    const bob = path.join(world.tmp, 'bob');
    const reg = await cliOk(['register', NUMBERS.bob.number, '--server', world.server.url, '--code', NUMBERS.bob.code, '--profile', bob, '--json']);
    const bobId = String(reg.lines[0]?.accountId);
    const page = await registerInBrowser(ctx, NUMBERS.alice);
    // Leave the app (it holds the profile's lock) for a same-origin page that does not start it.
    await page.goto('/assets/not-the-app.txt');
    await build({
      entryPoints: [path.join(root, 'test/e2e/budget-seed.ts')],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
      outfile: seedFile,
      logLevel: 'warning',
    });
    await page.addScriptTag({ url: `/${path.basename(seedFile)}` });
    const seedStart = Date.now();
    await page.evaluate(([n, peer, number]) => (globalThis as unknown as { parleySeed: (p: string, n: number, a: string, e: string) => Promise<number> }).parleySeed('parley', n, peer, number), [MESSAGES, bobId, NUMBERS.bob.number] as const);
    const seedMs = Date.now() - seedStart;
    rmSync(seedFile, { force: true });

    // ---- cold load of the registered profile: JS before the first chat renders, time to interactive
    const cold = await ctx.newPage();
    await page.close();
    const cdp2 = await ctx.newCDPSession(cold);
    await cdp2.send('Network.setCacheDisabled', { cacheDisabled: true });
    const assets = recordAssets(cold);
    await cold.goto('/');
    const row = cold.getByRole('button', { name: new RegExp(`^\\${NUMBERS.bob.number}`) });
    await row.waitFor({ timeout: 60_000 });
    const chatsMs = await cold.evaluate(() => performance.now());
    await Promise.all(assets.done);
    const jsBeforeChats = sum(assets.js);
    const cssBeforeChats = sum(assets.css);

    // ---- open the 10,000-message chat
    const t0 = await cold.evaluate(() => performance.now());
    await row.click();
    await cold.locator('article.bubble', { hasText: `Message ${MESSAGES}` }).waitFor({ timeout: 60_000 });
    const openMs = (await cold.evaluate(() => performance.now())) - t0;
    const rowsInDom = await cold.locator('.vrow').count();

    // ---- scroll back to the first message (older pages load as the top is reached)
    const s0 = Date.now();
    let maxRows = rowsInDom;
    let steps = 0;
    for (; steps < Number(process.env.PARLEY_BUDGET_STEPS ?? 600); steps++) {
      if ((await cold.locator('article.bubble', { hasText: /^Message 1(\D|$)/ }).count()) > 0) break;
      await cold.locator('.messages').evaluate((el) => el.scrollTo(0, 0));
      await cold.waitForTimeout(40);
      if (steps % 25 === 0) maxRows = Math.max(maxRows, await cold.locator('.vrow').count());
    }
    if (process.env.PARLEY_BUDGET_DEBUG) {
      console.log(await cold.locator('.messages').evaluate((el) => [el.scrollTop, el.scrollHeight, el.querySelector('.loading-more')?.textContent, el.querySelector('article.bubble')?.textContent]));
    }
    const reachedFirst = (await cold.locator('article.bubble', { hasText: /^Message 1(\D|$)/ }).count()) > 0;
    const scrollMs = Date.now() - s0;

    const result = {
      jsGzipBeforeFirstChat: jsBeforeChats,
      cssGzipBeforeFirstChat: cssBeforeChats,
      jsFiles: Object.fromEntries(assets.js),
      ttiOnboardingMs: Math.round(onboardingMs),
      ttiChatsListMs: Math.round(chatsMs),
      seededMessages: MESSAGES,
      seedMs,
      openChatMs: Math.round(openMs),
      rowsInDomAfterOpen: rowsInDom,
      maxRowsInDomWhileScrolling: maxRows,
      scrolledToFirstMessage: reachedFirst,
      scrollToFirstMs: scrollMs,
    };
    console.log('\nParley web budgets (production build, headless Chromium, localhost)');
    console.log(`  JS before the first chat renders:  ${kb(jsBeforeChats)} gzip (budget ${kb(JS_BUDGET_BYTES)})  + CSS ${kb(cssBeforeChats)}`);
    for (const [file, size] of assets.js) console.log(`    ${file}  ${kb(size)}`);
    console.log(`  Time to interactive, cold, new profile (onboarding):  ${Math.round(onboardingMs)} ms`);
    console.log(`  Time to interactive, cold, registered (chats list with ${MESSAGES} messages stored):  ${Math.round(chatsMs)} ms`);
    console.log(`  Open a ${MESSAGES}-message chat (click to newest bubble shown):  ${Math.round(openMs)} ms`);
    console.log(`  Rows in the DOM: ${rowsInDom} after opening, at most ${maxRows} while scrolling`);
    console.log(`  Scrolled back to the first message: ${reachedFirst ? 'yes' : 'NO'} in ${(scrollMs / 1000).toFixed(1)} s (${steps} scroll steps)`);
    console.log(JSON.stringify(result));
    if (jsBeforeChats > JS_BUDGET_BYTES) process.exitCode = 1;
  } finally {
    rmSync(seedFile, { force: true });
    await world.close();
  }
}

await main();
