// The inference worker: loads the wasm package and the checkpoint, picks a backend, and runs
// one generation at a time, so the page never blocks. Messages (see client.js):
//   in:  init {weights, backend} | generate {id, request, init} | stop |
//        export {id, format, rgba} | kit {id, rgba, name, background} | profile {id, request} | loseDevice
//   out: progress | probing | ready | step | done | stopped | exported | profiled | notice | error
// A stop is taken at once, not queued: the running generation ends after its current step.

import init, { Diffusor, pngBytes, icoBytes, kitZip } from './pkg/favicon_diffusor.js';
import { fetchCheckpoint, forget } from './weights.js';

const CHOICE_CACHE = 'favicon-diffusor-backend-v1';
let diffusor = null;
let info = null;
let busy = false;
const queue = [];

const post = (message, transfer = []) => self.postMessage(message, transfer);
const errorText = (e) => (e && e.message ? e.message : String(e));
const NO_WEBGPU = 'WebGPU is not available here; using the CPU';

// Resolves on the event loop's next task (not a microtask), so a queued stop message runs
// first; a message channel does not wait out the timers' minimum delay.
function nextTask() {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

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
  // Where the wait before the first image goes (BENCHMARKS.md's browser breakdown).
  const stages = {};
  let lap = t0;
  const mark = (name) => {
    const now = performance.now();
    stages[name] = now - lap;
    lap = now;
  };
  await init();
  mark('wasm');
  const loaded = await load(weights);
  diffusor = loaded.diffusor;
  await loaded.files.keep?.();
  info = diffusor.info();
  mark('weights');
  const hasWebGpu = 'gpu' in navigator && navigator.gpu;
  // wgpu names a browser adapter by its description, which software adapters leave empty.
  const label = hasWebGpu ? await adapterLabel() : '';
  let chosen;
  if (backend === 'auto' && !hasWebGpu) {
    console.info('favicon-diffusor: navigator.gpu is missing');
    chosen = await diffusor.choose('cpu');
    chosen.note = NO_WEBGPU;
  } else if (backend === 'auto') {
    chosen = await chooseAuto(weights, label);
  } else if (backend === 'webgpu') {
    chosen = await diffusor.choose('gpu').catch((e) => {
      console.warn(`favicon-diffusor: ${errorText(e)}`);
      throw new Error('WebGPU is not available here; choose the CPU or auto backend');
    });
  } else {
    chosen = await diffusor.choose(backend);
  }
  mark('backend');
  if (chosen.backend === 'webgpu' && !chosen.adapter) chosen.adapter = label || 'unnamed adapter';
  if (label && chosen.note) chosen.note = chosen.note.replace('WebGPU is a', `WebGPU (${label}) is a`);
  post({
    type: 'ready',
    info,
    backend: chosen,
    weightsCached: loaded.cached,
    weightBytes: loaded.files.weights.length,
    loadMs: performance.now() - t0,
    stages,
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
  // wgpu's reason (adapter requests, limits) is for the console; the page gets one line.
  if (chosen.backend === 'cpu' && chosen.note?.startsWith('WebGPU unavailable')) {
    console.warn(`favicon-diffusor: ${chosen.note}`);
    chosen.note = NO_WEBGPU;
  }
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
    return nextTask();
  });
  const ms = performance.now() - t0;
  if (result.stopped) {
    post({ type: 'stopped', id, stopped: true, done: result.done, total: result.total, ms });
    return;
  }
  if (result.notice) post({ type: 'notice', message: result.notice });
  post({ type: 'done', id, rgba: result.rgba, ms }, [result.rgba.buffer]);
}

function exportImage({ id, format, rgba }) {
  const t0 = performance.now();
  const size = info.imageSize;
  const bytes = format === 'ico' ? icoBytes(rgba, size) : pngBytes(rgba, size);
  post({ type: 'exported', id, bytes, ms: performance.now() - t0 }, [bytes.buffer]);
}

// The favicon kit (src/kit: the files `sample --kit` writes) as a zip.
function exportKit({ id, rgba, name, background }) {
  const bytes = kitZip(rgba, info.imageSize, name ?? '', background ?? '');
  post({ type: 'exported', id, bytes }, [bytes.buffer]);
}

async function handle(message) {
  switch (message.type) {
    case 'generate':
      return generate(message);
    case 'export':
      return exportImage(message);
    case 'kit':
      return exportKit(message);
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
  if (data.type === 'stop') {
    diffusor?.stop();
    return;
  }
  if (!diffusor) {
    post({ type: 'error', id: data.id, message: 'the model is not loaded yet' });
    return;
  }
  queue.push(data);
  drain();
};
