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

from scarlet_moon.data.neighbours import isolated_mask, rgba, speck_mask

LUMA = np.array([0.299, 0.587, 0.114])


def fidelity(images: np.ndarray) -> dict[str, float]:
    """The figures of the module docstring for a set of sprites (0 for a set without opaque pixels)."""
    from scarlet_moon.data.pixels import colors_per_sprite

    im = rgba(images)
    opaque = im[..., 3] >= 128
    n = int(opaque.sum())
    rgb = im[..., :3][opaque].astype(np.float64) / 255.0  # P x 3
    hi, lo = (rgb.max(axis=1), rgb.min(axis=1)) if n else (np.zeros(0), np.zeros(0))
    sat = np.where(hi > 0, (hi - lo) / np.where(hi > 0, hi, 1), 0.0)
    return {
        "isolated_rate": float(isolated_mask(im).sum() / n) if n else 0.0,
        "speck_rate": float(speck_mask(im).sum() / n) if n else 0.0,
        "saturation": float(sat.mean()) if n else 0.0,
        "luma": float((rgb @ LUMA).mean()) if n else 0.0,
        "colours": float(colors_per_sprite(im).mean()) if len(im) else 0.0,
    }
