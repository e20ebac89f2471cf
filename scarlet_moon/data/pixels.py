"""Pixel-perfect post-processing of generated sprites, and pixel statistics.

Images are numpy uint8 arrays N x H x W x 4 (RGBA). No torch here (numpy + Pillow only).
A pixel is "opaque" when its alpha is > 0; after `crisp_alpha` alpha is 0 or 255.
Colour distances are CIE76 (Euclidean in CIELAB, sRGB D65), closer to what the eye sees
than RGB; `space="rgb"` gives plain RGB distance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from scarlet_moon.data.colour import srgb_to_lab
from scarlet_moon.data.kmeans import kmeans_reps, nearest
from scarlet_moon.data.neighbours import clean_isolated, despeckle
from scarlet_moon.data.palettes import as_palette, load_palette
from scarlet_moon.errors import BadInput

PathLike = Union[str, "os.PathLike[str]"]
_CHUNK = 1 << 18  # distance-matrix elements per block (2 MiB: stays in cache)


def _check(images: np.ndarray) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 4:
        shape = getattr(images, "shape", None)
        raise BadInput(f"expected uint8 images N x H x W x 4, got {getattr(images, 'dtype', type(images))} {shape}")
    return images


def crisp_alpha(images: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Alpha >= threshold -> 255, else 0; fully transparent pixels get RGB 0."""
    if not 1 <= int(threshold) <= 255:
        raise BadInput(f"bad alpha threshold {threshold!r}; expected an integer in 1..255")
    out = _check(images).copy()
    opaque = out[..., 3] >= threshold
    out[..., 3] = np.where(opaque, 255, 0).astype(np.uint8)
    out[~opaque, :3] = 0
    return out


def _space(rgb: np.ndarray, space: str) -> np.ndarray:
    if space == "lab":
        return srgb_to_lab(rgb)
    if space == "rgb":
        return rgb.astype(np.float64)
    raise BadInput(f"unknown colour space {space!r}; expected lab or rgb")


# ---------------------------------------------------------------- palette snap and colour cap
#
# Both work on whole batches. A colour is an int key R << 16 | G << 8 | B, so keys sort as
# np.unique(axis=0) sorts RGB rows. quantize_to_palette looks each distinct colour of the batch
# up once. cap_colors puts each sprite's distinct colours into one row of a padded table
# (S sprites x M colours) and runs the k-means of all rows at once (scarlet_moon.data.kmeans); the
# result is byte-identical to the per-sprite loop it replaced (tests/pixels_reference.py). Lab
# values agree too: srgb_to_lab of a row does not depend on the other rows (checked for 2 to
# 50,000 rows; a single row takes another matmul path, 1e-13 off, but the old code converted
# one row only where it did not matter: one representative, k = 1).

_NONE = 1 << 24  # the key of a transparent pixel, and of padding: sorts after every colour


def _keys(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x 4 -> int64 N x (H*W) keys R << 16 | G << 8 | B; _NONE where alpha is 0."""
    n, h, w = images.shape[:3]
    rgb = images[..., :3].reshape(n, h * w, 3).astype(np.int64)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return np.where(images[..., 3].reshape(keys.shape) > 0, keys, _NONE)


def _rgb(keys: np.ndarray) -> np.ndarray:
    """Keys (...) -> uint8 RGB (..., 3); _NONE -> black."""
    k = np.where(keys == _NONE, 0, keys)
    return np.stack([k >> 16, (k >> 8) & 255, k & 255], axis=-1).astype(np.uint8)


def _nearest(colors: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the nearest row of `targets` (K x 3) for each row of `colors` (U x 3), first on
    ties. The colours go in stacks of 256 against the same targets: one small matmul each,
    which OpenBLAS keeps on one thread (on a busy 2-core machine its threads made this step
    10x slower)."""
    u, per = len(colors), 256
    stacks = -(-u // per)
    flat = np.zeros((3, stacks * per))
    flat[:, :u] = colors.T
    x = flat.reshape(3, stacks, per)  # 3 x S x 256, zero padding
    t = np.broadcast_to(targets.T[:, None, :], (3, stacks, len(targets)))
    out = np.empty((stacks, per), dtype=np.int64)
    step = max(1, _CHUNK // (per * len(targets)))  # stacks per block
    for i in range(0, stacks, step):
        out[i : i + step] = nearest(x[:, i : i + step], t[:, i : i + step])
    return out.ravel()[:u]


def quantize_to_palette(images: np.ndarray, palette: np.ndarray, *, space: str = "lab") -> np.ndarray:
    """Every opaque pixel -> the nearest palette colour (CIELAB by default); alpha unchanged."""
    out = _check(images).copy()
    pal = as_palette(palette)
    keys = _keys(out)  # N x P
    opaque = keys != _NONE
    if not opaque.any():
        return out
    uniq, inverse = np.unique(keys[opaque], return_inverse=True)  # the batch's distinct colours
    idx = _nearest(_space(_rgb(uniq), space), _space(pal, space))
    out.reshape(keys.shape + (4,))[opaque, :3] = pal[idx[inverse]]
    return out


def _sprite_colours(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(return_inverse, return_counts) on every row of keys (N x P) at once.

    Returns table N x M (each sprite's distinct keys ascending, then _NONE), counts N x M (0 on
    _NONE) and inverse N x P (the table column of each pixel)."""
    n, p = keys.shape
    order = np.argsort(keys, axis=1)
    s = np.take_along_axis(keys, order, 1)
    new = np.ones(s.shape, bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    col = np.cumsum(new, 1) - 1  # N x P, table column of each sorted pixel
    inverse = np.empty_like(col)
    np.put_along_axis(inverse, order, col, 1)
    width = int(col[:, -1].max()) + 1 if n and p else 0
    flat = (col + width * np.arange(n)[:, None]).ravel()
    table = np.full(n * width, _NONE, np.int64)
    table[flat] = s.ravel()
    table = table.reshape(n, width)
    counts = np.bincount(flat, minlength=n * width).reshape(n, width)
    counts[table == _NONE] = 0
    return table, counts, inverse


def _cap_block(table: np.ndarray, counts: np.ndarray, k: int, space: str) -> np.ndarray:
    """table, counts S x M (rows of _sprite_colours with > k colours) -> S x M keys: each colour
    replaced by the nearest of the k representatives k-means picked among the sprite's colours."""
    rows = np.arange(len(table))[:, None]
    pts = _space(_rgb(table).reshape(-1, 3), space)  # (S*M) x 3; padding is black
    x = np.ascontiguousarray(pts.reshape(table.shape + (3,)).transpose(2, 0, 1))  # 3 x S x M
    reps = kmeans_reps(x, counts.astype(np.float64), table != _NONE, k)  # S x k
    near = nearest(x, x[:, rows, reps])  # S x M: nearest representative
    return table[rows, reps[rows, near]]


def cap_colors(images: np.ndarray, k: int, *, space: str = "lab") -> np.ndarray:
    """At most k distinct opaque colours per sprite, all taken from that sprite's own colours.

    A sprite with more than k colours: weighted k-means of its colours (seeds: the most frequent
    colour, then farthest points weighted by count; at most 20 Lloyd iterations), centres snapped
    to the nearest of its colours, each colour replaced by the nearest snapped centre."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise BadInput(f"bad colour cap {k!r}; expected an integer >= 1")
    out, k = _check(images).copy(), int(k)
    keys = _keys(out)  # N x P
    table, counts, inverse = _sprite_colours(keys)
    m = (table != _NONE).sum(1)  # distinct colours per sprite
    todo = np.flatnonzero(m > k)
    todo = todo[np.argsort(m[todo], kind="stable")]  # similar widths share a block
    new = table.copy()
    step = max(1, _CHUNK // (k * int(m.max(initial=1))))  # S x M x k floats per block
    for i in range(0, len(todo), step):
        block = todo[i : i + step]
        width = int(m[block].max())
        new[block, :width] = _cap_block(table[block, :width], counts[block, :width], k, space)
    opaque = keys != _NONE
    out.reshape(keys.shape + (4,))[opaque, :3] = _rgb(np.take_along_axis(new, inverse, 1)[opaque])
    return out


def upscale(images: np.ndarray, n: int) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor n."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise BadInput(f"bad upscale factor {n!r}; expected an integer >= 1")
    return np.repeat(np.repeat(_check(images), n, axis=1), n, axis=2)


def make_grid(images: np.ndarray, ncols: int, scale: int = 4, pad: int = 1) -> np.ndarray:
    """uint8 N x H x W x C -> one uint8 RGBA image (rows x cols of sprites), nearest-neighbour scaled,
    transparent gaps."""
    n, h, w, c = images.shape
    rows = max(1, -(-n // ncols))
    sh, sw = h * scale, w * scale
    grid = np.zeros((rows * (sh + pad) + pad, ncols * (sw + pad) + pad, 4), np.uint8)
    big = images.repeat(scale, axis=1).repeat(scale, axis=2)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (sh + pad), pad + col * (sw + pad)
        grid[y : y + sh, x : x + sw, :c] = big[i]
        if c == 3:
            grid[y : y + sh, x : x + sw, 3] = 255
    return grid


def postprocess(
    images: np.ndarray,
    *,
    alpha_threshold: int = 128,
    palette: np.ndarray | PathLike | None = None,
    colors: int | None = None,
    cleanup: bool = False,
) -> np.ndarray:
    """crisp_alpha, then cap_colors (if colors), then quantize_to_palette (if palette: array or file),
    then (cleanup) isolated near-duplicate shades merged and detached specks removed (data.neighbours)."""
    out = crisp_alpha(images, alpha_threshold)
    if colors is not None:
        out = cap_colors(out, colors)
    if palette is not None:
        pal = load_palette(Path(palette)) if isinstance(palette, (str, os.PathLike)) else palette
        out = quantize_to_palette(out, pal)
    if cleanup:
        out = despeckle(clean_isolated(out))
    return out


def colors_per_sprite(images: np.ndarray) -> np.ndarray:
    """Distinct RGB colours among the opaque (alpha > 0) pixels of each sprite (N ints)."""
    im = np.asarray(images)
    n = len(im)
    if im.shape[-1] == 3:
        im = np.concatenate([im, np.full(im.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    rgb = im[..., :3].astype(np.int64)
    packed = ((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).reshape(n, -1)
    packed = np.where(im[..., 3].reshape(n, -1) > 0, packed, -1)
    s = np.sort(packed, axis=1)
    new = np.ones_like(s, bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    return (new & (s >= 0)).sum(axis=1)


def alpha_crispness(images: np.ndarray) -> float:
    """Share of alpha values that are exactly 0 or 255 (RGB-only sprites: 1.0)."""
    im = np.asarray(images)
    if im.shape[-1] != 4:
        return 1.0
    a = im[..., 3]
    return float(((a == 0) | (a == 255)).mean())
