"""Finishing sampled sprites: crisp alpha, colour cap and palette snap, and inpainting's kept pixels."""

from __future__ import annotations

import numpy as np

from scarlet_moon.data.pixels import postprocess
from scarlet_moon.diffusion.editing import Edit
from scarlet_moon.models.card import ModelCard
from scarlet_moon.options import PostOptions


def finish(card: ModelCard, post: PostOptions, edit: Edit, raw: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x C as written out. With snap_palette (the default) the card's palette and a
    cap at the training set's 90th percentile of colours per sprite, unless the request gives its own."""
    palette, colors = post.palette, post.colors
    if post.snap_palette:  # look like the training set unless told otherwise
        palette = card.palette if palette is None else palette
        colors = card.meta.get("colors_per_sprite", {}).get("p90") if colors is None else colors
    out = postprocess(raw, alpha_threshold=post.alpha_threshold, palette=palette, colors=colors, cleanup=post.cleanup)
    return restore_kept(edit, out)


def restore_kept(edit: Edit, images: np.ndarray) -> np.ndarray:
    """Inpainting: pixels the mask keeps are the init's, exactly (after post-processing)."""
    if edit.init is None or edit.mask is None:
        return images
    keep = ~np.asarray(edit.mask, bool)
    out = images.copy()
    out[:, keep] = edit.init[keep]
    return out
