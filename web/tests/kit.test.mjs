// "Download kit" zips, in the worker, the same files `sample --kit` writes for the same request:
// the same names, and every image within one level of the native CLI's.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  cargoExample, checkpoint, generate, icoImages, launch, maxDifference, openDemo, pixels, server, tempDir, unzipStored,
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

async function readDownload(download) {
  const chunks = [];
  for await (const chunk of await download.createReadStream()) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const dataUrl = (bytes, type) => `data:${type};base64,${Buffer.from(bytes).toString('base64')}`;
const COLOUR = /#[0-9a-f]{6}/g;

// Colours may differ by a level between the two runs; everything else must be equal.
function sameApartFromColours(browserText, nativeText, file) {
  assert.equal(browserText.replace(COLOUR, '#'), nativeText.replace(COLOUR, '#'), file);
  const levels = (text) => [...text.matchAll(COLOUR)].flatMap(([hex]) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  const [a, b] = [levels(browserText), levels(nativeText)];
  assert.ok(a.every((v, i) => Math.abs(v - b[i]) <= 1), `${file}: colours ${a} vs ${b}`);
}

test('the_kit_download_matches_the_cli_kit_for_the_same_request', async () => {
  const page = await openDemo(browser, srv.url, 'backend=cpu&prompt=hippo&seed=7&sampler=ddim&steps=4');
  await generate(page);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-kit')]);
  assert.equal(download.suggestedFilename(), 'hippo-7-favicon-kit.zip');
  const zipped = unzipStored(await readDownload(download));

  const dir = await tempDir('kit');
  const args = ['--backend', 'cpu', '--weights', weights, '--prompt', 'hippo', '--seed', '7', '--sampler', 'ddim'];
  await cargoExample('sample', [...args, '--steps', '4', '--kit', dir]);
  const names = (await readdir(dir)).sort();
  assert.deepEqual([...zipped.keys()].sort(), names);
  assert.equal(names.length, 8);

  for (const name of names) {
    const native = await readFile(join(dir, name));
    const ours = zipped.get(name);
    if (name.endsWith('.png') || name.endsWith('.svg')) {
      const type = name.endsWith('.png') ? 'image/png' : 'image/svg+xml';
      const [a, b] = [await pixels(page, dataUrl(ours, type)), await pixels(page, dataUrl(native, type))];
      assert.deepEqual([a.width, a.height], [b.width, b.height], name);
      assert.ok(maxDifference(a, b) <= 1, `${name}: ${maxDifference(a, b)} levels apart`);
    } else if (name.endsWith('.ico')) {
      const [a, b] = [icoImages(ours), icoImages(native)];
      assert.deepEqual(a.map((i) => i.width), b.map((i) => i.width), name);
      for (const [i, image] of a.entries()) {
        const [pa, pb] = [await pixels(page, dataUrl(image.png, 'image/png')), await pixels(page, dataUrl(b[i].png, 'image/png'))];
        assert.ok(maxDifference(pa, pb) <= 1, `${name} at ${image.width} px: ${maxDifference(pa, pb)} levels apart`);
      }
    } else {
      sameApartFromColours(ours.toString('utf8'), native.toString('utf8'), name);
    }
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});
