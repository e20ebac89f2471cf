// `sm studio --model <animation model>` in headless chromium: pick a label, 2 characters, Generate; the page
// must show one playing GIF per character. Prints ONE JSON line: {"ok", "images": [{alt, src, w, h, complete}], "status"}.
//   node studio_anim.mjs <spec.json>   spec: {"chromium", "url"}
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TIMEOUT = Number(process.env.SM_STUDIO_TIMEOUT_MS || 600000); // a hang guard for a busy machine
const browser = await chromium.launch({
  executablePath: spec.chromium, headless: true, timeout: 60000,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const out = { ok: false, logs: [] };
try {
  const page = await browser.newPage();
  page.on('console', (m) => out.logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => out.logs.push(`[pageerror] ${e.message}`));
  await page.goto(spec.url);
  await page.waitForFunction(() => window.studio && window.studio.state.loaded === true, null, { timeout: 60000 });
  await page.selectOption('#label', 'player');
  await page.fill('#count', '2');
  await page.fill('#seed', '4');
  await page.click('#generate');
  await page.waitForFunction(() => document.querySelectorAll('#grid img.anim').length === 2 &&
    [...document.querySelectorAll('#grid img.anim')].every((i) => i.complete && i.naturalWidth > 0), null,
    { timeout: TIMEOUT });
  out.images = await page.$$eval('#grid img.anim', (imgs) => imgs.map((i) => (
    { alt: i.alt, src: i.src, w: i.naturalWidth, h: i.naturalHeight, complete: i.complete })));
  out.status = await page.textContent('#status');
  out.error_shown = !(await page.$eval('#error', (e) => e.hidden));
  out.ok = true;
} catch (e) {
  out.error = String((e && e.stack) || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
