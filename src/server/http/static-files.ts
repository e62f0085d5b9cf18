/**
 * Serves the built web app (`npm run build:web` writes it to dist/web) at `/`, next to the API.
 *
 * - Only GET and HEAD of paths that are not API paths ({@link isApiPath}) come here; the API keeps its own
 *   answers, 404s included.
 * - A path naming a file under the root is that file; any other path whose last segment has no extension is
 *   the single-page app's `index.html` (client-side routes); a missing asset is a plain 404.
 * - Hashed assets (Vite's `assets/` folder) are cached for a year as immutable; `index.html`, the service
 *   worker and everything else are revalidated on every load (`no-cache`), so a new build is picked up.
 * - Every answer carries a strict Content-Security-Policy: scripts, styles, fonts and workers from the same
 *   origin only (plus WebAssembly compilation), `blob:` and `data:` images and media (decrypted attachments),
 *   and network access to the same origin over HTTP and WebSocket (and to the page's own `blob:` URLs).
 * - When the root has no `index.html`, the app answers 503 with a text that says how to build it.
 *
 * Files are read from disk per request (they are small, and a rebuild needs no restart); paths are decoded,
 * normalised and refused when they leave the root.
 */
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder `npm run build:web` writes (dist/web at the package root). */
export function defaultWebRoot(): string {
  return fileURLToPath(new URL('../../../dist/web/', import.meta.url));
}

/** Paths the server's API owns: `/v1/...`, `/healthz`, `/metrics`. They never fall back to the app. */
export function isApiPath(p: string): boolean {
  return p === '/v1' || p.startsWith('/v1/') || p === '/healthz' || p === '/metrics';
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Files that must never be cached without revalidation, whatever their folder. */
const NO_CACHE_FILES = new Set(['index.html', 'sw.js', 'manifest.webmanifest']);

/** A Host header we are willing to echo into the CSP (name or address, optional port). */
const HOST = /^[a-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$/i;

/** The Content-Security-Policy of the app's responses. */
export function contentSecurityPolicy(host: string | undefined): string {
  // 'self' covers ws(s): of the same host in current browsers; naming them keeps older ones working.
  const sockets = host !== undefined && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "font-src 'self'",
    `connect-src 'self' blob:${sockets}`,
    "worker-src 'self' blob:",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The static side of the HTTP server. */
export interface StaticFiles {
  /** Answers a GET or HEAD of a non-API path. */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void>;
}

const NOT_BUILT =
  'The Parley web app is not built yet.\n\nRun `npm run build:web` (it writes dist/web), then reload this page.\nThe API is available under /v1/ meanwhile.\n';

/** Serves the files under `root` (see the module comment). */
export function createStaticFiles(root: string): StaticFiles {
  const base = path.resolve(root);

  async function fileAt(rel: string): Promise<{ file: string; size: number } | undefined> {
    const file = path.resolve(base, `.${rel}`);
    if (file !== base && !file.startsWith(base + path.sep)) return undefined;
    try {
      const s = await stat(file);
      return s.isFile() ? { file, size: s.size } : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    async serve(req, res, pathname) {
      const head = req.method === 'HEAD';
      const common = {
        'content-security-policy': contentSecurityPolicy(req.headers.host),
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      };
      const text = (status: number, body: string): void => {
        const bytes = Buffer.from(body);
        res.writeHead(status, { ...common, 'content-type': 'text/plain; charset=utf-8', 'content-length': bytes.length, 'cache-control': 'no-store' });
        res.end(head ? undefined : bytes);
      };
      let rel: string;
      try {
        rel = decodeURIComponent(pathname);
      } catch {
        text(400, 'Bad path.\n');
        return;
      }
      if (rel.includes('\0')) {
        text(400, 'Bad path.\n');
        return;
      }
      if (rel.endsWith('/')) rel += 'index.html';
      let found = await fileAt(rel);
      if (!found && path.posix.extname(rel) === '') {
        found = await fileAt('/index.html');
        if (!found) {
          text(503, NOT_BUILT);
          return;
        }
      }
      if (!found) {
        text(404, 'Not found.\n');
        return;
      }
      const name = path.basename(found.file);
      const relative = path.relative(base, found.file).split(path.sep).join('/');
      const immutable = relative.startsWith('assets/') && !NO_CACHE_FILES.has(name);
      const body = await readFile(found.file);
      res.writeHead(200, {
        ...common,
        'content-type': CONTENT_TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream',
        'content-length': body.length,
        'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        ...(name === 'sw.js' ? { 'service-worker-allowed': '/' } : {}),
      });
      res.end(head ? undefined : body);
    },
  };
}
