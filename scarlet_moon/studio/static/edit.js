// Scarlet Moon studio: the Edit panel. A kept sprite, zoomed, with a mask painted over it (brush / eraser);
// variations (init + strength) and inpainting (init + mask) run as jobs through /api/generate like any batch.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const { state } = window.studio;
  const edit = { mask: null, w: 16, h: 16, painting: false, image: null };

  function select(id) {
    state.selected = id;
    window.studio.renderKept();
    $('edit').hidden = id === null;
    $('edit-empty').hidden = id !== null;
    if (id === null) return;
    const sprite = state.sprites[id];
    const [h, w] = window.studio.sizeOf(sprite);
    Object.assign(edit, { w, h, mask: new Uint8Array(w * h) });
    for (const c of [$('edit-sprite'), $('edit-mask')]) { c.width = w; c.height = h; }
    $('tiled').width = 3 * w; $('tiled').height = 3 * h;
    const img = new Image();
    img.onload = () => {
      edit.image = img;
      $('edit-sprite').getContext('2d').clearRect(0, 0, w, h);
      $('edit-sprite').getContext('2d').drawImage(img, 0, 0);
      const t = $('tiled').getContext('2d');
      t.clearRect(0, 0, 3 * w, 3 * h);
      for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) t.drawImage(img, x * w, y * h);
    };
    img.src = sprite.png;
    drawMask();
    showInfo(sprite);
  }

  function showInfo(sprite) {
    const s = sprite.settings;
    const rows = [['label', sprite.label], ['seed', s.seed], ['index', `${sprite.index} of ${s.count}`],
      ['model', s.model], ['sampler', `${s.sampler}, ${s.steps} steps`], ['guidance', s.guidance],
      ['palette', s.palette], ['colours', s.colors ?? "model's"], ['file', sprite.file]];
    if (s.init) rows.push(['edit', `${s.inpaint ? 'inpainted' : 'variation'} of ${s.init}, strength ${s.strength}`]);
    $('info').replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = String(v);
      return [dt, dd];
    }));
    $('command').textContent = sprite.command;
  }

  function drawMask() {
    const ctx = $('edit-mask').getContext('2d');
    ctx.clearRect(0, 0, edit.w, edit.h);
    ctx.fillStyle = 'rgba(255, 40, 80, 0.55)';
    for (let i = 0; i < edit.mask.length; i++) {
      if (edit.mask[i]) ctx.fillRect(i % edit.w, Math.floor(i / edit.w), 1, 1);
    }
  }

  function paint(event) {
    const r = $('edit-mask').getBoundingClientRect();
    const x = Math.floor((event.clientX - r.left) / r.width * edit.w);
    const y = Math.floor((event.clientY - r.top) / r.height * edit.h);
    const size = Math.max(1, Number($('brush').value) || 1);
    const on = document.querySelector('input[name=tool]:checked').value === 'brush' ? 1 : 0;
    const lo = -Math.floor((size - 1) / 2);
    for (let dy = lo; dy < lo + size; dy++) {
      for (let dx = lo; dx < lo + size; dx++) {
        const px = x + dx; const py = y + dy;
        if (px >= 0 && py >= 0 && px < edit.w && py < edit.h) edit.mask[py * edit.w + px] = on;
      }
    }
    drawMask();
  }

  function editBody(extra) {
    const s = state.sprites[state.selected];
    return { ...window.studio.generateSettings(), label: s.label, model: s.settings.model, init: state.selected,
             ...extra };
  }

  function variations() {
    if (!state.selected) return;
    window.studio.runJob(editBody({ count: 4, strength: Number($('strength').value) }));
  }

  function inpaint() {
    if (!state.selected) return;
    if (!edit.mask.some((v) => v)) {
      window.studio.showError('paint the pixels to regenerate on the sprite first (the mask is empty)');
      return;
    }
    window.studio.runJob(editBody({ count: 4, mask: Array.from(edit.mask) }));
  }

  function wire() {
    const m = $('edit-mask');
    m.addEventListener('pointerdown', (e) => { edit.painting = true; m.setPointerCapture(e.pointerId); paint(e); });
    m.addEventListener('pointermove', (e) => { if (edit.painting) paint(e); });
    m.addEventListener('pointerup', () => { edit.painting = false; });
    $('clear-mask').addEventListener('click', () => { edit.mask.fill(0); drawMask(); });
    $('strength').addEventListener('input', () => {
      $('strength-value').textContent = Number($('strength').value).toFixed(2);
    });
    $('unkeep').addEventListener('click', () => { if (state.selected) window.studio.toggleKeep(state.selected); });
    $('variations').addEventListener('click', variations);
    $('inpaint').addEventListener('click', inpaint);
    $('copy').addEventListener('click', () => {
      navigator.clipboard.writeText($('command').textContent).catch(() => {
        window.studio.showError('the browser refused the clipboard; select the command and copy it');
      });
    });
  }

  window.studioEdit = { select, edit, drawMask };
  wire();
})();
