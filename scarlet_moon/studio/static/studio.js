// Scarlet Moon studio: the Generate and Export panels, the batch grid and the kept set.
// Plain browser JavaScript, no build step. The server does every check; its one-line errors are shown in #error.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  models: [], model: null,   // the selected model's description (/api/models)
  sprites: {},               // id -> sprite JSON from the server (png data URL, settings, command, file)
  batch: [], kept: [],       // sprite ids in the grid, and kept ones in keeping order
  selected: null,            // the kept sprite being edited
  job: null, busy: false, lastError: null,
};

function showError(message) {
  state.lastError = message;
  $('error-text').textContent = message;
  $('error').hidden = false;
}
function clearError() { $('error').hidden = true; }

async function api(path, options = {}) {
  const opts = { ...options, headers: { ...(options.headers || {}) } };
  if (opts.json !== undefined) {
    opts.method = opts.method || 'POST';
    opts.body = JSON.stringify(opts.json);
    opts.headers['content-type'] = 'application/json';
    delete opts.json;
  }
  const res = await fetch(path, opts);
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { message = (await res.json()).error || message; } catch (e) { /* not JSON */ }
    showError(message);
    throw new Error(message);
  }
  return res;
}

// ------------------------------------------------------------------------------------------ sprites on canvases
function zoom() { return Number($('zoom').value); }

function sizeOf(sprite) {
  // [h, w] of the sprite's own model (a kept sprite may come from another model than the selected one)
  const m = state.models.find((x) => x.id === sprite.settings.model) || state.model;
  return m ? m.size : [16, 16];
}

function spriteCanvas(sprite, scale) {
  const [h, w] = sizeOf(sprite);
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  c.className = 'checker';
  c.dataset.id = sprite.id;
  c.style.width = `${w * scale}px`; c.style.height = `${h * scale}px`;
  c.title = `${sprite.label} · seed ${sprite.settings.seed} · #${sprite.index}`;
  const img = new Image();
  img.onload = () => c.getContext('2d').drawImage(img, 0, 0);
  img.src = sprite.png;
  return c;
}

function applyZoom() {
  $('zoom-value').textContent = `${zoom()}×`;
  for (const c of document.querySelectorAll('#grid canvas')) {
    c.style.width = `${c.width * zoom()}px`; c.style.height = `${c.height * zoom()}px`;
  }
}

function addToGrid(sprite) {
  state.sprites[sprite.id] = sprite;
  state.batch.push(sprite.id);
  const c = spriteCanvas(sprite, zoom());
  if (state.kept.includes(sprite.id)) c.classList.add('kept');
  c.addEventListener('click', () => toggleKeep(sprite.id));
  $('grid').appendChild(c);
}

function toggleKeep(id) {
  const i = state.kept.indexOf(id);
  if (i >= 0) state.kept.splice(i, 1); else state.kept.push(id);
  const cell = document.querySelector(`#grid canvas[data-id="${id}"]`);
  if (cell) cell.classList.toggle('kept', i < 0);
  if (i >= 0 && state.selected === id) window.studioEdit.select(null);
  renderKept();
}

function renderKept() {
  $('kept').replaceChildren(...state.kept.map((id) => {
    const c = spriteCanvas(state.sprites[id], 3);
    if (id === state.selected) c.classList.add('selected');
    c.addEventListener('click', () => window.studioEdit.select(id));
    return c;
  }));
  $('kept-count').textContent = String(state.kept.length);
}

// ------------------------------------------------------------------------------------------ models and settings
function fill(select, values, chosen) {
  select.replaceChildren(...values.map(([value, text]) => {
    const o = document.createElement('option');
    o.value = value; o.textContent = text; o.selected = value === chosen;
    return o;
  }));
}

function chooseModel(id) {
  state.model = state.models.find((m) => m.id === id);
  const m = state.model;
  fill($('label'), m.labels.map((l) => [l, l]), $('label').value);
  fill($('sampler'), m.samplers.map((s) => [s, s]), m.defaults.sampler);
  $('steps').value = m.defaults.steps; $('steps').max = m.max_steps;
  $('guidance').value = m.defaults.guidance;
}

async function loadModels() {
  const { models } = await (await api('/api/models')).json();
  state.models = models;
  fill($('model'), models.map((m) => [m.id, m.name]), models[0].id);
  chooseModel(models[0].id);
  const { formats } = await (await api('/api/formats')).json();
  $('formats').replaceChildren(...formats.map((f) => {
    const l = document.createElement('label');
    l.title = f.description;
    l.innerHTML = `<input type="checkbox" value="${f.name}"${f.name === 'json-hash' ? ' checked' : ''}> `;
    l.append(f.name);
    return l;
  }));
}

function numberOrNull(id) { const v = $(id).value.trim(); return v === '' ? null : Number(v); }

function generateSettings() {
  return {
    model: state.model.id, label: $('label').value, count: numberOrNull('count'), seed: numberOrNull('seed'),
    sampler: $('sampler').value, steps: numberOrNull('steps'), guidance: numberOrNull('guidance'),
    palette: $('palette').value, colors: numberOrNull('colors'), tileable: $('tileable').checked,
  };
}

async function uploadPalette(file) {
  const res = await api(`/api/palettes?name=${encodeURIComponent(file.name)}`, { method: 'POST', body: file });
  const pal = await res.json();
  const o = document.createElement('option');
  o.value = pal.id; o.textContent = `${pal.name} (${pal.colors.length})`;
  $('palette').appendChild(o);
  $('palette').value = pal.id;
  palettes[pal.id] = pal.colors;
  showSwatches();
  clearError();
}

const palettes = {};  // uploaded palette id -> its colours: the swatches follow the select

function showSwatches() {
  const colors = palettes[$('palette').value] || [];  // the training palette and "none" show none
  $('swatches').replaceChildren(...colors.slice(0, 256).map((hex) => {
    const i = document.createElement('i'); i.style.background = hex; return i;
  }));
}

// ------------------------------------------------------------------------------------------ jobs
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runJob(body) {
  if (state.busy) return;
  clearError();
  state.busy = true;
  $('generate').disabled = true; $('cancel').disabled = false;
  try {
    let view = await (await api('/api/generate', { json: body })).json();
    state.job = view;
    state.batch = [];
    $('grid').replaceChildren();
    let seen = 0;
    for (;;) {
      view.sprites.forEach(addToGrid);
      seen += view.sprites.length;
      $('progress').value = view.total ? view.done / view.total : 0;
      const wait = view.state === 'queued' && view.ahead ? ` behind ${view.ahead} job(s)` : '';
      $('status').textContent = `${view.state}${wait} · ${seen}/${view.total} sprites`;
      if (!['queued', 'running'].includes(view.state)) break;
      await sleep(250);
      view = await (await api(`/api/jobs/${view.id}?since=${seen}`)).json();
      state.job = view;
    }
    if (view.state === 'failed') showError(view.error);
  } catch (e) {
    // shown by api()
  } finally {
    state.busy = false;
    $('generate').disabled = false; $('cancel').disabled = true;
  }
}

// An animation model draws whole characters: each comes back as a GIF (a row per direction) the page plays.
async function runAnim() {
  if (state.busy) return;
  clearError();
  state.busy = true;
  $('generate').disabled = true;
  $('status').textContent = 'drawing characters…';
  try {
    const body = { model: state.model.id, label: $('label').value, count: Math.min(16, Number($('count').value) || 1),
                   seed: Number($('seed').value) || 0 };
    const view = await (await api('/api/anim', { json: body })).json();
    $('grid').replaceChildren(...view.characters.map((c) => {
      const img = document.createElement('img');
      img.src = c.gif; img.alt = c.name; img.title = `${c.name}: ${view.directions.join(', ')}`;
      img.className = 'anim';
      return img;
    }));
    $('status').textContent = `${view.characters.length} characters · ${view.frames} frames per direction`;
  } catch (e) {
    // shown by api()
  } finally {
    state.busy = false;
    $('generate').disabled = false;
  }
}

async function cancelJob() {
  if (state.job) await api(`/api/jobs/${state.job.id}/cancel`, { method: 'POST' });
}

// ------------------------------------------------------------------------------------------ export
async function exportZip() {
  clearError();
  const formats = [...document.querySelectorAll('#formats input:checked')].map((i) => i.value);
  const body = {
    sprites: state.kept, name: $('export-name').value, formats, padding: numberOrNull('padding'),
    extrude: numberOrNull('extrude'), scale: numberOrNull('scale'), max_size: numberOrNull('max-size'),
    pot: $('pot').checked, trim: $('trim').checked, dedupe: $('dedupe').checked,
  };
  try {
    const blob = await (await api('/api/export', { json: body })).blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${body.name}.zip`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) { /* shown by api() */ }
}

// ------------------------------------------------------------------------------------------ wiring
function switchTab(name) {
  for (const t of document.querySelectorAll('nav .tab')) t.classList.toggle('active', t.dataset.tab === name);
  $('tab-make').hidden = name !== 'make';
  $('tab-runs').hidden = name !== 'runs';
  if (name === 'runs' && window.studioRuns) window.studioRuns.show();
}

function wire() {
  $('model').addEventListener('change', (e) => chooseModel(e.target.value));
  $('zoom').addEventListener('input', applyZoom);
  $('dice').addEventListener('click', () => { $('seed').value = Math.floor(Math.random() * 1e9); });
  $('generate').addEventListener('click', () => (state.model && state.model.anim ? runAnim() : runJob(generateSettings())));
  $('cancel').addEventListener('click', cancelJob);
  $('palette-file').addEventListener('change', (e) => {
    if (e.target.files[0]) uploadPalette(e.target.files[0]).catch(() => {});
    e.target.value = '';
  });
  $('palette').addEventListener('change', showSwatches);
  $('export').addEventListener('click', exportZip);
  $('error-close').addEventListener('click', clearError);
  for (const t of document.querySelectorAll('nav .tab')) t.addEventListener('click', () => switchTab(t.dataset.tab));
}

window.studio = { state, api, runJob, runAnim, renderKept, toggleKeep, sizeOf, showError, clearError, generateSettings, spriteCanvas };
wire();
state.ready = loadModels().then(() => { applyZoom(); state.loaded = true; }).catch(() => {});
