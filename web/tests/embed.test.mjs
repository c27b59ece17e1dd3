// The one-tag embed diffuses the example site's own favicon.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkpoint, launch, pixels, server } from './helpers.mjs';

let srv, browser;

before(async () => {
  srv = await server(await checkpoint());
  browser = await launch({ webgpu: true });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

test('the_embed_example_changes_the_favicon_on_load_and_on_call', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${srv.url}embed-example.html`);
  const original = await pixels(page, `${srv.url}example-icon.svg`);
  const href = () => page.evaluate(() => document.querySelector('link[rel~="icon"]').href);
  await page.waitForFunction(() => document.querySelector('link[rel~="icon"]').href.startsWith('data:image/png'), null, {
    timeout: 120_000,
  });
  // The load-triggered run animates through previews; wait for it to settle, then compare.
  const diffused = await page.evaluate(() => window.faviconDiffusor.diffuse({ seed: 3 }));
  assert.equal(diffused, await href());
  const now = await pixels(page, diffused);
  assert.deepEqual([now.width, now.height], [64, 64]);
  let changed = 0;
  for (let i = 0; i < now.data.length; i += 4) {
    changed += Math.abs(now.data[i] - original.data[i]) > 8 ? 1 : 0;
  }
  assert.ok(changed > 64, `the favicon's pixels changed (${changed} of 4096)`);
  assert.deepEqual(errors, []);
  await page.close();
});
