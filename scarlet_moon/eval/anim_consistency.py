"""Is every frame of a character the same character? Figures over animations (numpy only).

Frames are uint8 N x D x F x H x W x 4 (character, direction, frame); a pixel is opaque when its
alpha is >= 128; colours are compared at 5 bits per channel (a near shade counts as the same colour).

    palette_frames      mean Jaccard overlap of the colour sets of neighbouring frames of one
                        direction (f, f+1; the last wraps to the first: cycles loop)
    silhouette_frames   mean IoU of the opaque masks of those neighbouring frames
    palette_directions  mean Jaccard overlap of the colour sets of two directions of one character
                        (each direction's frames pooled): the same character from another side
    size_directions     mean ratio of the smaller to the larger opaque area of two directions

Each figure is also given `_between` characters: the same pairs with the second frame (or direction)
taken from the next character (N >= 2), what the figure is for frames that do not belong together.
A model's figures are read beside a real set's (`consistency(real)`): near the real figure and far
from its `_between` value is a consistent animation.
"""

from __future__ import annotations

import numpy as np

OPAQUE = 128
BITS = 5  # colour resolution of the palette comparison


def _colour_sets(frames: np.ndarray) -> np.ndarray:
    """... x H x W x 4 -> ... x 2**(3*BITS) bool: which quantised colours the opaque pixels use."""
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, frames.shape[-3] * frames.shape[-2], 4)
    q = (flat[..., :3] >> (8 - BITS)).astype(np.int64)
    code = (q[..., 0] << (2 * BITS)) | (q[..., 1] << BITS) | q[..., 2]  # M x P
    out = np.zeros((len(flat), 1 << (3 * BITS)), bool)
    rows = np.broadcast_to(np.arange(len(flat))[:, None], code.shape)
    opaque = flat[..., 3] >= OPAQUE
    out[rows[opaque], code[opaque]] = True
    return out.reshape(*lead, -1)


def _jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    union = (a | b).sum(-1)
    return np.where(union > 0, (a & b).sum(-1) / np.maximum(union, 1), 1.0)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    union = (a | b).sum(axes)
    return np.where(union > 0, (a & b).sum(axes) / np.maximum(union, 1), 1.0)


def _pairs(frames: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """The four figures of frames against `other` (the same frames, or the next character's)."""
    n, d, f = frames.shape[:3]
    colours, colours2 = _colour_sets(frames), _colour_sets(other)  # N x D x F x K
    masks, masks2 = frames[..., 3] >= OPAQUE, other[..., 3] >= OPAQUE  # N x D x F x H x W
    nxt = (np.arange(f) + 1) % f
    pooled, pooled2 = np.asarray(colours.any(axis=2)), np.asarray(colours2.any(axis=2))  # N x D x K
    area, area2 = masks.sum(axis=(2, 3, 4)), masks2.sum(axis=(2, 3, 4))  # N x D
    i, j = np.triu_indices(d, k=1)
    if d == 1:  # one direction: the direction figures compare it with itself
        i, j = np.zeros(1, int), np.zeros(1, int)
    small, large = np.minimum(area[:, i], area2[:, j]), np.maximum(area[:, i], area2[:, j])
    return {
        "palette_frames": float(_jaccard(colours, colours2[:, :, nxt]).mean()),
        "silhouette_frames": float(_iou(masks, masks2[:, :, nxt]).mean()),
        "palette_directions": float(_jaccard(pooled[:, i], pooled2[:, j]).mean()),
        "size_directions": float(np.where(large > 0, small / np.maximum(large, 1), 1.0).mean()),
    }


def consistency(frames: np.ndarray) -> dict[str, float]:
    """The module docstring's figures for N x D x F x H x W x 4 frames (N >= 1; `_between` needs N >= 2)."""
    if frames.ndim != 6 or frames.shape[-1] != 4 or frames.shape[0] == 0:
        raise ValueError(f"expected frames N x D x F x H x W x 4 with N >= 1, got shape {frames.shape}")
    out = _pairs(frames, frames)
    if frames.shape[0] >= 2:
        between = _pairs(frames, np.roll(frames, -1, axis=0))
        out.update({f"{k}_between": v for k, v in between.items()})
    return out
