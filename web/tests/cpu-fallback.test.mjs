// Without WebGPU the page falls back to the CPU engine in wasm, and draws the same image
// as the native CPU path.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  alphaCounts, canvasPixels, checkpoint, close, dataUrl, difference, generate, launch, nativeReference, openDemo, pixels,
  server,
} from './helpers.mjs';

let weights, srv, browser;

before(async () => {
  weights = await checkpoint();
  srv = await server(weights);
  browser = await launch({ webgpu: false });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

test('without_webgpu_the_cpu_fallback_draws_the_native_image', async () => {
  const request = { prompt: 'hippo', seed: 7, steps: 8, sampler: 'ddpm' };
  const reference = await nativeReference(weights, request);
  const page = await openDemo(browser, srv.url, 'backend=auto&prompt=hippo&seed=7&sampler=ddpm');
  const ready = await page.evaluate(() => window.demo.ready);
  assert.ok(ready, await page.textContent('#error'));
  assert.equal(ready.backend.backend, 'cpu');
  assert.equal(ready.backend.note, 'WebGPU is not available here; using the CPU');
  assert.match(await page.textContent('#backend'), /^CPU · wasm/);
  const favicon = await generate(page);
  assert.match(favicon, /^data:image\/png;base64,/);
  const got = await pixels(page, favicon);
  assert.deepEqual([got.width, got.height], [64, 64]);
  const diff = difference(got, await pixels(page, dataUrl(reference)));
  assert.ok(close(diff), `CPU wasm vs native CPU: ${JSON.stringify(diff)}`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the_cpu_fallback_draws_an_rgba_checkpoints_native_alpha', async () => {
  const rgbaWeights = await checkpoint({ channels: 4, matte: 0.86 });
  const rgbaSrv = await server(rgbaWeights);
  try {
    const request = { prompt: 'hippo', seed: 7, steps: 8, sampler: 'ddpm' };
    const reference = await nativeReference(rgbaWeights, request);
    const page = await openDemo(browser, rgbaSrv.url, 'backend=cpu&prompt=hippo&seed=7&sampler=ddpm');
    const want = await pixels(page, dataUrl(reference));
    const counts = alphaCounts(want);
    assert.ok(counts.clear && counts.partial && counts.opaque, `the reference has every kind of alpha: ${JSON.stringify(counts)}`);
    const favicon = await generate(page);
    for (const [what, got] of [['favicon', await pixels(page, favicon)], ['canvas', await canvasPixels(page, 'view')]]) {
      const diff = difference(got, want);
      assert.ok(close(diff), `${what} (CPU wasm) vs native CPU, alpha included: ${JSON.stringify(diff)}`);
    }
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    await rgbaSrv.close();
  }
});
