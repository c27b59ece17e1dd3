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

test('each_run_diffuses_the_original_favicon_not_the_last_result', async () => {
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed-example.html`);
  await page.waitForFunction(() => document.querySelector('link[rel~="icon"]').href.startsWith('data:image/png'), null, {
    timeout: 120_000,
  });
  // A call during a run joins that run, so each seeded call first waits for the one before.
  const settle = () => page.evaluate(() => window.faviconDiffusor.diffuse());
  await settle();
  // The same seed twice, with a hover run between: equal only if both start from the original.
  const first = await page.evaluate(() => window.faviconDiffusor.diffuse({ seed: 5 }));
  await page.evaluate(() => document.documentElement.dispatchEvent(new MouseEvent('mouseenter')));
  await settle();
  const again = await page.evaluate(() => window.faviconDiffusor.diffuse({ seed: 5 }));
  const [a, b] = [await pixels(page, first), await pixels(page, again)];
  assert.deepEqual(b.data, a.data, 'the icon did not drift');
  await page.close();
});

test('the_example_button_keeps_the_logo_closer_than_a_fresh_icon', async () => {
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed-example.html`);
  const original = await pixels(page, `${srv.url}example-icon.svg`);
  const distance = async (href) => {
    const now = await pixels(page, href);
    let sum = 0;
    for (let i = 0; i < now.data.length; i++) if (i % 4 !== 3) sum += Math.abs(now.data[i] - original.data[i]);
    return sum / (now.data.length * 0.75);
  };
  await page.evaluate(() => window.faviconDiffusor.diffuse());
  const button = Number(await page.getAttribute('#again', 'data-strength'));
  assert.ok(button > 0 && button < 1, `the button's strength ${button} keeps part of the logo`);
  const kept = await distance(await page.evaluate((s) => window.faviconDiffusor.diffuse({ seed: 4, strength: s }), button));
  const fresh = await distance(await page.evaluate(() => window.faviconDiffusor.diffuse({ seed: 4, strength: 1 })));
  assert.ok(kept < fresh, `mean distance from the logo: ${kept.toFixed(1)} at ${button}, ${fresh.toFixed(1)} from noise`);
  await page.close();
});
