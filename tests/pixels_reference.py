"""The per-sprite post-processing as it was before it was vectorised (scarlet_moon.data.pixels up to
0.1.0), kept verbatim as the reference that the batched version must reproduce byte for byte.

Used by tests/test_pixels.py and bench/postprocess.py. Slow on purpose: a Python loop per sprite
and per cluster, np.unique(axis=0) per sprite.
"""

from __future__ import annotations

import numpy as np

from scarlet_moon.data.palettes import as_palette as _as_palette
from scarlet_moon.data.pixels import _check, _space, crisp_alpha

_CHUNK = 1 << 20  # distance-matrix elements per block


def _nearest(colors: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the nearest row of `targets` for each row of `colors` (float, same space); blocked."""
    out = np.empty(len(colors), dtype=np.int64)
    rows = max(1, _CHUNK // max(1, len(targets)))
    for i in range(0, len(colors), rows):
        d = ((colors[i : i + rows, None, :] - targets[None, :, :]) ** 2).sum(-1)
        out[i : i + rows] = d.argmin(1)
    return out


def quantize_to_palette(images: np.ndarray, palette: np.ndarray, *, space: str = "lab") -> np.ndarray:
    """Every opaque pixel -> the nearest palette colour (CIELAB by default); alpha unchanged."""
    out = _check(images).copy()
    pal = _as_palette(palette)
    opaque = out[..., 3] > 0
    if not opaque.any():
        return out
    uniq, inverse = np.unique(out[opaque][:, :3], axis=0, return_inverse=True)
    idx = _nearest(_space(uniq, space), _space(pal, space))
    out[opaque, :3] = pal[idx[inverse.reshape(-1)]]
    return out


def _kmeans_reps(colors: np.ndarray, counts: np.ndarray, k: int, space: str, iters: int = 20) -> np.ndarray:
    """k representative colours chosen among `colors` (weighted k-means, farthest-point init)."""
    pts = _space(colors, space)
    order = np.lexsort((colors[:, 2], colors[:, 1], colors[:, 0], -counts))  # deterministic tie-break
    chosen = [int(order[0])]  # most frequent colour first
    d = ((pts - pts[chosen[0]]) ** 2).sum(1)
    for _ in range(k - 1):
        nxt = int(np.argmax(d * counts))  # far away and frequent
        chosen.append(nxt)
        d = np.minimum(d, ((pts - pts[nxt]) ** 2).sum(1))
    centers = pts[chosen]
    for _ in range(iters):
        lab = _nearest(pts, centers)
        new = centers.copy()
        for j in range(k):
            m = lab == j
            if m.any():
                new[j] = (pts[m] * counts[m, None]).sum(0) / counts[m].sum()
        if np.allclose(new, centers):
            break
        centers = new
    return colors[_nearest(centers, pts)]  # snap centres to existing sprite colours


def cap_colors(images: np.ndarray, k: int, *, space: str = "lab") -> np.ndarray:
    """At most k distinct opaque colours per sprite, all taken from that sprite's own colours."""
    out = _check(images).copy()
    for sprite in out:
        opaque = sprite[..., 3] > 0
        colors, inverse, counts = np.unique(sprite[opaque][:, :3], axis=0, return_inverse=True, return_counts=True)
        if len(colors) <= k:
            continue
        reps = _kmeans_reps(colors, counts.astype(np.float64), int(k), space)
        mapped = reps[_nearest(_space(colors, space), _space(reps, space))]
        sprite[opaque, :3] = mapped[inverse.reshape(-1)]
    return out


def postprocess(
    images: np.ndarray, *, alpha_threshold: int = 128, palette: np.ndarray | None = None, colors: int | None = None
) -> np.ndarray:
    """crisp_alpha, then cap_colors (if colors), then quantize_to_palette (if palette)."""
    out = crisp_alpha(images, alpha_threshold)
    if colors is not None:
        out = cap_colors(out, colors)
    if palette is not None:
        out = quantize_to_palette(out, palette)
    return out


def clean_isolated(images: np.ndarray, tau: float = 20.0) -> np.ndarray:
    """scarlet_moon.data.neighbours.clean_isolated as it was: distances at every pixel of the batch."""
    from scarlet_moon.data.colour import srgb_to_lab
    from scarlet_moon.data.neighbours import SHIFTS, isolated_mask, shifted

    out = images.copy()
    iso = isolated_mask(out)
    if not iso.any():
        return out
    opaque, lab = out[..., 3] >= 128, srgb_to_lab(out[..., :3])
    best, colour = np.full(iso.shape, np.inf), np.zeros(out.shape[:3] + (3,), np.uint8)
    for dy, dx in SHIFTS:
        d = np.sqrt(((shifted(lab, dy, dx, 0.0) - lab) ** 2).sum(-1))
        d[~shifted(opaque, dy, dx, False)] = np.inf
        closer = d < best
        best[closer], colour[closer] = d[closer], shifted(out[..., :3], dy, dx, 0)[closer]
    fix = iso & (best <= tau)
    out[..., :3][fix] = colour[fix]
    return out
