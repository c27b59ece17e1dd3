// Fetches a checkpoint folder (config.json + model.safetensors, and a vocab_file if named)
// once, with progress, and keeps the weights in the Cache API. A cached copy is reused while
// the server's size and modification stamp match it (or when the server cannot be reached).

const CACHE = 'favicon-diffusor-weights-v1';
const STAMP = 'x-favicon-diffusor-stamp';

export class WeightsError extends Error {}

async function get(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new WeightsError(`cannot fetch ${url}: ${e.message}`);
  }
  if (!response.ok) {
    throw new WeightsError(`cannot fetch ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  }
  return response;
}

// The body as bytes, calling onProgress(loaded, total) as chunks arrive.
async function download(response, onProgress) {
  const total = Number(response.headers.get('content-length')) || 0;
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

function stampOf(response) {
  const h = response.headers;
  return [h.get('content-length'), h.get('last-modified'), h.get('etag')].join('|');
}

async function openCache() {
  try {
    return typeof caches === 'undefined' ? null : await caches.open(CACHE);
  } catch {
    return null; // storage disabled: fetch every time
  }
}

// -> { config: string, vocab: string | null, weights: Uint8Array, cached: boolean }
export async function fetchCheckpoint(base, onProgress = () => {}) {
  const url = (name) => new URL(name, base).href;
  const config = await (await get(url('config.json'), { cache: 'no-cache' })).text();
  let parsed;
  try {
    parsed = JSON.parse(config);
  } catch (e) {
    throw new WeightsError(`${url('config.json')} is not JSON: ${e.message}`);
  }
  const vocab =
    !parsed.vocab && typeof parsed.vocab_file === 'string'
      ? await (await get(url(parsed.vocab_file), { cache: 'no-cache' })).text()
      : null;

  const weightsUrl = url('model.safetensors');
  const cache = await openCache();
  const cached = cache ? await cache.match(weightsUrl) : undefined;
  let head = null;
  try {
    head = await fetch(weightsUrl, { method: 'HEAD', cache: 'no-store' });
  } catch {
    head = null; // offline: a cached copy is the best there is
  }
  if (cached && (!head || (head.ok && cached.headers.get(STAMP) === stampOf(head)))) {
    const weights = new Uint8Array(await cached.arrayBuffer());
    onProgress(weights.length, weights.length, true);
    return { config, vocab, weights, cached: true };
  }
  const response = await get(weightsUrl, { cache: 'no-store' });
  const stamp = stampOf(response);
  const weights = await download(response, (loaded, total) => onProgress(loaded, total, false));
  if (weights.length === 0) throw new WeightsError(`${weightsUrl} is empty`);
  return { config, vocab, weights, cached: false, keep: () => remember(cache, weightsUrl, weights, stamp) };
}

// Caches the weights, called once they have been validated.
async function remember(cache, weightsUrl, weights, stamp) {
  if (!cache) return;
  try {
    await cache.put(weightsUrl, new Response(weights, { headers: { [STAMP]: stamp } }));
  } catch {
    // Quota or private mode: the next visit downloads again.
  }
}

export async function forget(base) {
  const cache = await openCache();
  if (cache) await cache.delete(new URL('model.safetensors', base).href);
}
