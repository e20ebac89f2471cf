"""The stated limits: every size a user or a file can ask for is checked against these before
anything is allocated or decoded (docs/errors.md lists them). One place, so every command, the
training config and the model card checks use the same numbers.
"""

from __future__ import annotations

from scarlet_moon.errors import BadInput

MAX_SIDE = 256  # sprite height or width (the models here are trained at 8..64)
MAX_IMAGE_PIXELS = 64 << 20  # any image read (a tileset sheet, a palette image, a frame to pack): 64 Mpx
MAX_SPRITES = 1_000_000  # sprites in a data set
MAX_LABELS = 10_000  # labels of a data set or a model
MAX_LABEL_CHARS = 200  # characters of one label name
MAX_PALETTE = 4096  # colours of a palette (a file, or a model card's)
MAX_COUNT = 2_000_000  # sprites per generation request
MAX_TIMESTEPS = 100_000  # training timesteps T of a schedule
MAX_STEPS = 100_000_000  # training (or distillation) steps
MAX_TIME_BUDGET_S = 30 * 86400  # a training run's wall-clock budget: 30 days
MAX_THREADS = 1024  # torch threads of one process
MAX_BATCH = 65_536  # sprites per training step
MAX_N_FEAT = 1024  # the network's base channel count
MAX_LEVELS = 6  # resolution levels of the UNet (channel_mult entries)
MAX_MULT = 16  # one channel multiplier
MAX_SEED = 2**63 - 1  # seeds are stored in int64 (torch, numpy, JSON readers)
MAX_PROCESSES = 256  # processes of one `sm train --nproc`

SPRITE_SIDES = range(8, 65, 8)  # the sprite sizes the networks build at: each side a multiple of 8, 8..64
SPRITE_SIZES_ALLOWED = "height and width each a multiple of 8 from 8 to 64 (e.g. 16x16, 32x32, 16x24)"


def check_sprite_size(height: int, width: int, what: str = "sprite size") -> None:
    """The one rule for the sprite sizes a model is trained, built, exported or sampled at; anything
    else is BadInput naming the size (width x height, as images are named) and what is allowed."""
    if height not in SPRITE_SIDES or width not in SPRITE_SIDES:
        raise BadInput(f"{what} {width}x{height} is not supported; allowed: {SPRITE_SIZES_ALLOWED}")
