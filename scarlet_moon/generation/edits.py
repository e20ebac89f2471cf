"""The user's editing inputs -> a checked diffusion.editing.Edit (init sprite, mask, strength, tileable).

An init or mask may be a path, a PIL image or a uint8 array, and must be the model's sprite size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from scarlet_moon.diffusion.editing import Edit
from scarlet_moon.errors import BadInput, arg

ImageLike = Any  # a path, a PIL image or a uint8 H x W x 3|4 array
DEFAULT_STRENGTH = 0.75  # init without mask; with a mask the default is 1


def _describe(src: ImageLike) -> str:
    return repr(str(src)) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"


def _rgba(src: ImageLike, option: str, size: tuple[int, int]) -> np.ndarray:
    """Any image source -> uint8 H x W x 4 the way training PNGs are read (RGB gets alpha 255); a file
    of another size than `size` (H, W) is refused from its header, before it is decoded."""
    from scarlet_moon.data.images import image_size, read_image

    if isinstance(src, (str, os.PathLike)):
        if not Path(src).is_file():
            raise BadInput(f"{arg(option)} {str(src)!r} does not exist or is not a file")
        w, h = image_size(Path(src))
        _check_size(np.empty((h, w), np.bool_), src, option, size)
        return read_image(Path(src))
    if isinstance(src, np.ndarray):
        arr = src
    elif hasattr(src, "convert"):  # a PIL image
        arr = np.asarray(src.convert("RGBA"), np.uint8)
    else:
        raise BadInput(f"{arg(option)}: expected an image path, a PIL image or a uint8 array, got {type(src).__name__}")
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise BadInput(f"{arg(option)}: expected a uint8 H x W x 3|4 array, got {arr.dtype} {tuple(arr.shape)}")
    if arr.shape[-1] == 3:
        arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    return np.ascontiguousarray(arr)


def _check_size(arr: np.ndarray, src: ImageLike, option: str, size: tuple[int, int]) -> None:
    if tuple(arr.shape[:2]) != tuple(size):
        raise BadInput(
            f"{arg(option)} {_describe(src)} is {arr.shape[1]}x{arr.shape[0]}; this model makes "
            f"{size[1]}x{size[0]} sprites, so it must be {size[1]}x{size[0]}"
        )


def load_init(src: ImageLike, size: tuple[int, int], channels: int = 4) -> np.ndarray:
    """The init sprite as uint8 H x W x channels (RGBA unless the model is RGB)."""
    arr = _rgba(src, "init", size)
    _check_size(arr, src, "init", size)
    return arr[..., :channels].copy()


def load_mask(src: ImageLike, size: tuple[int, int]) -> np.ndarray:
    """The mask as bool H x W, True = generate. With any transparency in the image its alpha
    decides (alpha >= 128: generate), else its brightness (luma >= 128: white generates).
    A 2-D array is taken as is: bool (True = generate) or uint8 (>= 128 = generate)."""
    if isinstance(src, np.ndarray) and src.ndim == 2 and src.dtype in (np.bool_, np.uint8):
        _check_size(src, src, "mask", size)
        return src.astype(bool) if src.dtype == np.bool_ else src >= 128
    arr = _rgba(src, "mask", size)
    _check_size(arr, src, "mask", size)
    alpha = arr[..., 3]
    if (alpha < 255).any():
        return alpha >= 128
    luma = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return luma >= 127.5


def resolve_strength(strength: float | None, init: Any, mask: Any) -> float | None:
    """The strength to use: None without init; defaults 1 with a mask, DEFAULT_STRENGTH without."""
    s = None if strength is None else float(strength)
    if s is not None and not 0.0 <= s <= 1.0:  # NaN fails too
        raise BadInput(f"{arg('strength')} {strength}: must be between 0 and 1 (0 keeps the init, 1 ignores it)")
    if init is None:
        if s is not None:
            raise BadInput(f"{arg('strength')} {strength} needs {arg('init')} (the sprite to vary)")
        if mask is not None:
            raise BadInput(f"{arg('mask')} needs {arg('init')} (the sprite whose unmasked pixels are kept)")
        return None
    if s is None:
        return 1.0 if mask is not None else DEFAULT_STRENGTH
    return s


def load_edit(
    init: ImageLike | None = None,
    mask: ImageLike | None = None,
    strength: float | None = None,
    tileable: bool = False,
    *,
    size: tuple[int, int],
    channels: int = 4,
) -> Edit:
    """A checked Edit for sprites of `size` (H, W) with `channels` channels."""
    s = resolve_strength(strength, init, mask)
    if tileable and min(size) < 4:
        raise BadInput(f"{arg('tileable')} needs sprites of at least 4x4, got {size[1]}x{size[0]}")
    return Edit(
        init=None if init is None else load_init(init, size, channels),
        mask=None if mask is None else load_mask(mask, size),
        strength=s,
        tileable=bool(tileable),
    )


def edit_meta(edit: Edit, init_source: Any = None, mask_source: Any = None) -> dict[str, Any]:
    """JSON-ready description of the edit, for `sm sample --json` and atlas metadata: a path as given,
    an image or array by its type (never its repr, whose memory address would change the atlas bytes)."""

    def source(src: Any) -> str | None:
        if src is None:
            return None
        return str(src) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"

    return {
        "init": source(init_source),
        "mask": source(mask_source),
        "strength": edit.strength,
        "tileable": bool(edit.tileable),
    }
