// Drive real engines (Phaser 3, PixiJS 8) in headless Debian chromium through playwright-core.
//
//   node run.mjs <jobs.json>
//
// jobs.json: {"chromium": "/usr/bin/chromium", "jobs": [{"id": "phaser-canvas", "page": "phaser_page.html",
//             "assets": "/abs/dir/with/hero.png+hero.json", "query": {"renderer": "canvas", ...}}, ...]}
// Prints ONE JSON line on stdout: {"browser": "<version>", "results": {"<id>": <window.result of that page>}}.
// Chromium is launched once for all jobs; each job gets a fresh page (and browser context).
// Nothing is served over the network: requests to http://sm.test/ are fulfilled from disk by page.route()
//   /lib/<name>     -> the engine bundles in ./node_modules (LIBS below)
//   /assets/<file>  -> job.assets/<file>
//   /<page>.html    -> this folder
// every other request is aborted.
import { chromium } from 'playwright-core';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const LIBS = {
  'phaser.min.js': join(HERE, 'node_modules/phaser/dist/phaser.min.js'),
  'pixi.min.js': join(HERE, 'node_modules/pixi.js/dist/pixi.min.js'),
};
const TYPES = { js: 'text/javascript', json: 'application/json', png: 'image/png', html: 'text/html',
                xml: 'application/xml' };
const PAGE_TIMEOUT_MS = Number(process.env.SM_ENGINE_PAGE_TIMEOUT_MS || 30000);

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function inside(root, rel) {
  const p = normalize(join(root, rel));
  return p.startsWith(normalize(root) + sep) ? p : null;
}

const browser = await chromium.launch({
  executablePath: spec.chromium || process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true, // playwright adds --headless and a fresh temporary --user-data-dir per launch
  args: [
    '--no-sandbox', // we run as root
    '--disable-gpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', // WebGL = SwiftShader (CPU)
    '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-dev-shm-usage',
  ],
  timeout: 60000,
});

const out = { browser: browser.version(), results: {} };
try {
  for (const job of spec.jobs) {
    const context = await browser.newContext({ viewport: { width: 400, height: 300 } });
    const page = await context.newPage();
    const logs = [];
    page.on('console', (m) => { logs.push(`[${m.type()}] ${m.text()}`); });
    page.on('pageerror', (e) => { logs.push(`[pageerror] ${e.message}`); });
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.origin !== 'http://sm.test') return route.abort();
      const p = decodeURIComponent(url.pathname);
      let file = null;
      if (p.startsWith('/lib/')) file = LIBS[p.slice(5)] || null;
      else if (p.startsWith('/assets/')) file = inside(job.assets, p.slice(8));
      else file = inside(HERE, p.slice(1));
      if (!file || !existsSync(file)) return route.fulfill({ status: 404, body: 'missing ' + p });
      return route.fulfill({ status: 200, contentType: TYPES[file.split('.').pop()] || 'application/octet-stream',
                             body: readFileSync(file) });
    });
    const q = new URLSearchParams(job.query || {}).toString();
    let result;
    try {
      await page.goto(`http://sm.test/${job.page}${q ? '?' + q : ''}`);
      await page.waitForFunction(() => window.result !== null && window.result !== undefined, null,
                                 { timeout: PAGE_TIMEOUT_MS });
      result = await page.evaluate(() => window.result);
    } catch (e) {
      result = { ok: false, error: 'runner: ' + String(e && e.message || e) };
    }
    result.logs = logs;
    out.results[job.id] = result;
    await context.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
