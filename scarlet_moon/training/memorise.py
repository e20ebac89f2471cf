"""Is a run reproducing its training sprites? The share of a sample grid that copies one.

A small set trained long is learnt by heart: in the leave-one-class-out runs (bench/results/loco.md)
30 minutes of fine-tuning on 65 hero sprites gave 44% exact copies, while its loss still looked
healthy. Each sample grid is checked against the training sprites with `sm eval`'s copy rule (mean
|RGBA difference| <= COPY_THRESHOLD of 255, after crisp alpha), logged as the metric `grid_copies`,
and a share of WARN_SHARE or more is said at the end of the run.
"""

from __future__ import annotations

import numpy as np

from scarlet_moon.data.pixels import postprocess
from scarlet_moon.eval.metrics import COPY_THRESHOLD, nearest_distances

WARN_SHARE = 0.25  # real held-out bundled sprites: 6.2% are copies by the same rule


def _crisp(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x C with alpha 0/255 and transparent pixels' colour zeroed (it is not seen)."""
    out = postprocess(np.asarray(images, np.uint8), alpha_threshold=128, palette=None, colors=None, cleanup=False)
    if out.shape[-1] == 4:
        out = out.copy()
        out[out[..., 3] == 0] = 0
    return out


def grid_copy_share(grid: np.ndarray, train: np.ndarray) -> float:
    """The share of `grid` (raw uint8 N x H x W x C samples) within COPY_THRESHOLD of a `train` sprite."""
    if len(grid) == 0:
        return 0.0
    return float((nearest_distances(_crisp(grid), _crisp(train)) <= COPY_THRESHOLD).mean())


def memorising_message(share: float, step: int, num_sprites: int) -> str | None:
    """One line for the user when the share of copies says the model learns its sprites by heart."""
    if share < WARN_SHARE:
        return None
    return (
        f"{share:.0%} of the step-{step} sample grid copy a training sprite (sm eval's rule): the model is "
        f"learning its {num_sprites} sprites by heart; a shorter run, or more sprites, gives new ones"
    )
