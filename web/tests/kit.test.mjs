// "Download kit" zips, in the worker, the same files `sample --kit` writes for the same request:
// the same names, and every image within one level of the native CLI's (on premultiplied
// values, see helpers.difference), for an opaque (RGB) and a transparent (RGBA) checkpoint.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  cargoExample, checkpoint, decodePng, difference, generate, icoImages, launch, openDemo, pixels, server, tempDir,
  unzipStored,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch({ webgpu: false });
});

after(async () => {
  await browser?.close();
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

for (const channels of [3, 4]) {
  test(`the_kit_download_matches_the_cli_kit_for_the_same_request_with_${channels}_channels`, async (t) => {
    const weights = await checkpoint({ channels, matte: channels === 4 ? 0.86 : 0 });
    const srv = await server(weights);
    try {
      const worst = await compareKits(weights, srv.url, channels);
      t.diagnostic(`largest difference, ${channels} channels: ${JSON.stringify(worst)}`);
    } finally {
      await srv.close();
    }
  });
}

async function compareKits(weights, url, channels) {
  const page = await openDemo(browser, url, 'backend=cpu&prompt=hippo&seed=7&sampler=ddim&steps=4');
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

  const worst = {};
  const within = (name, limit, { max }) => {
    worst[name] = Math.max(worst[name] ?? 0, Number(max.toFixed(3)));
    assert.ok(max <= limit, `${name}: ${max.toFixed(2)} levels apart`);
  };
  for (const name of names) {
    const native = await readFile(join(dir, name));
    const ours = zipped.get(name);
    if (name.endsWith('.png')) {
      const [a, b] = [decodePng(ours), decodePng(native)];
      assert.deepEqual([a.width, a.height], [b.width, b.height], name);
      within(name, 1, difference(a, b));
    } else if (name.endsWith('.svg')) {
      // Rendered by the browser.
      const [a, b] = [await pixels(page, dataUrl(ours, 'image/svg+xml')), await pixels(page, dataUrl(native, 'image/svg+xml'))];
      within(name, 1, difference(a, b));
    } else if (name.endsWith('.ico')) {
      const [a, b] = [icoImages(ours), icoImages(native)];
      assert.deepEqual(a.map((i) => i.width), b.map((i) => i.width), name);
      for (const [i, image] of a.entries()) {
        within(`${name} at ${image.width} px`, 1, difference(decodePng(image.png), decodePng(b[i].png)));
      }
    } else {
      sameApartFromColours(ours.toString('utf8'), native.toString('utf8'), name);
    }
  }
  // Transparency flows through: the manifest icons of an RGBA model keep transparent pixels.
  const big = decodePng(zipped.get('web-app-manifest-512x512.png'));
  const transparent = big.data.filter((v, i) => i % 4 === 3 && v < 255).length;
  assert.equal(transparent > 0, channels === 4, `${transparent} pixels below full alpha`);
  assert.deepEqual(page.errors, []);
  await page.close();
  return worst;
}
