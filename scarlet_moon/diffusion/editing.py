"""Editing modes (issue 7): variations of a sprite, inpainting, tileable sprites. No torch here.

    --init S.png --strength s   start the reverse diffusion from S noised to the level of s:
                                s = 1 is plain sampling (S ignored), s = 0 returns S; in between
                                the start is timestep index min(round(s * T), T - 1) and the
                                sampler's timesteps are that one plus those below it
    --mask M.png                inpainting (needs --init): white/opaque = generate, black/
                                transparent = keep; at every step the kept region is the init
                                noised to the current level, and kept pixels come out exactly
    --tileable                  opposite edges wrap: every step evaluates the denoiser on the
                                sprite circularly shifted by (0|H/2, 0|W/2) and blends the four
                                predictions with weights that vanish next to each pass's cut

Like the samplers, everything is arithmetic on the state, so one implementation serves torch
tensors and numpy arrays; the backend supplies `Ops` (concatenation along an axis and numpy ->
backend arrays). Noise: the first draw of the request's NoiseStream (the same draw plain sampling
starts from) noises the init; the kept region's per-step noise comes from a second generator
seeded with (seed, KEEP_STREAM), so the sampler's own noise stream is left as plain sampling has it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.errors import BadInput
from scarlet_moon.diffusion.samplers import Callback, Denoiser, clipped, run_sampler
from scarlet_moon.diffusion.schedule import Schedule, timesteps as pick_timesteps

Array = Any  # numpy array or torch tensor
ImageLike = Any  # a path, a PIL image or a uint8 H x W x 3|4 array
DEFAULT_STRENGTH = 0.75  # --init without --mask; with --mask the default is 1
KEEP_STREAM = 0x6B656570  # "keep": second word of the kept region's noise seed


@dataclass(frozen=True)
class Ops:
    """What the editing arithmetic needs from a backend beyond operators and slicing."""
    cat: Callable[[Sequence[Array], int], Array]   # concatenate along an axis
    const: Callable[[np.ndarray], Array]           # float32 numpy -> backend array on the device


NUMPY_OPS = Ops(cat=lambda parts, axis: np.concatenate(list(parts), axis=axis), const=lambda a: a)


# ---------------------------------------------------------------- inputs
def _describe(src: ImageLike) -> str:
    return repr(str(src)) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"


def _rgba(src: ImageLike, option: str) -> np.ndarray:
    """Any image source -> uint8 H x W x 4 the way training PNGs are read (RGB gets alpha 255)."""
    from scarlet_moon.data.sprites import read_png

    if isinstance(src, (str, os.PathLike)):
        if not Path(src).is_file():
            raise BadInput(f"{option} {str(src)!r} does not exist or is not a file")
        return read_png(Path(src))
    if isinstance(src, np.ndarray):
        arr = src
    elif hasattr(src, "convert"):  # a PIL image
        arr = np.asarray(src.convert("RGBA"), np.uint8)
    else:
        raise BadInput(f"{option}: expected an image path, a PIL image or a uint8 array, got {type(src).__name__}")
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise BadInput(f"{option}: expected a uint8 H x W x 3|4 array, got {arr.dtype} {tuple(arr.shape)}")
    if arr.shape[-1] == 3:
        arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    return np.ascontiguousarray(arr)


def _check_size(arr: np.ndarray, src: ImageLike, option: str, size: tuple[int, int]) -> None:
    if tuple(arr.shape[:2]) != tuple(size):
        raise BadInput(f"{option} {_describe(src)} is {arr.shape[1]}x{arr.shape[0]}; this model makes "
                       f"{size[1]}x{size[0]} sprites, so it must be {size[1]}x{size[0]}")


def load_init(src: ImageLike, size: tuple[int, int], channels: int = 4) -> np.ndarray:
    """The --init sprite as uint8 H x W x channels (RGBA unless the model is RGB)."""
    arr = _rgba(src, "--init")
    _check_size(arr, src, "--init", size)
    return arr[..., :channels].copy()


def load_mask(src: ImageLike, size: tuple[int, int]) -> np.ndarray:
    """The --mask as bool H x W, True = generate. With any transparency in the image its alpha
    decides (alpha >= 128: generate), else its brightness (luma >= 128: white generates).
    A 2-D array is taken as is: bool (True = generate) or uint8 (>= 128 = generate)."""
    if isinstance(src, np.ndarray) and src.ndim == 2 and src.dtype in (np.bool_, np.uint8):
        _check_size(src, src, "--mask", size)
        return src.astype(bool) if src.dtype == np.bool_ else src >= 128
    arr = _rgba(src, "--mask")
    _check_size(arr, src, "--mask", size)
    alpha = arr[..., 3]
    if (alpha < 255).any():
        return alpha >= 128
    luma = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return luma >= 127.5


def check_strength(strength: float | None) -> float | None:
    if strength is None:
        return None
    s = float(strength)
    if not 0.0 <= s <= 1.0:  # NaN fails too
        raise BadInput(f"--strength {strength}: must be between 0 and 1 (0 keeps the init, 1 ignores it)")
    return s


def resolve_strength(strength: float | None, init: Any, mask: Any) -> float | None:
    """The strength to use: None without --init; defaults 1 with --mask, DEFAULT_STRENGTH without."""
    s = check_strength(strength)
    if init is None:
        if s is not None:
            raise BadInput(f"--strength {strength} needs --init (the sprite to vary)")
        if mask is not None:
            raise BadInput("--mask needs --init (the sprite whose unmasked pixels are kept)")
        return None
    if s is None:
        return 1.0 if mask is not None else DEFAULT_STRENGTH
    return s


def edit_fields(init: ImageLike | None, mask: ImageLike | None, strength: float | None, tileable: bool,
                size: tuple[int, int], channels: int = 4) -> dict[str, Any]:
    """Validated Request fields (init, mask, strength, tileable) from user values."""
    s = resolve_strength(strength, init, mask)
    return {"init": None if init is None else load_init(init, size, channels),
            "mask": None if mask is None else load_mask(mask, size),
            "strength": s, "tileable": bool(tileable)}


def has_edits(req: Any) -> bool:
    return getattr(req, "init", None) is not None or bool(getattr(req, "tileable", False))


def edit_meta(req: Any, init_path: Any = None, mask_path: Any = None) -> dict[str, Any]:
    """JSON-ready description of the edit options, for --json and atlas metadata."""
    return {"init": None if init_path is None else str(init_path),
            "mask": None if mask_path is None else str(mask_path),
            "strength": getattr(req, "strength", None), "tileable": bool(getattr(req, "tileable", False))}


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
            raise BadInput(f"--tileable needs sprites of at least 4x4, got {size[1]}x{size[0]}")
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


def inpaint_denoiser(denoiser: Denoiser, init: Array, keep_noise: Callable[[], Array], generate: Array,
                     alphas_cumprod: np.ndarray) -> Denoiser:
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
def sample_edited(sampler: str, denoiser: Denoiser, z0: np.ndarray, schedule: Schedule,
                  steps: int, req: Any, ops: Ops, *, eta: float = 0.0, noise: Callable[[int], Array] | None = None,
                  callback: Callback | None = None, clip_x0: bool = True) -> Array:
    """The sampling loop with req's init/strength/mask/tileable applied -> model-range N x C x H x W.

    `z0` is the first draw of the request's NoiseStream (plain sampling's starting noise, float32
    N x C x H x W), `noise(i)` its later draws as backend arrays; `denoiser` the backend's unclipped one."""
    abar = schedule.alphas_cumprod()
    shape = tuple(z0.shape)
    init = getattr(req, "init", None)
    strength = getattr(req, "strength", None)
    strength = 1.0 if strength is None else float(strength)
    ts = truncated_timesteps(schedule, steps, strength if init is not None else 1.0)
    x_init = None
    if init is not None:
        from scarlet_moon.data.sprites import to_model_range

        x_init = np.broadcast_to(to_model_range(init[None]), shape).astype(np.float32)
        if not ts:  # strength 0: the init itself
            return ops.const(x_init)
    if clip_x0:
        denoiser = clipped(denoiser, abar)
    if getattr(req, "tileable", False):
        denoiser = tileable_denoiser(denoiser, (shape[2], shape[3]), ops)
    if getattr(req, "mask", None) is not None:
        rng = np.random.default_rng([int(req.seed), KEEP_STREAM])
        gen = ops.const(np.asarray(req.mask, np.float32)[None, None])
        denoiser = inpaint_denoiser(denoiser, ops.const(x_init),
                                    lambda: ops.const(rng.standard_normal(shape, dtype=np.float32)), gen, abar)
    if init is None or start_timestep(strength, schedule.num_steps) == schedule.num_steps:
        x = ops.const(z0)  # pure noise, exactly as plain sampling starts
    else:
        a, s = math.sqrt(abar[ts[0]]), math.sqrt(1.0 - abar[ts[0]])
        x = ops.const((x_init * a + z0 * s).astype(np.float32))
    return run_sampler(sampler, denoiser, x, schedule, steps, eta=eta, noise=noise, callback=callback,
                       clip_x0=False, timesteps=ts)


def restore_kept(req: Any, images: np.ndarray) -> np.ndarray:
    """After post-processing: pixels the mask keeps are the init's, exactly."""
    init, mask = getattr(req, "init", None), getattr(req, "mask", None)
    if init is None or mask is None:
        return images
    out = images.copy()
    out[:, ~np.asarray(mask, bool)] = init[~np.asarray(mask, bool)]
    return out
