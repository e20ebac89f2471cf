"""Pixels and their 8 neighbours: the isolated-pixel and speck masks (what scarlet_moon.eval.fidelity
counts) and the two clean-ups built on them (numpy only).

    isolated   an opaque pixel whose RGB equals none of its opaque 8-neighbours' (speckle, stray colours)
    speck      an opaque pixel in an 8-connected opaque component of 1 or 2 pixels (a detached dot)

`clean_isolated` gives an isolated pixel the colour of its nearest-coloured opaque neighbour when
the two are within `tau` in CIELAB (a near-duplicate shade: noise), and keeps it when no neighbour
is that close (an eye, a spark, a highlight: a detail drawn on purpose). `despeckle` makes specks
transparent, unless that would empty the sprite. Sprites are uint8 N x H x W x 4, opaque = alpha >= 128.
"""

from __future__ import annotations

import numpy as np

from scarlet_moon.data.colour import srgb_to_lab

SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
CLEAN_TAU = 20.0  # CIELAB distance under which an isolated pixel is noise (chosen in bench/results/fidelity.md)


def rgba(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.shape[-1] == 3:
        images = np.concatenate([images, np.full(images.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    return images


def shifted(a: np.ndarray, dy: int, dx: int, fill: object = 0) -> np.ndarray:
    """out[:, y, x] = a[:, y + dy, x + dx], `fill` outside the sprite (N x H x W [x C])."""
    out = np.full_like(a, fill)
    h, w = a.shape[1:3]
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[:, yd, xd] = a[:, ys, xs]
    return out


def isolated_mask(images: np.ndarray) -> np.ndarray:
    """bool N x H x W: opaque pixels whose RGB equals no opaque 8-neighbour's."""
    im = rgba(images)
    opaque = im[..., 3] >= 128
    key = (im[..., 0].astype(np.int32) << 16) | (im[..., 1].astype(np.int32) << 8) | im[..., 2]
    key = np.where(opaque, key, -1)  # transparent never matches
    shared = np.zeros(opaque.shape, bool)
    for dy, dx in SHIFTS:
        shared |= shifted(key, dy, dx, -2) == key
    return opaque & ~shared


def speck_mask(images: np.ndarray) -> np.ndarray:
    """bool N x H x W: opaque pixels in 8-connected opaque components of 1 or 2 pixels."""
    opaque = rgba(images)[..., 3] >= 128
    near = [shifted(opaque, dy, dx, False) for dy, dx in SHIFTS]  # the neighbour that way is opaque
    count = np.sum(near, axis=0)  # N x H x W opaque neighbours
    pair = np.zeros(opaque.shape, bool)  # one neighbour, which has only us
    for (dy, dx), n in zip(SHIFTS, near):
        pair |= n & (shifted(count, dy, dx, 0) == 1)
    return opaque & ((count == 0) | ((count == 1) & pair))


def clean_isolated(images: np.ndarray, tau: float = CLEAN_TAU) -> np.ndarray:
    """A copy where each isolated pixel takes its nearest-coloured opaque neighbour's colour if it is
    within `tau` (CIELAB); alpha is unchanged.

    Distances are taken at the isolated pixels only (a few percent of a batch's pixels), with the
    float operations the whole-image version did per pixel, on the same Lab values, so the result is
    that version's byte for byte (tests/pixels_reference.py keeps it; tests/test_neighbours.py)."""
    out = images.copy()
    iso = isolated_mask(out)
    if not iso.any():
        return out
    n, h, w = iso.shape
    opaque, lab = out[..., 3] >= 128, srgb_to_lab(out[..., :3])  # Lab of the whole batch, as before
    i, y, x = np.nonzero(iso)  # K isolated pixels
    here = lab[i, y, x]  # K x 3
    best, colour = np.full(len(i), np.inf), np.zeros((len(i), 3), np.uint8)
    for dy, dx in SHIFTS:  # the same order: ties keep the first
        ny, nx = y + dy, x + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        ny, nx = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
        d = np.sqrt(((lab[i, ny, nx] - here) ** 2).sum(-1))
        d[~(inside & opaque[i, ny, nx])] = np.inf
        closer = d < best
        best[closer], colour[closer] = d[closer], out[i[closer], ny[closer], nx[closer], :3]
    fix = best <= tau
    out[i[fix], y[fix], x[fix], :3] = colour[fix]
    return out


def despeckle(images: np.ndarray) -> np.ndarray:
    """A copy where specks are transparent (RGBA 0), except in a sprite they would empty."""
    out = images.copy()
    specks = speck_mask(out)
    opaque = out[..., 3] >= 128
    empties = ~(opaque & ~specks).any(axis=(1, 2))  # N: nothing would be left
    specks[empties] = False
    out[specks] = 0
    return out
