// The demo page: controls, the enlarged canvas, the live favicon and title, Stop, benchmark,
// downloads (PNG, ICO, the favicon kit) and "diffuse this favicon". Inference runs in the
// worker (client.js). The form is mirrored into the URL, so a link reproduces the image:
// ?prompt=&seed=&steps=&sampler=ddpm|ddim&guidance=&backend=auto|webgpu|cpu (and weights=URL).

import { DiffusorClient } from './client.js';
import { faviconRgba, imageRgba, progressTitle, rgbaCanvas, showFavicon } from './favicon.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const NAME = 'favicon-diffusor';
const ui = {
  form: $('form'), prompt: $('prompt'), words: $('words'), seed: $('seed'), dice: $('dice'),
  sampler: $('sampler'), steps: $('steps'), guidance: $('guidance'), previewXt: $('preview-xt'),
  generate: $('generate'), stop: $('stop'), view: $('view'), meter: $('meter-fill'), status: $('status'),
  backend: $('backend'), notice: $('notice'), error: $('error'), tabIcon: $('tab-icon'), tabTitle: $('tab-title'),
  png: $('download-png'), ico: $('download-ico'), kit: $('download-kit'), source: $('diffuse-source'), upload: $('upload'),
  diffuseInput: $('diffuse-input'), strength: $('strength'), strengthValue: $('strength-value'),
  diffuse: $('diffuse'), benchN: $('bench-n'), benchmark: $('benchmark'), benchResult: $('bench-result'),
  backendChoice: $('backend-choice'),
};

let size = 64;
let timesteps = 32;
let last = null; // { rgba, request }
let busy = false;
// For the end-to-end tests and the curious: window.demo.
const demo = (window.demo = { runs: 0, notices: [] });

const secs = (ms) => `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;

// A generation ended by the Stop button.
class Stopped extends Error {
  constructor({ done, total }) {
    super(`stopped after step ${done} of ${total}`);
  }
}
const setState = (state) => (document.body.dataset.state = state);

function setTitle(text) {
  document.title = text;
  ui.tabTitle.textContent = text;
}

function show(rgba) {
  rgbaCanvas(rgba, size, ui.view);
  ui.tabIcon.src = showFavicon(rgba, size);
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function setBusy(on) {
  busy = on;
  for (const b of [ui.generate, ui.benchmark, ui.diffuse]) b.disabled = on;
  for (const b of [ui.png, ui.ico, ui.kit]) b.disabled = on || !last;
  ui.stop.disabled = !on;
}

// The form, as URL parameters (kept alongside any others, such as weights=).
const FIELDS = [['prompt', 'prompt'], ['seed', 'seed'], ['steps', 'steps'], ['sampler', 'sampler'], ['guidance', 'guidance']];

function mirrorUrl() {
  const query = new URLSearchParams(location.search);
  for (const [key, id] of FIELDS) query.set(key, key === 'prompt' ? ui[id].value.trim() : ui[id].value);
  // DDPM visits every timestep, so its step count is not part of the request.
  if (ui.sampler.value === 'ddpm') query.delete('steps');
  query.set('backend', ui.backendChoice.value);
  history.replaceState(null, '', `${location.pathname}?${query}`);
}

function request(extra = {}) {
  return {
    prompt: ui.prompt.value.trim(),
    seed: Number(ui.seed.value) || 0,
    steps: Number(ui.steps.value) || timesteps,
    sampler: ui.sampler.value,
    guidance: Number(ui.guidance.value),
    preview: ui.previewXt.checked ? 'xt' : 'x0',
    ...extra,
  };
}

function syncSteps() {
  // DDPM visits every timestep; only DDIM takes fewer.
  const ddpm = ui.sampler.value === 'ddpm';
  if (ddpm) ui.steps.value = timesteps;
  ui.steps.disabled = ddpm;
}

// One generation with the live favicon; resolves to { rgba, ms }, or throws Stopped.
async function run(req, init = null) {
  showError('');
  ui.notice.hidden = true;
  ui.status.textContent = 'starting…';
  setState('running');
  ui.meter.style.width = '0';
  const result = await demo.client.generate(req, {
    init,
    onStep: ({ index, total, rgba, ms }) => {
      if (rgba) show(rgba);
      setTitle(progressTitle(index, total, NAME));
      ui.meter.style.width = `${((index + 1) / total) * 100}%`;
      ui.status.textContent = `step ${index + 1}/${total} · ${((index + 1) / (ms / 1000)).toFixed(1)} steps/s · ${secs(ms)}`;
    },
  });
  if (result.stopped) throw new Stopped(result);
  show(result.rgba);
  last = { rgba: result.rgba, request: req };
  demo.runs += 1;
  demo.last = { ms: result.ms, request: req, favicon: document.querySelector('link[rel~="icon"]').href };
  const label = req.prompt || 'favicon';
  setTitle(`${label} #${req.seed} — ${NAME}`);
  ui.meter.style.width = '100%';
  return result;
}

async function guarded(work) {
  if (busy) return;
  setBusy(true);
  try {
    await work();
    setState('done');
  } catch (e) {
    setTitle(NAME);
    if (e instanceof Stopped) {
      ui.status.textContent = e.message;
      setState('stopped');
    } else {
      // The error replaces the status line rather than sitting under a stale one.
      ui.status.textContent = 'Failed.';
      showError(e.message);
      setState('failed');
    }
  } finally {
    setBusy(false);
  }
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  mirrorUrl();
  guarded(async () => {
    const req = request();
    const { ms } = await run(req);
    const steps = req.sampler === 'ddpm' ? timesteps : req.steps;
    ui.status.textContent = `done: ${steps} steps in ${secs(ms)} · ${(steps / (ms / 1000)).toFixed(1)} steps/s`;
  });
});

ui.benchmark.addEventListener('click', () =>
  guarded(async () => {
    const n = Math.max(1, Math.min(100, Number(ui.benchN.value) || 1));
    const times = [];
    for (let i = 0; i < n; i++) {
      const { ms } = await run(request({ preview: 'none', seed: (Number(ui.seed.value) || 0) + i }));
      times.push(ms);
      ui.benchResult.textContent = `${i + 1}/${n}: ${secs(ms)}`;
    }
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted.length % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    demo.benchmark = { median, min: sorted[0], times };
    ui.benchResult.textContent = `${n} generations · median ${secs(median)} · min ${secs(sorted[0])}`;
    ui.status.textContent = `benchmark done: median ${secs(median)}, min ${secs(sorted[0])}`;
  }),
);

const TYPES = { png: 'image/png', ico: 'image/x-icon', kit: 'application/zip' };

async function download(format) {
  if (!last) return;
  const bytes =
    format === 'kit'
      ? await demo.client.kit(last.rgba, { name: last.request.prompt })
      : await demo.client.export(format, last.rgba);
  const blob = new Blob([bytes], { type: TYPES[format] });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  const words = last.request.prompt.replace(/\s+/g, '-') || 'favicon';
  a.download = format === 'kit' ? `${words}-${last.request.seed}-favicon-kit.zip` : `${words}-${last.request.seed}.${format}`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
ui.png.addEventListener('click', () => download('png').catch((e) => showError(e.message)));
ui.ico.addEventListener('click', () => download('ico').catch((e) => showError(e.message)));
ui.kit.addEventListener('click', () => download('kit').catch((e) => showError(e.message)));
ui.stop.addEventListener('click', () => demo.client.stop());

// Diffuse this favicon: the page's own icon, or an uploaded image, as img2img input.
let uploaded = null;
ui.source.addEventListener('change', () => {
  if (ui.source.value === 'upload') ui.upload.click();
});
ui.upload.addEventListener('change', () => {
  const file = ui.upload.files?.[0];
  if (!file) return;
  if (uploaded) URL.revokeObjectURL(uploaded);
  uploaded = URL.createObjectURL(file);
  ui.diffuseInput.src = uploaded;
  ui.diffuseInput.hidden = false;
});
ui.strength.addEventListener('input', () => (ui.strengthValue.textContent = ui.strength.value));
ui.diffuse.addEventListener('click', () =>
  guarded(async () => {
    const fromUpload = ui.source.value === 'upload' && uploaded;
    const init = fromUpload ? await imageRgba(uploaded, size) : await faviconRgba(size);
    if (!init) throw new Error("cannot read this page's favicon");
    ui.diffuseInput.src = rgbaCanvas(init, size).toDataURL();
    ui.diffuseInput.hidden = false;
    const { ms } = await run(request({ strength: Number(ui.strength.value) }), init);
    ui.status.textContent = `diffused the ${fromUpload ? 'uploaded image' : 'favicon'} at strength ${ui.strength.value} in ${secs(ms)}`;
  }),
);

ui.dice.addEventListener('click', () => {
  ui.seed.value = Math.floor(Math.random() * 2 ** 32);
  mirrorUrl();
});
ui.sampler.addEventListener('change', syncSteps);
ui.form.addEventListener('change', mirrorUrl);
ui.form.addEventListener('input', mirrorUrl);
// A new backend needs a new worker: reload with the form in the URL.
ui.backendChoice.addEventListener('change', () => {
  mirrorUrl();
  location.reload();
});

function describe(backend) {
  if (backend.backend === 'webgpu') {
    return `WebGPU · ${backend.adapter || 'unnamed adapter'}${backend.software ? ' (software)' : ''}`;
  }
  return `CPU · ${backend.adapter || 'wasm'}`;
}

async function start() {
  for (const [key, id] of FIELDS) {
    if (params.has(key)) ui[id].value = params.get(key);
  }
  const backend = params.get('backend') ?? 'auto';
  ui.backendChoice.value = backend;
  const client = new DiffusorClient({
    weights: params.get('weights') ?? './weights/',
    backend,
    onProgress: ({ loaded, total, cached }) => {
      const mb = (n) => (n / 1e6).toFixed(1);
      ui.status.textContent = cached
        ? `weights from the browser cache (${mb(loaded)} MB)`
        : `downloading weights: ${mb(loaded)}${total ? ` / ${mb(total)}` : ''} MB`;
      ui.meter.style.width = total ? `${(loaded / total) * 100}%` : '0';
    },
    onProbe: (message) => (ui.status.textContent = `choosing a backend: ${message}…`),
    onNotice: (message) => {
      demo.notices.push(message);
      ui.notice.textContent = message;
      ui.notice.hidden = false;
    },
  });
  demo.client = client;
  try {
    const ready = await client.ready;
    demo.ready = ready;
    size = ready.info.imageSize;
    timesteps = ready.info.timesteps;
    ui.steps.max = timesteps;
    const words = ready.info.vocab;
    ui.words.replaceChildren(...words.map((w) => Object.assign(document.createElement('option'), { value: w })));
    if (!ready.info.conditional) {
      ui.prompt.value = '';
      ui.prompt.disabled = true;
      ui.prompt.placeholder = 'this checkpoint takes no prompt';
    } else if (!params.has('prompt')) {
      ui.prompt.value = words.includes('hippo') ? 'hippo' : (words[0] ?? '');
    }
    syncSteps();
    mirrorUrl();
    const params_m = (ready.info.parameters / 1e6).toFixed(1);
    const pixels = ready.info.channels === 4 ? 'RGBA (transparent background)' : 'RGB';
    ui.backend.textContent = `${describe(ready.backend)} · ${params_m}M parameters · ${pixels}`;
    if (ready.backend.note) ui.backend.textContent += ` — ${ready.backend.note}`;
    ui.status.textContent = `ready in ${secs(ready.loadMs)}${ready.weightsCached ? ' (cached weights)' : ''}`;
    ui.meter.style.width = '0';
    setState('ready');
    setBusy(false);
  } catch (e) {
    ui.status.textContent = 'Could not start the model.';
    showError(e.message);
    setState('failed');
  }
}

start();
