"""Pixel-level fidelity of sprites, what one sees at 8x zoom (numpy only).

    isolated_rate   share of opaque pixels whose RGB equals none of their 8 neighbours' (only opaque
                    neighbours count): speckle, dithering noise, stray colours
    speck_rate      share of opaque pixels in 8-connected opaque components of at most 2 pixels:
                    detached dots around a sprite
    saturation      mean HSV saturation (max - min) / max of opaque pixels, 0..1
    luma            mean Rec. 601 luma of opaque pixels, 0..1
    colours         mean distinct opaque colours per sprite

Sprites are uint8 N x H x W x 4 (RGB gets alpha 255); a pixel is opaque when its alpha is >= 128.
"""

from __future__ import annotations

import numpy as np

SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
LUMA = np.array([0.299, 0.587, 0.114])


def _rgba(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.shape[-1] == 3:
        images = np.concatenate([images, np.full(images.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    return images


def _shifted(a: np.ndarray, dy: int, dx: int, fill: object = 0) -> np.ndarray:
    """out[:, y, x] = a[:, y + dy, x + dx], `fill` outside the sprite (N x H x W [x C])."""
    out = np.full_like(a, fill)
    h, w = a.shape[1:3]
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[:, yd, xd] = a[:, ys, xs]
    return out


def isolated_mask(images: np.ndarray) -> np.ndarray:
    """bool N x H x W: opaque pixels whose RGB equals no opaque 8-neighbour's."""
    im = _rgba(images)
    opaque = im[..., 3] >= 128
    key = (im[..., 0].astype(np.int32) << 16) | (im[..., 1].astype(np.int32) << 8) | im[..., 2]
    key = np.where(opaque, key, -1)                                   # transparent never matches
    shared = np.zeros(opaque.shape, bool)
    for dy, dx in SHIFTS:
        shared |= _shifted(key, dy, dx, -2) == key
    return opaque & ~shared


def speck_mask(images: np.ndarray) -> np.ndarray:
    """bool N x H x W: opaque pixels in 8-connected opaque components of 1 or 2 pixels."""
    opaque = _rgba(images)[..., 3] >= 128
    near = [_shifted(opaque, dy, dx, False) for dy, dx in SHIFTS]    # neighbour in each direction is opaque
    count = np.sum(near, axis=0)                                       # N x H x W opaque neighbours
    pair = np.zeros(opaque.shape, bool)                                # one neighbour, which has only us
    for (dy, dx), n in zip(SHIFTS, near):
        pair |= n & (_shifted(count, dy, dx, 0) == 1)
    return opaque & ((count == 0) | ((count == 1) & pair))


def fidelity(images: np.ndarray) -> dict[str, float]:
    """The figures of the module docstring for a set of sprites (0 for a set without opaque pixels)."""
    from scarlet_moon.data.pixels import colours_per_sprite

    im = _rgba(images)
    opaque = im[..., 3] >= 128
    n = int(opaque.sum())
    rgb = im[..., :3][opaque].astype(np.float64) / 255.0             # P x 3
    hi, lo = (rgb.max(axis=1), rgb.min(axis=1)) if n else (np.zeros(0), np.zeros(0))
    sat = np.where(hi > 0, (hi - lo) / np.where(hi > 0, hi, 1), 0.0)
    return {"isolated_rate": float(isolated_mask(im).sum() / n) if n else 0.0,
            "speck_rate": float(speck_mask(im).sum() / n) if n else 0.0,
            "saturation": float(sat.mean()) if n else 0.0,
            "luma": float((rgb @ LUMA).mean()) if n else 0.0,
            "colours": float(colours_per_sprite(im).mean()) if len(im) else 0.0}
