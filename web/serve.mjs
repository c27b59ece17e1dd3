// A tiny static server for the demo and the browser tests, on 127.0.0.1 only:
//   /          -> web/ (the page, the worker, pkg/)
//   /weights/  -> the checkpoint folder (../weights, or --weights DIR)
// Usage: node web/serve.mjs [--port 8080] [--weights DIR]
// Imported by the tests as `serve({ port, weights })`.

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
};

// Maps a URL path onto a file under one of the roots, refusing anything that climbs out.
function locate(roots, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  for (const [prefix, dir] of roots) {
    if (!path.startsWith(prefix)) continue;
    const rest = normalize(path.slice(prefix.length)).replace(/^([/\\])+/, '');
    const file = resolve(dir, rest || 'index.html');
    if (file !== dir && !file.startsWith(dir + sep)) return null;
    return file;
  }
  return null;
}

export function serve({ port = 8080, weights = join(here, '..', 'weights'), host = '127.0.0.1', quiet = true } = {}) {
  // Longest prefix first, so /weights/ wins over /.
  const roots = [
    ['/weights/', resolve(weights)],
    ['/', resolve(here)],
  ];
  const server = createServer(async (req, res) => {
    const file = locate(roots, req.url ?? '/');
    let info = null;
    if (file) info = await stat(file).catch(() => null);
    let target = file;
    if (info?.isDirectory()) {
      target = join(file, 'index.html');
      info = await stat(target).catch(() => null);
    }
    if (!quiet) console.log(`${req.method} ${req.url} ${info ? 200 : 404}`);
    const headers = {
      // The embed script may be loaded from another origin; its worker then imports these files.
      'Access-Control-Allow-Origin': '*',
      'Cache-Control': 'no-cache',
    };
    if (!info || !info.isFile() || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': TYPES[extname(target)] ?? 'application/octet-stream',
      'Content-Length': info.size,
      'Last-Modified': info.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(target).on('error', () => res.destroy()).pipe(res);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => done(server));
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
  };
  const port = Number(arg('--port', process.env.PORT ?? 8080));
  const weights = arg('--weights', join(here, '..', 'weights'));
  serve({ port, weights, quiet: false }).then(
    () => console.log(`favicon-diffusor demo on http://127.0.0.1:${port}/  (weights from ${resolve(weights)})`),
    (e) => {
      console.error(`cannot serve on 127.0.0.1:${port}: ${e.message}`);
      process.exit(1);
    },
  );
}
