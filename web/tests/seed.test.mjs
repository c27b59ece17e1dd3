// A checkpoint in the seed's browser format (WTS1: no x0 head), converted, draws in the page
// what the seed's ε-only DDPM loop draws: the PyTorch twin's result (train/seed_fixtures.py),
// on the wasm CPU path and on WebGPU.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { close, difference, generate, launch, openDemo, pixels, seedCheckpoint, server } from './helpers.mjs';

let seed, srv, browser;

before(async () => {
  seed = await seedCheckpoint();
  srv = await server(seed.weights);
  browser = await launch({ webgpu: true });
});

after(async () => {
  await browser?.close();
  await srv?.close();
});

for (const backend of ['cpu', 'webgpu']) {
  test(`a_converted_wts1_checkpoint_samples_the_seed_loop_on_${backend}`, async () => {
    const page = await openDemo(browser, srv.url, `backend=${backend}&prompt=&seed=${seed.seed}&sampler=ddpm`);
    const ready = await page.evaluate(() => window.demo.ready);
    assert.ok(ready, await page.textContent('#error'));
    assert.equal(ready.backend.backend, backend);
    const got = await pixels(page, await generate(page));
    const diff = difference(got, seed.expected);
    assert.ok(close(diff), `${backend} vs the seed's loop in PyTorch: ${JSON.stringify(diff)}`);
    assert.match(await page.textContent('#status'), new RegExp(`done: ${seed.timesteps} steps`));
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}
