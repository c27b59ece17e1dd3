// One tag diffuses a site's own favicon:
//
//   <script type="module" src="https://HOST/embed.js"
//           data-trigger="load hover" data-prompt="hippo" data-steps="16" data-strength="0.6"></script>
//
// data-trigger: any of "load", "hover" (the pointer entering the page, or data-hover's
//   elements) and "call" (only window.faviconDiffusor.diffuse()). Default "load".
// data-prompt, data-steps (DDIM steps), data-strength (how far the current favicon is noised;
//   1 ignores it), data-seed (default: random), data-backend (auto | webgpu | cpu),
//   data-weights (the checkpoint folder; default: weights/ beside this script).
// window.faviconDiffusor.diffuse({ prompt, steps, strength, seed }) runs it from code and
// resolves to the new favicon's data URL; every step animates the favicon. Every run starts
// from the site's original favicon, never from the last result, so the icon cannot drift.

import { DiffusorClient } from './client.js';
import { faviconRgba, faviconUrl, showFavicon } from './favicon.js';

const script = [...document.querySelectorAll('script[src]')].find((s) => s.src === import.meta.url);
const options = { ...(script?.dataset ?? {}) };
const triggers = new Set((options.trigger ?? 'load').split(/[\s,]+/).filter(Boolean));

let client = null;
let running = null;
// The site's own favicon, as the page had it before any run.
const originalUrl = faviconUrl();
let original = null;

function connect() {
  client ??= new DiffusorClient({
    weights: options.weights ?? new URL('./weights/', import.meta.url).href,
    backend: options.backend ?? 'auto',
  });
  return client.ready;
}

async function diffuse(overrides = {}) {
  const { info } = await connect();
  const steps = Number(overrides.steps ?? options.steps ?? 16);
  const strength = Number(overrides.strength ?? options.strength ?? 0.6);
  const seed = Number(overrides.seed ?? options.seed ?? Math.floor(Math.random() * 2 ** 32));
  const prompt = info.conditional ? (overrides.prompt ?? options.prompt ?? '') : '';
  original ??= faviconRgba(info.imageSize, document, originalUrl);
  const init = strength < 1 ? await original : null;
  const request = { prompt, seed, steps: Math.min(steps, info.timesteps), sampler: 'ddim', preview: 'x0', strength };
  const { rgba } = await client.generate(request, {
    init,
    onStep: ({ rgba: frame }) => frame && showFavicon(frame, info.imageSize),
  });
  return showFavicon(rgba, info.imageSize);
}

// One run at a time; a trigger during a run joins it.
function once(overrides) {
  running ??= diffuse(overrides).finally(() => (running = null));
  return running;
}

const report = (e) => console.warn(`favicon-diffusor: ${e.message}`);

window.faviconDiffusor = { diffuse: once, ready: () => connect() };

if (triggers.has('load')) {
  if (document.readyState === 'complete') once().catch(report);
  else window.addEventListener('load', () => once().catch(report), { once: true });
}
if (triggers.has('hover')) {
  const targets = options.hover ? [...document.querySelectorAll(options.hover)] : [document.documentElement];
  for (const target of targets) target.addEventListener('mouseenter', () => once().catch(report));
}
