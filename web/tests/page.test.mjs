// The page as a user meets it: the form mirrored into a shareable URL, one status line that
// each run or error replaces, and a phone-width layout without sideways scrolling.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { checkpoint, generate, launch, openDemo, pixels, server } from './helpers.mjs';

let srv, browser;
// Screenshots for a person to look at: $FD_SCREENSHOTS, else a folder under the temp dir.
const shots = process.env.FD_SCREENSHOTS ?? join(tmpdir(), 'fd-screenshots');

before(async () => {
  srv = await server(await checkpoint());
  browser = await launch({ webgpu: false });
  await mkdir(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

const form = (page) =>
  page.evaluate(() =>
    Object.fromEntries(['prompt', 'seed', 'steps', 'sampler', 'guidance', 'backend-choice'].map((id) => [id, document.getElementById(id).value])),
  );

test('the_form_round_trips_through_the_url_and_a_link_reproduces_the_image', async () => {
  const page = await openDemo(browser, srv.url, 'prompt=sun&seed=42&sampler=ddim&steps=3&guidance=2.5&backend=cpu');
  assert.deepEqual(await form(page), {
    prompt: 'sun', seed: '42', steps: '3', sampler: 'ddim', guidance: '2.5', 'backend-choice': 'cpu',
  });
  await page.fill('#seed', '43');
  await page.fill('#guidance', '4');
  const query = new URLSearchParams(await page.evaluate(() => location.search));
  assert.deepEqual(
    ['prompt', 'seed', 'steps', 'sampler', 'guidance', 'backend'].map((k) => query.get(k)),
    ['sun', '43', '3', 'ddim', '4', 'cpu'],
  );
  const first = await generate(page);
  const shared = await openDemo(browser, srv.url, await page.evaluate(() => location.search.slice(1)));
  assert.deepEqual(await form(shared), await form(page));
  const second = await generate(shared);
  const [a, b] = [await pixels(page, first), await pixels(shared, second)];
  assert.deepEqual(b.data, a.data, 'the shared link draws the same image');
  await page.close();
  await shared.close();
});

test('without_webgpu_the_page_says_so_in_one_line', async () => {
  const page = await openDemo(browser, srv.url, 'backend=auto');
  assert.equal(await page.evaluate(() => window.demo.ready.backend.note), 'WebGPU is not available here; using the CPU');
  assert.match(await page.textContent('#backend'), /^CPU · wasm \(simd128\) · .* — WebGPU is not available here; using the CPU$/);
  await page.close();
});

test('a_new_run_or_error_replaces_the_previous_status_line', async () => {
  const page = await openDemo(browser, srv.url, 'backend=cpu&prompt=hippo&sampler=ddim&steps=2');
  await generate(page);
  assert.match(await page.textContent('#status'), /^done: /);
  await page.fill('#prompt', 'zebra');
  await page.click('#generate');
  await page.waitForFunction(() => document.body.dataset.state === 'failed');
  assert.equal(await page.textContent('#status'), 'Failed.');
  assert.match(await page.textContent('#error'), /unknown prompt word `zebra`/);
  await page.fill('#prompt', 'hippo');
  await generate(page);
  assert.match(await page.textContent('#status'), /^done: /);
  assert.equal(await page.isVisible('#error'), false);
  await page.close();
});

test('at_390px_nothing_scrolls_sideways_and_long_urls_wrap', async () => {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.goto(`${srv.url}?backend=cpu&prompt=hippo&sampler=ddim&steps=2`);
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 120_000 });
  await page.click('#generate');
  await page.waitForFunction(() => document.body.dataset.state === 'done', null, { timeout: 120_000 });
  await page.screenshot({ path: join(shots, 'phone-ready.png'), fullPage: true });
  assert.equal(await page.evaluate(() => window.innerWidth), 390);
  assert.equal(await overflow(), 0, 'the page is no wider than the screen');

  // A missing checkpoint at a long URL: the error names it, wrapped within the screen.
  const missing = `${srv.url}weights/${'a-very-long-folder-name-without-any-spaces-'.repeat(4)}/`;
  await page.goto(`${srv.url}?weights=${encodeURIComponent(missing)}`);
  await page.waitForFunction(() => document.body.dataset.state === 'failed', null, { timeout: 120_000 });
  assert.match(await page.textContent('#error'), /cannot fetch .*a-very-long-folder-name/);
  await page.screenshot({ path: join(shots, 'phone-error.png'), fullPage: true });
  assert.equal(await overflow(), 0, 'the long URL wraps');
  await page.close();
});
