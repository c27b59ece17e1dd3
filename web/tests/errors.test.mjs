// Bad or missing weights end in a clear message on the page, never a hang.

import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { checkpoint, launch, openDemo, server, tempDir } from './helpers.mjs';

let good, browser;

before(async () => {
  good = await checkpoint();
  browser = await launch({ webgpu: true });
});

after(async () => {
  await browser?.close();
});

async function pageError(weights) {
  const srv = await server(weights);
  try {
    const started = Date.now();
    const page = await openDemo(browser, srv.url, 'backend=auto');
    const state = await page.evaluate(() => document.body.dataset.state);
    const message = await page.textContent('#error');
    await page.close();
    return { state, message, seconds: (Date.now() - started) / 1000 };
  } finally {
    await srv.close();
  }
}

test('a_corrupt_weights_file_shows_the_error_and_does_not_hang', async () => {
  const dir = await tempDir('corrupt');
  await copyFile(join(good, 'config.json'), join(dir, 'config.json'));
  const bytes = await readFile(join(good, 'model.safetensors'));
  await writeFile(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length >> 1));
  const { state, message, seconds } = await pageError(dir);
  assert.equal(state, 'failed');
  assert.match(message, /bad checkpoint model\.safetensors/);
  assert.ok(seconds < 60, `failed within ${seconds} s`);
});

test('missing_weights_name_the_url_and_the_http_status', async () => {
  const { state, message } = await pageError(await tempDir('empty'));
  assert.equal(state, 'failed');
  assert.match(message, /cannot fetch http:\/\/127\.0\.0\.1:\d+\/weights\/config\.json: HTTP 404/);
});

test('a_config_that_does_not_match_the_weights_names_the_tensor', async () => {
  const dir = await tempDir('mismatch');
  const config = JSON.parse(await readFile(join(good, 'config.json'), 'utf8'));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, dim: 48 }));
  await copyFile(join(good, 'model.safetensors'), join(dir, 'model.safetensors'));
  const { state, message } = await pageError(dir);
  assert.equal(state, 'failed');
  assert.match(message, /tensor `[\w.]+` has shape \[\d+(, \d+)*\], expected/);
});
