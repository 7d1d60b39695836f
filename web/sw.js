// sw.js: the scanner app's service worker, scope /scanner/. It keeps the app
// shell (every file the app needs to start) in one cache named after the
// release, so the app starts with no network, and a new release replaces the
// shell in one piece: the browser revalidates sw.js on every start online
// (nginx: Cache-Control no-cache), a changed VERSION installs the new shell,
// and the old cache is deleted once the new worker takes over.
//
// Requests: the shell is served cache-first; API calls (/api/) are never
// touched here, so they go to the network and never to a stale cache (the
// offline cookbook's rule: a queued write is the truth until the server
// confirms it). Anything else under the scope goes to the network, then falls
// back to the cache.

const VERSION = 'scanqa-shell-v2';
const SHELL = [
  './',
  'index.html',
  'app.css',
  'icon.svg',
  'manifest.webmanifest',
  'js/api.js',
  'js/app.js',
  'js/db.js',
  'js/feedback.js',
  'js/open-copy.js',
  'js/queue.js',
  'js/scan-input.js',
  'js/scan-session-manager.js',
  'js/screen-inspect.js',
  'js/screen-queue.js',
  'js/screen-session.js',
  'js/screen-signin.js',
  'js/sync.js',
  'js/ui.js',
  'vendor/idb-8.0.4/index.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(VERSION);
    // cache: 'reload' bypasses the HTTP cache, so the shell is this release's.
    await cache.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== VERSION && name.startsWith('scanqa-shell-')) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/')) return;
  if (!url.pathname.startsWith(new URL(self.registration.scope).pathname)) return;
  event.respondWith((async () => {
    const cache = await caches.open(VERSION);
    // A navigation (or a reload) of any page in scope is the app's one page.
    const key = req.mode === 'navigate' ? './' : req;
    const hit = await cache.match(key, { ignoreSearch: req.mode === 'navigate' });
    if (hit) return hit;
    try {
      return await fetch(req);
    } catch (e) {
      const fallback = await cache.match('./');
      if (req.mode === 'navigate' && fallback) return fallback;
      throw e;
    }
  })());
});
