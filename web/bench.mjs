// Browser timings in headless Chromium: wasm size, time to first image (cold and with cached
// weights) and the 32-step time for WebGPU and CPU-wasm.
// Usage: node web/bench.mjs [--weights DIR] [--runs N] [--webgpu-runs N] [--prompt WORDS] [--screenshot FILE]
//        node web/bench.mjs --profile   (only the per-kernel split of one WebGPU step)
// Build first (web/build.sh); weights default to ../weights.

import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, server } from './tests/helpers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const weights = arg('--weights', join(here, '..', 'weights'));
const runs = Number(arg('--runs', 3));
const webgpuRuns = Number(arg('--webgpu-runs', 1));
const prompt = arg('--prompt', 'hippo');
const screenshot = arg('--screenshot', null);

// The per-kernel split of one guided WebGPU step, from timestamp queries.
if (process.argv.includes('--profile')) {
  const srv = await server(weights);
  const browser = await launch({ webgpu: true });
  const page = await browser.newPage();
  await page.goto(`${srv.url}?backend=webgpu`);
  await page.waitForFunction(() => ['ready', 'failed'].includes(document.body.dataset.state), null, { timeout: 600_000 });
  const rows = await page.evaluate((p) => window.demo.client.profile({ prompt: p, seed: 1 }), prompt);
  const total = rows.reduce((sum, [, us]) => sum + us, 0);
  const byKernel = new Map();
  for (const [name, us] of rows) {
    const kind = name.replace(/^blocks\.\d+\./, 'blocks.*.');
    byKernel.set(kind, (byKernel.get(kind) ?? 0) + us);
  }
  console.log(`one guided step, ${rows.length} dispatches, ${(total / 1000).toFixed(0)} ms of GPU time:`);
  for (const [kind, us] of [...byKernel].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${kind.padEnd(32)} ${(us / 1000).toFixed(1).padStart(8)} ms  ${((us / total) * 100).toFixed(0).padStart(3)}%`);
  }
  await browser.close();
  await srv.close();
  process.exit(0);
}

const wasm = readFileSync(join(here, 'pkg', 'favicon_diffusor_bg.wasm'));
console.log(`wasm: ${(wasm.length / 1024).toFixed(0)} KiB raw, ${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(0)} KiB gzip`);

const srv = await server(weights);
const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;

async function open(page, query) {
  const t0 = Date.now();
  await page.goto(`${srv.url}?${query}`);
  await page.waitForFunction(() => ['ready', 'failed'].includes(document.body.dataset.state), null, { timeout: 600_000 });
  const error = await page.textContent('#error');
  if (error) throw new Error(error);
  return Date.now() - t0;
}

async function generate(page) {
  const t0 = Date.now();
  await page.click('#generate');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null, { timeout: 600_000 });
  return Date.now() - t0;
}

async function sample(page, p, runs) {
  const times = await page.evaluate(
    async ({ p, runs }) => {
      const out = [];
      for (let i = 0; i < runs; i++) {
        const { ms } = await window.demo.client.generate({ prompt: p, seed: i, sampler: 'ddpm', steps: 32, preview: 'x0' });
        out.push(ms);
      }
      return out;
    },
    { p, runs },
  );
  times.sort((a, b) => a - b);
  return `median ${seconds(times[Math.floor(runs / 2)])}, min ${seconds(times[0])} over ${runs}`;
}

// Time to first image on the page's defaults (auto backend, DDPM 32 steps, guided): cold, then
// with the weights in the browser cache.
{
  const browser = await launch({ webgpu: true });
  const page = await browser.newPage();
  const query = `prompt=${encodeURIComponent(prompt)}&seed=7`;
  for (const label of ['cold', 'cached weights']) {
    const ready = await open(page, query);
    const first = await generate(page);
    const info = await page.evaluate(() => window.demo.ready);
    console.log(`auto (${info.backend.backend}: ${info.backend.note ?? info.backend.adapter}), ${label}: ready ${seconds(ready)}, first image ${seconds(ready + first)}`);
    // The breakdown: the worker's stages, the page around them, the sample and a PNG encode.
    const png = await page.evaluate(async (size) => {
      const t0 = performance.now();
      await window.demo.client.export('png', new Uint8Array(size * size * 4));
      return performance.now() - t0;
    }, info.info.imageSize);
    const { wasm, weights, backend } = info.stages;
    const pageMs = ready - info.loadMs;
    const ms = (v) => `${v.toFixed(0)} ms`;
    console.log(
      `  page and worker start ${ms(pageMs)}, wasm ${ms(wasm)}, weights ${ms(weights)}, backend (adapter, device, pipelines; auto's probe) ${ms(backend)}, ` +
        `first sample ${ms(first)}, PNG ${ms(png)}`,
    );
  }
  if (screenshot) await page.screenshot({ path: screenshot });
  await browser.close();
}

for (const [backend, n] of [['webgpu', webgpuRuns], ['cpu', runs]]) {
  const browser = await launch({ webgpu: backend === 'webgpu' });
  const page = await browser.newPage();
  const ready = await open(page, `backend=${backend}`);
  const info = await page.evaluate(() => window.demo.ready);
  console.log(`${backend} (${info.backend.adapter}): ready ${seconds(ready)}`);
  console.log(`  32 steps guided ("${prompt}", guidance 3): ${await sample(page, prompt, n)}`);
  console.log(`  32 steps unguided (empty prompt): ${await sample(page, '', n)}`);
  await browser.close();
}
await srv.close();
