// The inference worker: loads the wasm package and the checkpoint, picks a backend, and runs
// one generation at a time, so the page never blocks. Messages (see client.js):
//   in:  init {weights, backend} | generate {id, request, init} | export {id, format, rgba} |
//        profile {id, request} | loseDevice
//   out: progress | probing | ready | step | done | exported | profiled | notice | error

import init, { Diffusor, pngBytes, icoBytes } from './pkg/favicon_diffusor.js';
import { fetchCheckpoint, forget } from './weights.js';

const CHOICE_CACHE = 'favicon-diffusor-backend-v1';
let diffusor = null;
let info = null;
let busy = false;
const queue = [];

const post = (message, transfer = []) => self.postMessage(message, transfer);
const errorText = (e) => (e && e.message ? e.message : String(e));

async function load(base) {
  const progress = (loaded, total, cached) => post({ type: 'progress', loaded, total, cached });
  let files = await fetchCheckpoint(base, progress);
  try {
    return { diffusor: new Diffusor(files.config, files.weights, files.vocab), cached: files.cached, files };
  } catch (e) {
    if (!files.cached) throw e;
    // A cached copy that no longer validates: drop it and fetch afresh once.
    await forget(base);
    files = await fetchCheckpoint(base, progress);
    return { diffusor: new Diffusor(files.config, files.weights, files.vocab), cached: false, files };
  }
}

async function start({ weights, backend }) {
  const t0 = performance.now();
  await init();
  const loaded = await load(weights);
  diffusor = loaded.diffusor;
  await loaded.files.keep?.();
  info = diffusor.info();
  const hasWebGpu = 'gpu' in navigator && navigator.gpu;
  // wgpu names a browser adapter by its description, which software adapters leave empty.
  const label = hasWebGpu ? await adapterLabel() : '';
  let chosen;
  if (backend === 'auto' && !hasWebGpu) {
    chosen = await diffusor.choose('cpu');
    chosen.note = 'this browser has no WebGPU (navigator.gpu); using the CPU';
  } else if (backend === 'auto') {
    chosen = await chooseAuto(weights, label);
  } else {
    chosen = await diffusor.choose(backend === 'webgpu' ? 'gpu' : backend);
  }
  if (chosen.backend === 'webgpu' && !chosen.adapter) chosen.adapter = label || 'unnamed adapter';
  if (label && chosen.note) chosen.note = chosen.note.replace('WebGPU is', `WebGPU (${label}) is`);
  post({
    type: 'ready',
    info,
    backend: chosen,
    weightsCached: loaded.cached,
    weightBytes: loaded.files.weights.length,
    loadMs: performance.now() - t0,
  });
  setInterval(watchDevice, 2000);
}

// Auto: a software adapter is timed against the CPU once per adapter and model; the verdict is
// kept beside the cached weights, so later visits skip the measurement.
async function chooseAuto(base, label) {
  const key = new URL(`backend-choice?${new URLSearchParams({ adapter: label, parameters: info.parameters })}`, base).href;
  const cache = await globalThis.caches?.open(CHOICE_CACHE).catch(() => null);
  const known = await cache?.match(key).then((r) => r?.json()).catch(() => null);
  if (known) {
    try {
      const chosen = await diffusor.choose(known.mode);
      chosen.note = `${known.note} (measured on an earlier visit)`;
      return chosen;
    } catch {
      await cache.delete(key);
    }
  }
  post({ type: 'probing', message: 'opening WebGPU, timing it against the CPU if it is a software adapter' });
  const chosen = await diffusor.choose('auto');
  if (cache && /software adapter/.test(chosen.note ?? '')) {
    const verdict = { mode: chosen.backend === 'webgpu' ? 'gpu' : 'cpu', note: chosen.note };
    await cache.put(key, new Response(JSON.stringify(verdict))).catch(() => {});
  }
  return chosen;
}

async function adapterLabel() {
  try {
    const info = (await navigator.gpu.requestAdapter())?.info;
    return info ? [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') : '';
  } catch {
    return '';
  }
}

// A device lost while idle (tab backgrounded, driver reset) is reported and replaced.
async function watchDevice() {
  if (busy || !diffusor) return;
  busy = true;
  try {
    const notice = await diffusor.checkDevice();
    if (notice) post({ type: 'notice', message: notice });
  } catch (e) {
    post({ type: 'notice', message: `WebGPU device lost and could not be re-initialised: ${errorText(e)}` });
  } finally {
    busy = false;
    drain();
  }
}

async function generate({ id, request, init: initRgba }) {
  const t0 = performance.now();
  const result = await diffusor.generate(JSON.stringify(request), initRgba ?? undefined, (index, total, rgba) => {
    post({ type: 'step', id, index, total, rgba, ms: performance.now() - t0 }, rgba ? [rgba.buffer] : []);
  });
  const ms = performance.now() - t0;
  if (result.notice) post({ type: 'notice', message: result.notice });
  post({ type: 'done', id, rgba: result.rgba, ms }, [result.rgba.buffer]);
}

function exportImage({ id, format, rgba }) {
  const size = info.imageSize;
  const bytes = format === 'ico' ? icoBytes(rgba, size) : pngBytes(rgba, size);
  post({ type: 'exported', id, bytes }, [bytes.buffer]);
}

async function handle(message) {
  switch (message.type) {
    case 'generate':
      return generate(message);
    case 'export':
      return exportImage(message);
    case 'profile':
      post({ type: 'profiled', id: message.id, rows: await diffusor.profile(JSON.stringify(message.request)) });
      return;
    case 'loseDevice':
      post({ type: 'notice', message: diffusor.loseDevice() ? 'WebGPU device destroyed' : 'not on WebGPU' });
      return;
    default:
      throw new Error(`unknown message type ${message.type}`);
  }
}

// Messages run one at a time, in order; a generation awaits the GPU between steps.
async function drain() {
  while (!busy && queue.length) {
    const message = queue.shift();
    busy = true;
    try {
      await handle(message);
    } catch (e) {
      post({ type: 'error', id: message.id, message: errorText(e) });
    } finally {
      busy = false;
    }
  }
}

self.onmessage = ({ data }) => {
  if (data.type === 'init') {
    start(data).catch((e) => post({ type: 'error', fatal: true, message: errorText(e) }));
    return;
  }
  if (!diffusor) {
    post({ type: 'error', id: data.id, message: 'the model is not loaded yet' });
    return;
  }
  queue.push(data);
  drain();
};
