// The demo on WebGPU (SwiftShader in headless Chromium), against the native CPU path.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  alphaCounts, canvasPixels, checkpoint, close, dataUrl, difference, generate, icoImages, launch, nativeReference,
  openDemo, pixels, server, tempDir,
} from './helpers.mjs';

const REQUEST = { prompt: 'hippo', seed: 7, steps: 4, sampler: 'ddim' };
const QUERY = `backend=webgpu&prompt=hippo&seed=7&steps=4&sampler=ddim`;
let weights, srv, rgbaWeights, rgbaSrv, browser;

before(async () => {
  weights = await checkpoint();
  srv = await server(weights);
  // Four channels: a checkpoint that draws transparency (premultiplied RGBA).
  rgbaWeights = await checkpoint({ channels: 4, matte: 0.86 });
  rgbaSrv = await server(rgbaWeights);
  browser = await launch({ webgpu: true });
});

after(async () => {
  await browser?.close();
  await srv?.close();
  await rgbaSrv?.close();
});

// Counts the favicon's changes from now on.
const countFaviconChanges = (page) =>
  page.evaluate(() => {
    window.faviconChanges = 0;
    const link = document.querySelector('link[rel~="icon"]');
    new MutationObserver(() => window.faviconChanges++).observe(link, { attributes: true, attributeFilter: ['href'] });
  });

test('webgpu_is_detected_with_a_named_adapter', async () => {
  const page = await openDemo(browser, srv.url, 'backend=auto');
  const ready = await page.evaluate(() => window.demo.ready);
  assert.ok(ready, await page.textContent('#error'));
  // Auto on a software adapter measures both backends and says which it took.
  if (ready.backend.backend === 'webgpu') assert.match(ready.backend.adapter, /\S/);
  assert.match(ready.backend.note ?? '', /software adapter: \d+ ms\/step there vs \d+ ms\/step on the CPU; using (WebGPU|the CPU)/);
  const line = await page.textContent('#backend');
  assert.match(line, /WebGPU|CPU/);
  await page.close();

  const forced = await openDemo(browser, srv.url, 'backend=webgpu');
  const backend = await forced.evaluate(() => window.demo.ready.backend);
  assert.equal(backend.backend, 'webgpu');
  assert.equal(backend.software, true, `SwiftShader is a software adapter: ${JSON.stringify(backend)}`);
  assert.match(await forced.textContent('#backend'), /^WebGPU · .+ \(software\)/);
  await forced.close();
});

test('generate_sets_a_64px_png_favicon_equal_to_the_native_cpu_image', async () => {
  const reference = await nativeReference(weights, REQUEST);
  const page = await openDemo(browser, srv.url, QUERY);
  await countFaviconChanges(page);
  const favicon = await generate(page);
  assert.match(favicon, /^data:image\/png;base64,/);
  const got = await pixels(page, favicon);
  const want = await pixels(page, dataUrl(reference));
  assert.deepEqual([got.width, got.height], [64, 64]);
  const diff = difference(got, want);
  assert.ok(close(diff), `WebGPU vs native CPU: ${JSON.stringify(diff)}`);
  // One x0 preview per step, then the final image.
  assert.ok((await page.evaluate(() => window.faviconChanges)) >= REQUEST.steps, 'the favicon animates every step');
  assert.match(await page.title(), /^hippo #7/);
  assert.match(await page.textContent('#status'), /done: 4 steps in [\d.]+ s · [\d.]+ steps\/s/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('diffuse_this_favicon_matches_native_img2img_from_the_same_input', async () => {
  const page = await openDemo(browser, srv.url, QUERY);
  await page.fill('#strength', '0.6');
  await page.click('#diffuse');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null, { timeout: 120_000 });
  assert.equal(await page.textContent('#error'), '');
  // The page shows the input it took from its own favicon; the native path diffuses that same PNG.
  const input = await page.getAttribute('#diffuse-input', 'src');
  const inputFile = join(await tempDir('init'), 'init.png');
  await writeFile(inputFile, Buffer.from(input.split(',')[1], 'base64'));
  const reference = await nativeReference(weights, { ...REQUEST, init: inputFile, strength: 0.6 });
  const favicon = await page.evaluate(() => document.querySelector('link[rel~="icon"]').href);
  const diff = difference(await pixels(page, favicon), await pixels(page, dataUrl(reference)));
  assert.ok(close(diff), `img2img WebGPU vs native CPU: ${JSON.stringify(diff)}`);
  await page.close();
});

test('diffusing_an_uploaded_image_matches_native_img2img_of_that_file', async () => {
  // Any 64×64 PNG will do as the upload: the native CPU image of another seed.
  const upload = join(await tempDir('upload'), 'upload.png');
  await writeFile(upload, await nativeReference(weights, { ...REQUEST, seed: 11 }));
  const reference = await nativeReference(weights, { ...REQUEST, init: upload, strength: 0.8 });
  const page = await openDemo(browser, srv.url, QUERY);
  page.on('filechooser', (chooser) => chooser.setFiles(upload));
  await page.selectOption('#diffuse-source', 'upload');
  await page.waitForFunction(() => !document.getElementById('diffuse-input').hidden);
  await page.fill('#strength', '0.8');
  await page.click('#diffuse');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null, { timeout: 120_000 });
  assert.equal(await page.textContent('#error'), '');
  assert.match(await page.textContent('#status'), /diffused the uploaded image at strength 0.8/);
  const favicon = await page.evaluate(() => document.querySelector('link[rel~="icon"]').href);
  const diff = difference(await pixels(page, favicon), await pixels(page, dataUrl(reference)));
  assert.ok(close(diff), `uploaded img2img WebGPU vs native CPU: ${JSON.stringify(diff)}`);
  await page.close();
});

test('downloads_give_a_png_and_a_four_size_ico', async () => {
  const page = await openDemo(browser, srv.url, QUERY);
  await generate(page);
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('#download-png')]);
  assert.equal(png.suggestedFilename(), 'hippo-7.png');
  const pngBytes = await readDownload(png);
  assert.deepEqual([...pngBytes.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  const [ico] = await Promise.all([page.waitForEvent('download'), page.click('#download-ico')]);
  const icoBytes = await readDownload(ico);
  assert.deepEqual([...icoBytes.subarray(0, 6)], [0, 0, 1, 0, 4, 0], 'ICO header with 4 images');
  assert.deepEqual([0, 1, 2, 3].map((i) => icoBytes[6 + 16 * i]), [16, 32, 48, 64]);
  await page.close();
});

test('an_rgba_checkpoint_puts_the_native_alpha_on_the_favicon_canvas_and_downloads', async () => {
  const reference = await nativeReference(rgbaWeights, REQUEST);
  const page = await openDemo(browser, rgbaSrv.url, QUERY);
  const want = await pixels(page, dataUrl(reference));
  const counts = alphaCounts(want);
  assert.ok(counts.clear && counts.partial && counts.opaque, `the reference has every kind of alpha: ${JSON.stringify(counts)}`);
  assert.match(await page.textContent('#backend'), /RGBA/);
  const favicon = await generate(page);
  for (const [what, got] of [['favicon', await pixels(page, favicon)], ['canvas', await canvasPixels(page, 'view')]]) {
    assert.deepEqual([got.width, got.height], [64, 64]);
    const diff = difference(got, want);
    assert.ok(close(diff), `${what} (WebGPU) vs native CPU, alpha included: ${JSON.stringify(diff)}`);
  }
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('#download-png')]);
  const downloaded = await pixels(page, dataUrl(await readDownload(png)));
  assert.ok(close(difference(downloaded, want)), 'the PNG download keeps the alpha');
  const [ico] = await Promise.all([page.waitForEvent('download'), page.click('#download-ico')]);
  const nativeIco = icoImages(await nativeReference(rgbaWeights, REQUEST, 'ico'));
  const ours = icoImages(await readDownload(ico));
  assert.deepEqual(ours.map((e) => e.width), [16, 32, 48, 64]);
  for (const [i, entry] of ours.entries()) {
    const diff = difference(await pixels(page, dataUrl(entry.png)), await pixels(page, dataUrl(nativeIco[i].png)));
    assert.ok(close(diff), `ICO ${entry.width} px vs native: ${JSON.stringify(diff)}`);
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('an_rgba_favicon_diffuses_like_native_img2img_of_the_same_rgba_input', async () => {
  const page = await openDemo(browser, rgbaSrv.url, QUERY);
  await generate(page);
  await page.fill('#strength', '0.6');
  await page.click('#diffuse');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null, { timeout: 120_000 });
  assert.equal(await page.textContent('#error'), '');
  const input = await page.getAttribute('#diffuse-input', 'src');
  const inputBytes = Buffer.from(input.split(',')[1], 'base64');
  const counts = alphaCounts(await pixels(page, input));
  assert.ok(counts.clear && counts.opaque, `the input favicon is transparent in places: ${JSON.stringify(counts)}`);
  const inputFile = join(await tempDir('init'), 'init.png');
  await writeFile(inputFile, inputBytes);
  const reference = await nativeReference(rgbaWeights, { ...REQUEST, init: inputFile, strength: 0.6 });
  const favicon = await page.evaluate(() => document.querySelector('link[rel~="icon"]').href);
  const diff = difference(await pixels(page, favicon), await pixels(page, dataUrl(reference)));
  assert.ok(close(diff), `RGBA img2img WebGPU vs native CPU: ${JSON.stringify(diff)}`);
  await page.close();
});

async function readDownload(download) {
  const stream = await download.createReadStream();
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('a_lost_device_is_reported_and_the_next_generation_recovers', async () => {
  const page = await openDemo(browser, srv.url, QUERY);
  const first = await generate(page);
  await page.evaluate(() => window.demo.client.loseDevice());
  const second = await generate(page);
  const notices = await page.evaluate(() => window.demo.notices);
  assert.ok(notices.some((n) => /device was lost .*re-initialised/.test(n)), JSON.stringify(notices));
  assert.match(await page.textContent('#notice'), /lost/);
  const diff = difference(await pixels(page, first), await pixels(page, second));
  assert.ok(diff.max <= 1, `same request after recovery, same image: ${JSON.stringify(diff)}`);
  await page.close();
});

test('fifty_generations_in_a_row_neither_fail_nor_slow_down', async () => {
  const page = await openDemo(browser, srv.url, 'backend=webgpu&prompt=hippo&seed=1&steps=2&sampler=ddim');
  await page.fill('#bench-n', '50');
  await page.click('#benchmark');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null, { timeout: 300_000 });
  assert.equal(await page.textContent('#error'), '');
  const { times } = await page.evaluate(() => window.demo.benchmark);
  assert.equal(times.length, 50);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const early = median(times.slice(1, 11));
  const late = median(times.slice(-10));
  assert.ok(late <= early * 2 + 20, `median of runs 2–11: ${early.toFixed(1)} ms, of the last 10: ${late.toFixed(1)} ms`);
  assert.match(await page.textContent('#bench-result'), /50 generations · median [\d.]+ s · min [\d.]+ s/);
  await page.close();
});
