// Pixels to and from the page's favicon, shared by the demo page and the embed script.

// The page's icon link, created when the page has none.
export function iconLink(doc = document) {
  let link = doc.querySelector('link[rel~="icon"]');
  if (!link) {
    link = doc.createElement('link');
    link.rel = 'icon';
    doc.head.appendChild(link);
  }
  return link;
}

// A canvas holding a straight RGBA image of size×size (its alpha included).
export function rgbaCanvas(rgba, size, canvas = document.createElement('canvas')) {
  canvas.width = size;
  canvas.height = size;
  const pixels = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  canvas.getContext('2d').putImageData(new ImageData(pixels, size, size), 0, 0);
  return canvas;
}

// Shows an RGBA image as the favicon, as a data:image/png URL.
export function showFavicon(rgba, size, doc = document) {
  const link = iconLink(doc);
  link.type = 'image/png';
  link.href = rgbaCanvas(rgba, size).toDataURL('image/png');
  return link.href;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.crossOrigin = 'anonymous';
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load the image ${src.slice(0, 80)}`));
    img.src = src;
  });
}

// Any image the browser can draw (URL, data URL, blob URL), resized to size×size: straight
// RGBA bytes for img2img, transparency kept (a four-channel model takes it as alpha; the wasm
// side composites onto white for a three-channel one, as the native path does).
export async function imageRgba(src, size) {
  const img = await loadImage(src);
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, 0, 0, size, size);
  try {
    return new Uint8Array(ctx.getImageData(0, 0, size, size).data.buffer);
  } catch {
    throw new Error('the favicon is on another origin without CORS, so its pixels cannot be read');
  }
}

// The URL of the page's current favicon: its <link rel=icon>, else /favicon.ico.
export function faviconUrl(doc = document) {
  return doc.querySelector('link[rel~="icon"]')?.href || new URL('/favicon.ico', doc.baseURI).href;
}

// The page's current favicon (or the image at `src`) as RGBA, or null.
export async function faviconRgba(size, doc = document, src = faviconUrl(doc)) {
  try {
    return await imageRgba(src, size);
  } catch {
    return null;
  }
}

// The title during a run: a progress bar of eighths, then the step count.
export function progressTitle(index, total, name) {
  const width = 8;
  const filled = ((index + 1) / total) * width;
  const blocks = ' ▏▎▍▌▋▊▉█';
  let bar = '';
  for (let i = 0; i < width; i++) {
    const part = Math.max(0, Math.min(1, filled - i));
    bar += blocks[Math.round(part * 8)];
  }
  return `${bar.replaceAll(' ', '·')} ${index + 1}/${total} ${name}`;
}
