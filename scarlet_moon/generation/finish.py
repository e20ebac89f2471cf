"""Finishing sampled sprites: crisp alpha, colour cap and palette snap, and inpainting's kept pixels."""

from __future__ import annotations

import numpy as np

from scarlet_moon.data.pixels import postprocess
from scarlet_moon.diffusion.editing import Edit
from scarlet_moon.models.card import ModelCard
from scarlet_moon.options import PostOptions


def finish(card: ModelCard, post: PostOptions, edit: Edit, raw: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x C as written out. With snap_palette (the default) the card's palette and colour
    cap (ModelCard.post_defaults) unless the request gives its own; cleanup as asked, else the card's."""
    defaults = card.post_defaults()
    palette, colors = post.palette, post.colors
    if post.snap_palette:  # look like the training set unless told otherwise
        palette = card.palette if palette is None else palette
        colors = defaults["colors"] if colors is None else colors
    cleanup = defaults["cleanup"] if post.cleanup is None else post.cleanup
    out = postprocess(raw, alpha_threshold=post.alpha_threshold, palette=palette, colors=colors, cleanup=cleanup)
    return restore_kept(edit, out)


def restore_kept(edit: Edit, images: np.ndarray) -> np.ndarray:
    """Inpainting: pixels the mask keeps are the init's, exactly (after post-processing)."""
    if edit.init is None or edit.mask is None:
        return images
    keep = ~np.asarray(edit.mask, bool)
    out = images.copy()
    out[:, keep] = edit.init[keep]
    return out
