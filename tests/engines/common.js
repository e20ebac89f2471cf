// Shared helpers for the engine pages (served as /common.js).
window.result = null;
window.SM = {
  params: new URLSearchParams(location.search),
  // RGBA bytes -> base64 (chunked: String.fromCharCode has an argument limit).
  b64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  },
  // Grid positions for drawing every frame once, unscaled, with gaps so a bleeding neighbour shows up.
  layout(names, cell, cols) {
    return names.map((n, i) => ({ name: n, x: 2 + (i % cols) * cell, y: 2 + Math.floor(i / cols) * cell }));
  },
  fail(e) { window.result = { ok: false, error: String((e && e.stack) || e) }; },
};
window.addEventListener('error', (e) => { if (window.result === null) SM.fail('window error: ' + e.message); });
window.addEventListener('unhandledrejection', (e) => { if (window.result === null) SM.fail('unhandled: ' + e.reason); });
