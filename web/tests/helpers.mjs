// Shared by the browser tests: Chromium, the static server, checkpoints and native references.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';

const run = promisify(execFile);
export const repo = fileURLToPath(new URL('../..', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

// A fresh profile per browser, so no cached weights or state leak between tests. Returns a
// browser context (playwright passes --user-data-dir itself for a persistent context).
export async function launch({ webgpu = true } = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'fd-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  else args.push('--disable-features=WebGPU');
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    await rm(profile, { recursive: true, force: true });
  };
  return context;
}

// The demo's server on a free port, with `weights` as its /weights/ folder.
export async function server(weights) {
  const srv = await serve({ port: 0, weights });
  const url = `http://127.0.0.1:${srv.address().port}/`;
  return { url, close: () => new Promise((done) => srv.close(done)) };
}

export async function cargoExample(name, args) {
  const { stdout } = await run('cargo', ['run', '--quiet', '--release', '--example', name, '--', ...args], {
    cwd: repo,
    maxBuffer: 1 << 24,
  });
  return stdout;
}

export async function tempDir(name) {
  return mkdtemp(join(tmpdir(), `fd-${name}-`));
}

// A random checkpoint folder (tiny unless told otherwise; `timesteps` for long DDPM runs).
// Channels 4 draws transparency, its colour planes over `matte` (the shipped RGBA model's is 0.86).
export async function checkpoint({ tiny = true, seed = 1, channels = 3, matte = 0, timesteps } = {}) {
  const dir = await tempDir('weights');
  const args = [dir, '--seed', String(seed), '--channels', String(channels), '--matte', String(matte)];
  if (tiny) args.push('--tiny');
  if (timesteps) args.push('--timesteps', String(timesteps));
  await cargoExample('random_checkpoint', args);
  return dir;
}

// The native CPU path's PNG (or `ext`: ico, gif) for the same request: the independent reference.
export async function nativeReference(weights, { prompt, seed, steps, sampler, guidance = 3, init, strength }, ext = 'png') {
  const out = join(await tempDir('ref'), `ref.${ext}`);
  const args = ['--backend', 'cpu', '--weights', weights, '--prompt', prompt, '--seed', String(seed)];
  args.push('--steps', String(steps), '--sampler', sampler, '--guidance', String(guidance), '--out', out);
  if (init) args.push('--init', init, '--strength', String(strength));
  await cargoExample('sample', args);
  return readFile(out);
}

// RGBA pixels of an image URL, decoded by the browser.
export async function pixels(page, src) {
  return page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    return { width: img.naturalWidth, height: img.naturalHeight, data: [...ctx.getImageData(0, 0, canvas.width, canvas.height).data] };
  }, src);
}

export const dataUrl = (png) => `data:image/png;base64,${png.toString('base64')}`;

// Per-channel differences in 8-bit levels, on premultiplied values (colour × alpha, and alpha
// itself): the mean, the largest, and the share of values more than 4 levels apart. A
// transparent pixel's straight colour is invisible (and canvases round it away), so it only
// counts through its alpha. For opaque images this is the plain RGB difference.
export function difference(a, b) {
  let sum = 0;
  let max = 0;
  let far = 0;
  let count = 0;
  for (let i = 0; i < a.data.length; i++) {
    const alpha = i - (i % 4) + 3;
    const d = i === alpha
      ? Math.abs(a.data[i] - b.data[i])
      : Math.abs(a.data[i] * a.data[alpha] - b.data[i] * b.data[alpha]) / 255;
    sum += d;
    max = Math.max(max, d);
    far += d > 4 ? 1 : 0;
    count++;
  }
  return { mean: sum / count, max, outliers: far / count };
}

// How many pixels are transparent, partly transparent and opaque: an alpha test means
// something only where the reference has all three.
export function alphaCounts(image) {
  const counts = { clear: 0, partial: 0, opaque: 0 };
  for (let i = 3; i < image.data.length; i += 4) {
    const a = image.data[i];
    counts[a === 0 ? 'clear' : a === 255 ? 'opaque' : 'partial']++;
  }
  return counts;
}

// The PNG of each entry of an ICO file (16-byte directory entries after a 6-byte header; bytes
// 8..12 of an entry are the image's length, 12..16 its offset).
export function icoImages(bytes) {
  const count = bytes.readUInt16LE(4);
  return Array.from({ length: count }, (_, i) => {
    const entry = 6 + 16 * i;
    const [length, offset] = [bytes.readUInt32LE(entry + 8), bytes.readUInt32LE(entry + 12)];
    return { width: bytes[entry] || 256, png: bytes.subarray(offset, offset + length) };
  });
}

// The pixels of a canvas on the page, by element id.
export async function canvasPixels(page, id) {
  return page.evaluate((id) => {
    const canvas = document.getElementById(id);
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, data: [...data] };
  }, id);
}

// Equal within float tolerance: random weights amplify the last bits of a few values, so a
// handful of outliers is allowed, a visibly different image is not.
export const close = (diff) => diff.mean < 0.5 && diff.outliers < 0.005;

// Opens the demo and waits until the model is ready (or failed).
export async function openDemo(browser, url, query = '') {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}?${query}`);
  await page.waitForFunction(() => ['ready', 'failed'].includes(document.body.dataset.state), null, { timeout: 120_000 });
  page.errors = errors;
  return page;
}

// Clicks Generate and waits for it to finish; returns the favicon's href.
export async function generate(page, timeout = 120_000) {
  await page.click('#generate');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null, { timeout });
  const error = await page.textContent('#error');
  if (error) throw new Error(`the page failed: ${error}`);
  return page.evaluate(() => document.querySelector('link[rel~="icon"]').href);
}

// The tensors and metadata of a safetensors file (f32 tensors only), read straight from the format.
export async function readSafetensors(path) {
  const bytes = await readFile(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const data = bytes.subarray(8 + headerLength);
  const tensors = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: [begin, end] } = entry;
    if (dtype !== 'F32') throw new Error(`${path}: ${name} is ${dtype}, expected F32`);
    const copy = Uint8Array.from(data.subarray(begin, end));
    tensors[name] = { shape, values: new Float32Array(copy.buffer) };
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

// The seed's WTS1 fixture (tests/fixtures/seed_eps, from train/seed_fixtures.py) converted to a
// checkpoint folder with the hints the fixture was made with; `expected` is the final image of
// the PyTorch twin's ε-only loop as the page shows it, 8-bit RGBA (as src/image.rs::to_byte).
export async function seedCheckpoint() {
  const fixture = join(repo, 'tests/fixtures/seed_eps');
  const { tensors, metadata } = await readSafetensors(join(fixture, 'io.safetensors'));
  const hints = JSON.parse(metadata.hints);
  const weights = await tempDir('seed');
  await cargoExample('convert', [
    join(fixture, 'model.wts1'), weights, '--heads', String(hints.heads), '--image-size', String(hints.image_size),
    '--timesteps', String(hints.timesteps), '--schedule-offset', String(hints.schedule_offset),
  ]);
  const { shape, values } = tensors.x_final;
  const [, channels, size] = shape;
  const data = [];
  for (let pixel = 0; pixel < size * size; pixel++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(1, Math.max(-1, values[c * size * size + pixel]));
      data.push(Math.round((v + 1) * 127.5));
    }
    data.push(255);
  }
  if (channels !== 3) throw new Error(`expected an RGB fixture, found ${channels} channels`);
  return { weights, seed: Number(metadata.seed), timesteps: hints.timesteps, expected: { width: size, height: size, data } };
}

// The entries of a zip archive whose files are stored (not compressed), as the kit's are:
// name -> bytes, read from the local file headers.
export function unzipStored(zip) {
  const files = new Map();
  let at = 0;
  while (zip.readUInt32LE(at) === 0x04034b50) {
    const method = zip.readUInt16LE(at + 8);
    const size = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extraLength = zip.readUInt16LE(at + 28);
    const name = zip.subarray(at + 30, at + 30 + nameLength).toString('utf8');
    if (method !== 0) throw new Error(`${name} is compressed (method ${method}), expected stored`);
    const start = at + 30 + nameLength + extraLength;
    files.set(name, zip.subarray(start, start + size));
    at = start + size;
  }
  return files;
}

// The pixels of a PNG as straight RGBA, decoded here (8-bit RGB or RGBA, not interlaced), so
// no canvas rounds them: { width, height, data }.
export function decodePng(png) {
  let at = 8;
  let header = null;
  const compressed = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') header = { width: body.readUInt32BE(0), height: body.readUInt32BE(4), depth: body[8], colour: body[9], interlace: body[12] };
    if (type === 'IDAT') compressed.push(body);
    at += 12 + length;
  }
  const channels = { 2: 3, 6: 4 }[header.colour];
  if (header.depth !== 8 || !channels || header.interlace) throw new Error(`unsupported PNG ${JSON.stringify(header)}`);
  const raw = inflateSync(Buffer.concat(compressed));
  const stride = header.width * channels;
  const rows = [];
  for (let y = 0; y < header.height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    const up = rows[y - 1] ?? Buffer.alloc(stride);
    for (let i = 0; i < stride; i++) {
      const left = i >= channels ? row[i - channels] : 0;
      const corner = i >= channels ? up[i - channels] : 0;
      const paeth = () => {
        const p = left + up[i] - corner;
        const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up[i]), Math.abs(p - corner)];
        return pa <= pb && pa <= pc ? left : pb <= pc ? up[i] : corner;
      };
      const predictor = [0, left, up[i], (left + up[i]) >> 1, filter === 4 ? paeth() : 0][filter];
      row[i] = (row[i] + predictor) & 255;
    }
    rows.push(row);
  }
  const data = [];
  for (const row of rows) {
    for (let x = 0; x < header.width; x++) {
      for (let c = 0; c < 4; c++) data.push(c < channels ? row[x * channels + c] : 255);
    }
  }
  return { width: header.width, height: header.height, data };
}
