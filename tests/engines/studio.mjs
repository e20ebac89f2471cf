// Drive `sm studio` in headless Debian chromium through playwright-core, as a person would:
//
//   node studio.mjs <spec.json>
//
// spec.json: {"chromium": "/usr/bin/chromium", "url": "http://127.0.0.1:PORT/", "steps": 8, "out": "/abs/dir",
//             "screenshot": "/abs/studio.png", "huge_png": "/abs/huge.png"}
// Generates 16 hero sprites, keeps 4, makes variations of one, paints a mask and inpaints, checks that bad
// requests show their message in the page (and the next request works), exports a zip (saved to out/).
// Prints ONE JSON line on stdout with what the Python test checks (sprite PNGs as data URLs, the mask...).
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TIMEOUT = Number(process.env.SM_STUDIO_TIMEOUT_MS || 600000); // a hang guard for a busy machine

const browser = await chromium.launch({
  executablePath: spec.chromium, headless: true, timeout: 60000,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const out = { ok: false, logs: [], errors: {} };
const idle = (page) => page.waitForFunction(() => window.studio.state.busy === false &&
  window.studio.state.job && !['queued', 'running'].includes(window.studio.state.job.state), null, { timeout: TIMEOUT });

const snapshot = (page) => page.evaluate(() => {
  const s = window.studio.state;
  return { batch: s.batch, kept: s.kept, job: s.job && { state: s.job.state, error: s.job.error },
           sprites: Object.fromEntries(s.batch.concat(s.kept).map((id) => [id, s.sprites[id]])) };
});
const batchOf = (st) => st.batch.map((id) => st.sprites[id]);
const setRange = (page, sel, value) => page.$eval(sel, (el, v) => { el.value = v; el.dispatchEvent(new Event('input')); },
                                                  value);

async function generateAndKeep(page) {
  await page.goto(spec.url);
  await page.waitForFunction(() => window.studio && window.studio.state.loaded === true, null, { timeout: 60000 });
  await page.selectOption('#label', 'hero');
  await page.fill('#count', '16');
  await page.fill('#seed', '7');
  await page.fill('#steps', String(spec.steps));
  await page.click('#generate');
  await idle(page);
  out.batch = batchOf(await snapshot(page));
  for (let i = 0; i < 4; i++) await page.click(`#grid canvas >> nth=${i * 3}`); // keep 4
  await page.click('#kept canvas >> nth=0'); // edit the first kept
  const st = await snapshot(page);
  out.kept = st.kept.map((id) => st.sprites[id]);
}

async function paintVaryInpaint(page) {
  // a brush stroke across the middle (size 3); the screenshot: 16 heroes, 4 kept, the mask on the first
  await page.fill('#brush', '3');
  const box = await page.locator('#edit-mask').boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.45);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.55, { steps: 12 });
  await page.mouse.up();
  out.mask = await page.evaluate(() => Array.from(window.studioEdit.edit.mask));
  await setRange(page, '#zoom', '6');
  await page.screenshot({ path: spec.screenshot });
  await setRange(page, '#strength', '0.5');
  await page.click('#variations');
  await idle(page);
  out.variations = batchOf(await snapshot(page));
  await page.click('#inpaint');
  await idle(page);
  out.inpainted = batchOf(await snapshot(page));
  await page.click('#grid canvas >> nth=0'); // keep one inpainted sprite too
}

async function badRequests(page) {
  // each message shows in the page; the next request still works
  const shown = async () => (await page.isVisible('#error')) ? page.textContent('#error-text') : null;
  await page.fill('#count', '0');
  await page.click('#generate');
  await page.waitForSelector('#error', { state: 'visible' });
  out.errors.count = await shown();
  await page.fill('#count', '');
  await page.click('#generate');
  await page.waitForFunction(() => /empty/.test(document.getElementById('error-text').textContent));
  out.errors.empty_count = await shown();
  await page.fill('#count', '2');
  await page.evaluate(() => window.studio.runJob({ ...window.studio.generateSettings(), label: 'purple' }));
  out.errors.label = await shown();
  await page.setInputFiles('#palette-file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a png') });
  await page.waitForFunction(() => /notes\.png/.test(document.getElementById('error-text').textContent));
  out.errors.not_image = await shown();
  await page.setInputFiles('#palette-file', spec.huge_png);
  await page.waitForFunction(() => /huge\.png/.test(document.getElementById('error-text').textContent));
  out.errors.huge = await shown();
  await page.click('#generate');
  await idle(page);
  const st = await snapshot(page);
  out.after_errors = { state: st.job.state, count: st.batch.length, error_hidden: !(await page.isVisible('#error')) };
}

async function exportAndRuns(page) {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: TIMEOUT }), page.click('#export')]);
  out.zip = join(spec.out, download.suggestedFilename());
  await download.saveAs(out.zip);
  const st = await snapshot(page);
  out.exported = st.kept.map((id) => st.sprites[id]);
  await page.click('#kept canvas >> nth=4'); // the inpainted one, edited then removed from the kept set
  await page.click('#unkeep');
  out.kept_after_unkeep = await page.evaluate(() => [window.studio.state.kept.length, window.studio.state.selected,
                                                      document.querySelectorAll('#kept canvas').length]);
  await page.click('nav .tab[data-tab=runs]'); // an empty runs folder here: it says how to make one
  await page.waitForFunction(() => document.getElementById('runs').textContent.length > 0);
  out.runs_text = await page.textContent('#runs');
  const panels = async () => ({ make: await page.isVisible('#tab-make'), runs: await page.isVisible('#tab-runs') });
  out.tabs = { runs: await panels() };
  await page.click('nav .tab[data-tab=make]');
  out.tabs.make = await panels();
  await page.setViewportSize({ width: 800, height: 1000 }); // a narrow window: nothing spills out of its panel
  out.narrow = await page.evaluate(() => {
    const zoom = document.getElementById('zoom-value').getBoundingClientRect();
    const panel = document.getElementById('grid-panel').getBoundingClientRect();
    return { zoom_right: zoom.right, panel_right: panel.right };
  });
  await page.setViewportSize({ width: 1400, height: 1000 });
}

async function paletteSwatches(page) {
  // the swatches follow the palette select: an upload shows its colours, switching back clears them
  const count = () => page.evaluate(() => document.querySelectorAll('#swatches i').length);
  await page.setInputFiles('#palette-file', { name: 'rgb.hex', mimeType: 'text/plain', buffer: Buffer.from('ff0000\n00ff00\n0000ff\n') });
  await page.waitForFunction(() => document.querySelectorAll('#swatches i').length === 3);
  const uploaded = await page.inputValue('#palette');
  out.swatches = { uploaded: await count() };
  await page.selectOption('#palette', 'training');
  out.swatches.training = await count();
  await page.selectOption('#palette', uploaded);
  out.swatches.again = await count();
  await page.selectOption('#palette', 'training');
}

async function run(page) {
  await generateAndKeep(page);
  await paintVaryInpaint(page);
  await badRequests(page);
  await paletteSwatches(page);
  await exportAndRuns(page);
  out.ok = true;
}

try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (m) => out.logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => out.logs.push(`[pageerror] ${e.message}`));
  await run(page);
} catch (e) {
  out.error = String((e && e.stack) || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
