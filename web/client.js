// The page side of the inference worker: a small promise API over its messages.
//
//   const d = new DiffusorClient({ weights: './weights/', backend: 'auto', onProgress, onNotice });
//   const { backend, info } = await d.ready;
//   const { rgba, ms } = await d.generate({ prompt: 'hippo', seed: 7 }, { onStep, init });
//   d.stop();   // the running generate() resolves to { stopped: true, done, total, ms }
//   const icoBytes = await d.export('ico', rgba);
//   const zipBytes = await d.kit(rgba, { name: 'hippo' });

const WORKER = new URL('./worker.js', import.meta.url);

// A module worker from this script's own origin; from another origin (the embed script on a
// foreign site) a same-origin blob worker imports it instead.
function spawnWorker() {
  if (WORKER.origin === globalThis.location?.origin) return new Worker(WORKER, { type: 'module' });
  const source = `import ${JSON.stringify(WORKER.href)};`;
  const blob = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  return new Worker(blob, { type: 'module' });
}

export class DiffusorClient {
  constructor({ weights, backend = 'auto', onProgress = () => {}, onNotice = () => {}, onProbe = () => {} } = {}) {
    this.worker = spawnWorker();
    this.pending = new Map();
    this.nextId = 1;
    this.ready = new Promise((resolve, reject) => {
      this.readyCallbacks = { resolve, reject };
    });
    this.worker.onmessage = ({ data }) => this.receive(data, { onProgress, onNotice, onProbe });
    this.worker.onerror = (e) => {
      const message = `the inference worker failed: ${e.message || 'could not load worker.js or the wasm package'}`;
      this.fail(message);
    };
    const base = new URL(weights ?? './weights/', globalThis.location?.href ?? WORKER).href;
    this.worker.postMessage({ type: 'init', weights: base, backend });
  }

  fail(message) {
    this.readyCallbacks.reject(new Error(message));
    for (const { reject } of this.pending.values()) reject(new Error(message));
    this.pending.clear();
  }

  receive(data, { onProgress, onNotice, onProbe }) {
    const job = this.pending.get(data.id);
    switch (data.type) {
      case 'progress':
        return onProgress(data);
      case 'probing':
        return onProbe(data.message);
      case 'ready':
        return this.readyCallbacks.resolve(data);
      case 'notice':
        return onNotice(data.message);
      case 'step':
        return job?.onStep?.(data);
      case 'done':
      case 'stopped':
      case 'exported':
      case 'profiled':
        this.pending.delete(data.id);
        return job?.resolve(data);
      case 'error':
        if (data.fatal || data.id === undefined) return this.fail(data.message);
        this.pending.delete(data.id);
        return job?.reject(new Error(data.message));
    }
  }

  call(message, extra = {}, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...extra });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  // request: { prompt, seed, steps, sampler, guidance, preview: 'x0' | 'xt' | 'none', strength }
  // init: RGBA bytes of the model's size (img2img), or null. Resolves to { rgba, ms }, or to
  // { stopped: true, done, total, ms } after stop().
  generate(request, { onStep, init = null } = {}) {
    return this.call({ type: 'generate', request, init }, { onStep });
  }

  // Ends the running generation after its current step (the worker takes it at once). Its
  // previews still in the message queue are dropped, so the page does not paint a backlog.
  stop() {
    for (const job of this.pending.values()) job.onStep = null;
    this.worker.postMessage({ type: 'stop' });
  }

  // 'png' or 'ico' bytes of an RGBA image. Resolves to a Uint8Array.
  async export(format, rgba) {
    return (await this.call({ type: 'export', format, rgba: rgba.slice() })).bytes;
  }

  // The favicon kit of an RGBA image as zip bytes: the files `sample --kit` writes.
  // background: '#rrggbb' for the apple-touch icon, or '' to pick one from the icon.
  async kit(rgba, { name = '', background = '' } = {}) {
    return (await this.call({ type: 'kit', rgba: rgba.slice(), name, background })).bytes;
  }

  // GPU microseconds of each dispatch of one step (WebGPU with timestamp queries): [[name, us]].
  async profile(request) {
    return (await this.call({ type: 'profile', request })).rows;
  }

  loseDevice() {
    this.worker.postMessage({ type: 'loseDevice' });
  }

  terminate() {
    this.worker.terminate();
  }
}
