// The inference worker: loads the wasm package and the checkpoint, picks a backend, and runs
// one generation at a time, so the page never blocks. Messages (see client.js):
//   in:  init {weights, backend} | generate {id, request, init} | export {id, format, rgba} | loseDevice
//   out: progress | ready | step | done | exported | notice | error

import init, { Diffusor, pngBytes, icoBytes } from './pkg/favicon_diffusor.js';
import { fetchCheckpoint, forget } from './weights.js';

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
  const mode = backend === 'auto' && !hasWebGpu ? 'cpu' : backend === 'webgpu' ? 'gpu' : backend;
  if (mode === 'cpu' && backend === 'auto') post({ type: 'probing', message: 'no WebGPU in this browser' });
  else if (mode === 'auto') post({ type: 'probing', message: 'opening WebGPU' });
  const chosen = await diffusor.choose(mode);
  if (backend === 'auto' && !hasWebGpu) chosen.note = 'this browser has no WebGPU (navigator.gpu); using the CPU';
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
