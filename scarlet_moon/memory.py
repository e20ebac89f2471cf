"""Memory predicted from the options, before anything is allocated, against a budget.

The budget is SM_MEMORY_BUDGET when set (bytes, or with a unit: 512M, 8G, 1.5T), else 80% of this
machine's physical memory. A request whose estimate is over it is refused with one line naming both
figures (BadInput, exit 2): an option that would take the machine down costs nothing.

Estimates are arithmetic on the options (no torch, no numpy arrays): the SpriteUNet's parameter count
and the activations a step keeps (`unet_footprint`), image buffers for sheets, evals and tilesets.
They aim within 2x of the measured peak: a budget check, not an allocator.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

from scarlet_moon.errors import BadInput

ENV = "SM_MEMORY_BUDGET"
FLOAT = 4  # bytes of a float32
TRAIN_COPIES = 5  # weights, EMA, gradients, Adam's two moments
ACT_PER_BLOCK = 9  # tensors of C x H x W a ResBlock keeps for backward (norms, SiLUs, convs, FiLM)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def budget() -> int:
    """Bytes a command may plan to use: SM_MEMORY_BUDGET, else 80% of physical memory."""
    text = os.environ.get(ENV, "").strip()
    if text:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)i?[bB]?", text)
        if not m or float(m.group(1)) <= 0:
            raise BadInput(f"{ENV}={text!r}: expected a size like 512M, 8G or a number of bytes")
        return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    try:
        return int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: no check rather than a wrong one
        return 1 << 62


def human(n: float) -> str:
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1024:,.0f} KB"


def check(need: float, what: str) -> None:
    """BadInput when `need` bytes exceed the budget; `what` says which request and options."""
    limit = budget()
    if need > limit:
        source = (
            f"{ENV}" if os.environ.get(ENV, "").strip() else f"80% of this machine's memory; set {ENV} to change it"
        )
        raise BadInput(f"{what} needs about {human(need)} of memory, over the budget of {human(limit)} ({source})")


def unet_footprint(
    n_feat: int,
    channel_mult: Sequence[int],
    channels: int,
    size: tuple[int, int],
    num_classes: int,
    attention: bool = True,
) -> tuple[int, int]:
    """(parameters, activation floats kept per sprite in a training step) of SpriteUNet, counted from its
    layout (models/unet.py) without building it."""
    emb, chans = 4 * n_feat, [n_feat * m for m in channel_mult]
    h, w = size
    params = n_feat * emb + emb + emb * emb + emb + (num_classes + 1) * emb + channels * chans[0] * 9 + chans[0]
    acts = chans[0] * h * w

    def block(ci: int, co: int, hw: int) -> tuple[int, int]:
        p = 2 * ci + ci * co * 9 + co + emb * 2 * co + 2 * co + 2 * co + co * co * 9 + co
        p += ci * co + co if ci != co else 0
        return p, ACT_PER_BLOCK * max(ci, co) * hw

    c, hw, sizes = chans[0], h * w, []
    for i, co in enumerate(chans):
        for ci in (c, co):
            p, a = block(ci, co, hw)
            params, acts = params + p, acts + a
        c = co
        sizes.append(hw)
        if i < len(chans) - 1:
            params, acts, hw = params + c * c * 9 + c, acts + c * hw // 4, max(1, hw // 4)
    for _ in range(2):  # mid1, mid2
        p, a = block(c, c, hw)
        params, acts = params + p, acts + a
    if attention:
        params += 2 * c + 3 * c * c + 3 * c + c * c + c
        acts += 6 * c * hw + 4 * hw * hw
    for i, co in reversed(list(enumerate(chans))):
        hw = sizes[i]
        for ci in (c + co, co + co):
            p, a = block(ci, co, hw)
            params, acts = params + p, acts + a
        c = co
    params += 2 * c + c * channels * 9 + channels
    return params, acts + 3 * c * h * w


def training_bytes(params: int, acts_per_sprite: int, batch: int) -> int:
    """Weights, EMA, gradients and Adam's moments, plus what a step keeps for backward (measured: default
    preset, 16x16, CPU: 220 MB at batch 64 and 1.5 GB at 512 against 249 MB and 1.9 GB estimated)."""
    return TRAIN_COPIES * FLOAT * params + FLOAT * acts_per_sprite * batch


def image_bytes(count: int, height: int, width: int, copies: int = 3) -> int:
    """`count` RGBA uint8 images held `copies` times over (sampled, finished, packed or scored)."""
    return copies * count * height * width * 4
