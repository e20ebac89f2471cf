"""Editing modes as denoiser wrappers: variations of a sprite, inpainting, tileable sprites.

    init + strength s   start the reverse diffusion from the init noised to the level of s:
                        s = 1 is plain sampling (the init ignored), s = 0 returns the init; in
                        between the start is timestep index min(round(s * T), T - 1) and the
                        sampler's timesteps are that one plus those below it
    mask                inpainting (needs init): True = generate, False = keep; at every step the
                        kept region is the init noised to the current level, and kept pixels
                        come out exactly
    tileable            opposite edges wrap: every step evaluates the denoiser on the sprite
                        circularly shifted by (0|H/2, 0|W/2) and blends the four predictions with
                        weights that vanish next to each pass's cut

Like the samplers, everything is arithmetic on the state, so one implementation serves torch
tensors and numpy arrays; the backend supplies `Ops` (concatenation along an axis and numpy ->
backend arrays). Noise: the first draw of the batch's NoiseStream (the same draw plain sampling
starts from) noises the init; the kept region's per-step noise comes from a second generator
seeded with (seed, KEEP_STREAM), so the sampler's own noise stream is left as plain sampling has it.
Loading and checking the user's init and mask: scarlet_moon.generation.edits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.diffusion.samplers import Callback, Denoiser, clipped, run_sampler
from scarlet_moon.diffusion.scaling import to_model_range
from scarlet_moon.diffusion.schedule import Schedule
from scarlet_moon.diffusion.schedule import timesteps as pick_timesteps
from scarlet_moon.errors import BadInput, arg

Array = Any  # numpy array or torch tensor
KEEP_STREAM = 0x6B656570  # "keep": second word of the kept region's noise seed


@dataclass(frozen=True, eq=False)
class Edit:
    """What an edited sampling run changes; the default edits nothing."""

    init: np.ndarray | None = None  # uint8 H x W x C sprite to start from
    mask: np.ndarray | None = None  # bool H x W, True = generate; needs init
    strength: float | None = None  # with init: 0 keeps it, 1 ignores it
    tileable: bool = False

    @property
    def active(self) -> bool:
        return self.init is not None or self.tileable


@dataclass(frozen=True)
class Ops:
    """What the editing arithmetic needs from a backend beyond operators and slicing."""

    cat: Callable[[Sequence[Array], int], Array]  # concatenate along an axis
    const: Callable[[np.ndarray], Array]  # float32 numpy -> backend array on the device


NUMPY_OPS = Ops(cat=lambda parts, axis: np.concatenate(list(parts), axis=axis), const=lambda a: a)


# ---------------------------------------------------------------- timesteps
def start_timestep(strength: float, num_steps: int) -> int | None:
    """Index the reverse process starts at; None for strength 0 (nothing to do), T for pure noise."""
    n = int(round(strength * num_steps))
    if n <= 0:
        return None
    return num_steps if n >= num_steps else n


def truncated_timesteps(schedule: Schedule, steps: int, strength: float, spacing: str = "trailing") -> list[int]:
    """The sampler's descending timesteps for `strength`: the start index, then those below it."""
    full = pick_timesteps(schedule, steps, spacing)
    t0 = start_timestep(strength, schedule.num_steps)
    if t0 is None:
        return []
    if t0 >= schedule.num_steps:
        return full
    return [t0] + [t for t in full if t < t0]


# ---------------------------------------------------------------- denoiser wrappers
def _roll(x: Array, shift: int, axis: int, ops: Ops) -> Array:
    """Circular shift like numpy.roll (out[i] = x[i - shift]) by slicing and concatenation."""
    n = x.shape[axis]
    shift %= n
    if shift == 0:
        return x
    head, tail = [slice(None)] * 4, [slice(None)] * 4
    head[axis], tail[axis] = slice(n - shift, None), slice(None, n - shift)
    return ops.cat([x[tuple(head)], x[tuple(tail)]], axis)


def _tent(n: int, shift: int) -> np.ndarray:
    """Weight of each pixel in a pass shifted by `shift`: its distance to that pass's cut."""
    k = (np.arange(n) + shift) % n
    return np.minimum(k, n - 1 - k).astype(np.float64)


def tile_weights(size: tuple[int, int]) -> list[tuple[int, int, np.ndarray]]:
    """(dy, dx, weight H x W) of the four passes; the weights sum to 1 and are 0 beside each cut."""
    axes = []
    for n in size:
        shifts = (0, n // 2)
        tents = [_tent(n, s) for s in shifts]
        total = tents[0] + tents[1]
        if n < 4 or not (total > 0).all():
            raise BadInput(f"{arg('tileable')} needs sprites of at least 4x4, got {size[1]}x{size[0]}")
        axes.append([(s, t / total) for s, t in zip(shifts, tents)])
    return [(dy, dx, (wy[:, None] * wx[None, :]).astype(np.float32)) for dy, wy in axes[0] for dx, wx in axes[1]]


def tileable_denoiser(denoiser: Denoiser, size: tuple[int, int], ops: Ops) -> Denoiser:
    """x0/eps predictions that wrap around: four circularly shifted passes, blended."""
    passes = [(dy, dx, ops.const(w[None, None])) for dy, dx, w in tile_weights(size)]

    def shifted(x: Array, dy: int, dx: int) -> Array:
        return _roll(_roll(x, dy, 2, ops), dx, 3, ops)

    def wrapped(x: Array, t: int) -> tuple[Array, Array]:
        x0_sum = eps_sum = None
        for dy, dx, w in passes:
            x0, eps = denoiser(shifted(x, dy, dx), t)
            x0, eps = shifted(x0, -dy, -dx) * w, shifted(eps, -dy, -dx) * w
            x0_sum = x0 if x0_sum is None else x0_sum + x0
            eps_sum = eps if eps_sum is None else eps_sum + eps
        return x0_sum, eps_sum

    return wrapped


def inpaint_denoiser(
    denoiser: Denoiser, init: Array, keep_noise: Callable[[], Array], generate: Array, alphas_cumprod: np.ndarray
) -> Denoiser:
    """Known region (generate == 0) replaced by the init noised to level t before every call, and
    predicted as exactly (init, that noise), so the last step returns the init there."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    keep = generate * -1.0 + 1.0

    def wrapped(x: Array, t: int) -> tuple[Array, Array]:
        a, s = math.sqrt(abar[t]), math.sqrt(1.0 - abar[t])
        z = keep_noise()
        x = x * generate + (init * a + z * s) * keep
        x0, eps = denoiser(x, t)
        return x0 * generate + init * keep, eps * generate + z * keep

    return wrapped


# ---------------------------------------------------------------- the edited sampling run
def sample_edited(
    sampler: str,
    denoiser: Denoiser,
    z0: np.ndarray,
    schedule: Schedule,
    steps: int,
    edit: Edit,
    seed: int,
    ops: Ops,
    *,
    eta: float = 0.0,
    noise: Callable[[int], Array] | None = None,
    callback: Callback | None = None,
    clip_x0: bool = True,
) -> Array:
    """The sampling loop with `edit` applied -> model-range N x C x H x W.

    `z0` is the first draw of the batch's NoiseStream (plain sampling's starting noise, float32
    N x C x H x W), `noise(i)` its later draws as backend arrays, `seed` the batch's noise seed
    (it seeds the kept region's noise); `denoiser` the backend's unclipped one."""
    abar = schedule.alphas_cumprod()
    shape = tuple(z0.shape)
    strength = 1.0 if edit.strength is None else float(edit.strength)
    ts = truncated_timesteps(schedule, steps, strength if edit.init is not None else 1.0)
    x_init = None
    if edit.init is not None:
        x_init = np.broadcast_to(to_model_range(edit.init[None]), shape).astype(np.float32)
        if not ts:  # strength 0: the init itself
            return ops.const(x_init)
    if clip_x0:
        denoiser = clipped(denoiser, abar)
    if edit.tileable:
        denoiser = tileable_denoiser(denoiser, (shape[2], shape[3]), ops)
    if edit.mask is not None:
        assert x_init is not None  # a mask comes with an init (generation.edits.load_edit)
        rng = np.random.default_rng([int(seed), KEEP_STREAM])
        gen = ops.const(np.asarray(edit.mask, np.float32)[None, None])
        denoiser = inpaint_denoiser(
            denoiser, ops.const(x_init), lambda: ops.const(rng.standard_normal(shape, dtype=np.float32)), gen, abar
        )
    if x_init is None or start_timestep(strength, schedule.num_steps) == schedule.num_steps:
        x = ops.const(z0)  # pure noise, exactly as plain sampling starts
    else:
        a, s = math.sqrt(abar[ts[0]]), math.sqrt(1.0 - abar[ts[0]])
        x = ops.const((x_init * a + z0 * s).astype(np.float32))
    return run_sampler(
        sampler, denoiser, x, schedule, steps, eta=eta, noise=noise, callback=callback, clip_x0=False, timesteps=ts
    )
