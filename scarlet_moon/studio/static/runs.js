// Scarlet Moon studio: the Runs panel. The runs folder's training runs, each with its loss curve (from the
// MLflow store `sm train` writes beside them) and its latest sample grid; refreshed every 5 s while shown,
// so a run being trained (`sm train` in a terminal) is watched live.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  let timer = null;

  function plot(canvas, points) {
    const ctx = canvas.getContext('2d');
    const W = canvas.width; const H = canvas.height; const pad = 28;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = '#a496b4';
    ctx.font = '11px system-ui';
    if (points.length < 2) { ctx.fillText('no loss logged yet', pad, H / 2); return; }
    const xs = points.map((p) => p[0]); const ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs); const x1 = Math.max(...xs);
    const y0 = Math.min(...ys); const y1 = Math.max(...ys);
    const sx = (x) => pad + (x - x0) / Math.max(x1 - x0, 1e-9) * (W - 2 * pad);
    const sy = (y) => H - pad + (pad * 2 - H) * (y - y0) / Math.max(y1 - y0, 1e-9);
    ctx.strokeStyle = '#3a2f48';
    ctx.strokeRect(pad, pad, W - 2 * pad, H - 2 * pad);
    ctx.fillText(y1.toPrecision(3), 2, pad + 4);
    ctx.fillText(y0.toPrecision(3), 2, H - pad);
    ctx.fillText(`step ${x1}`, W - pad - 50, H - 8);
    ctx.strokeStyle = '#d8344c';
    ctx.beginPath();
    points.forEach(([x, y], i) => (i ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
    ctx.stroke();
  }

  function runRow(run) {
    const row = document.createElement('div');
    row.className = 'run';
    const about = document.createElement('div');
    const last = run.loss.length ? run.loss[run.loss.length - 1][1].toPrecision(4) : '–';
    about.innerHTML = '<b></b><br><small></small>';
    about.querySelector('b').textContent = run.name;
    about.querySelector('small').textContent = `${run.live ? 'training' : run.status || 'not tracked'} · ` +
      `${run.model ? 'model ready' : 'no model yet'} · loss ${last}`;
    if (run.live) {
      const stop = document.createElement('button');
      stop.textContent = 'Stop';
      stop.addEventListener('click', () => window.studio.api(`/api/runs/${encodeURIComponent(run.name)}/stop`,
        { method: 'POST' }).then(refresh).catch(() => {}));
      about.append(document.createElement('br'), stop);
    }
    if (run.log && run.log.length) {
      const pre = document.createElement('pre');
      pre.textContent = run.log.join('\n');
      about.append(pre);
    }
    const canvas = document.createElement('canvas');
    canvas.width = 420; canvas.height = 160;
    plot(canvas, run.loss);
    const grid = document.createElement('div');
    if (run.grid_step !== null) {
      const img = document.createElement('img');
      img.src = `/api/runs/${encodeURIComponent(run.name)}/grid.png?step=${run.grid_step}`;
      img.alt = `samples at step ${run.grid_step}`;
      grid.append(img, document.createElement('br'), `samples at step ${run.grid_step}`);
    } else grid.textContent = 'no sample grid yet';
    row.append(about, canvas, grid);
    return row;
  }

  async function readSprites(files) {
    // <input webkitdirectory>: "folder/label/name.png" -> "label/name.png", PNGs only, base64
    const out = [];
    for (const f of files) {
      const rel = (f.webkitRelativePath || f.name).split('/').slice(1).join('/');
      if (!rel.toLowerCase().endsWith('.png')) continue;
      const bytes = new Uint8Array(await f.arrayBuffer());
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      out.push({ path: rel, data: btoa(s) });
    }
    return out;
  }

  async function startTraining() {
    window.studio.clearError();
    const files = await readSprites($('train-files').files);
    const body = { name: $('train-name').value, model: $('train-model').value, time: $('train-time').value, files };
    try {
      await window.studio.api('/api/train', { json: body });
      refresh();
    } catch (e) { /* shown by api() */ }
  }

  async function refresh() {
    const models = window.studio.state.models;
    if ($('train-model').options.length !== models.length) {
      $('train-model').replaceChildren(...models.map((m) => new Option(m.name, m.id)));
    }
    try {
      const { runs, runs_dir: dir, can_train: canTrain } = await (await window.studio.api('/api/runs')).json();
      $('train-start').disabled = !canTrain;
      $('runs-dir').textContent = dir;
      $('runs').replaceChildren(...(runs.length ? runs.map(runRow) : [document.createTextNode(
        'No runs yet: train one with `sm train --runs-dir ' + dir + '` and it shows here, live.')]));
    } catch (e) { /* shown by api() */ }
  }

  function show() {
    refresh();
    if (timer === null) {
      timer = setInterval(() => { if (!$('tab-runs').hidden) refresh(); }, 5000);
    }
  }

  $('train-start').addEventListener('click', startTraining);
  window.studioRuns = { show, refresh, plot };
})();
