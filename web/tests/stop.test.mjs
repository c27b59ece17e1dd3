// Stop ends a running generation within half a second, on WebGPU and on the CPU, and the next
// generation starts cleanly: it draws the native image of its own request.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkpoint, close, dataUrl, difference, generate, launch, nativeReference, openDemo, pixels, server } from './helpers.mjs';

// A tiny model with 1,000 timesteps: DDPM visits all of them, a run long enough to stop.
const TIMESTEPS = 1000;
let weights, srv;

before(async () => {
  weights = await checkpoint({ timesteps: TIMESTEPS });
  srv = await server(weights);
});

after(async () => {
  await srv?.close();
});

// Starts a DDPM run, waits until a few steps are done, then clicks Stop; returns the
// milliseconds from the click until the worker said it stopped.
async function stopMidRun(page) {
  await page.selectOption('#sampler', 'ddpm');
  await page.click('#generate');
  await page.waitForFunction(() => /^step ([3-9]|\d\d+)\//.test(document.getElementById('status').textContent), null, {
    timeout: 120_000,
  });
  const ms = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const start = performance.now();
        const watch = new MutationObserver(() => {
          if (document.body.dataset.state !== 'running') {
            watch.disconnect();
            resolve(performance.now() - start);
          }
        });
        watch.observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
        document.getElementById('stop').click();
      }),
  );
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'stopped', await page.textContent('#error'));
  const status = await page.textContent('#status');
  assert.match(status, new RegExp(`^stopped after step \\d+ of ${TIMESTEPS}$`));
  // Nothing of the stopped run arrives afterwards.
  const favicon = await page.evaluate(() => document.querySelector('link[rel~="icon"]').href);
  await page.waitForTimeout(600);
  assert.equal(await page.textContent('#status'), status);
  assert.equal(await page.evaluate(() => document.querySelector('link[rel~="icon"]').href), favicon);
  return ms;
}

for (const backend of ['webgpu', 'cpu']) {
  test(`stop_ends_a_${backend}_run_within_half_a_second_and_the_next_run_is_clean`, async (t) => {
    const browser = await launch({ webgpu: backend === 'webgpu' });
    try {
      const page = await openDemo(browser, srv.url, `backend=${backend}&prompt=hippo&seed=7`);
      assert.equal(await page.evaluate(() => window.demo.ready?.backend.backend), backend, await page.textContent('#error'));
      const first = await stopMidRun(page);
      assert.ok(first < 500, `the first run stopped ${first.toFixed(0)} ms after the click`);

      // The next generation runs to the end and draws its own request's image.
      const request = { prompt: 'hippo', seed: 7, steps: 4, sampler: 'ddim' };
      await page.selectOption('#sampler', 'ddim');
      await page.fill('#steps', '4');
      const favicon = await generate(page);
      const diff = difference(await pixels(page, favicon), await pixels(page, dataUrl(await nativeReference(weights, request))));
      assert.ok(close(diff), `after a stop, ${backend} vs native CPU: ${JSON.stringify(diff)}`);

      // Once the engine has measured its speed, a stop is still as quick.
      const second = await stopMidRun(page);
      assert.ok(second < 500, `the second run stopped ${second.toFixed(0)} ms after the click`);
      t.diagnostic(`${backend}: stopped ${first.toFixed(0)} ms and ${second.toFixed(0)} ms after the click`);
      assert.deepEqual(page.errors, []);
      await page.close();
    } finally {
      await browser.close();
    }
  });
}
