"""Reading sprite images (Pillow + numpy): one reader for every command. Writing: scarlet_moon.data.png."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from scarlet_moon.errors import BadInput
from scarlet_moon.limits import MAX_IMAGE_PIXELS

_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


log = logging.getLogger(__name__)


def _unreadable(path: object, exc: Exception, max_pixels: int = MAX_IMAGE_PIXELS) -> BadInput:
    """The one-line error for an image Pillow would not open; a huge one (Pillow refuses those itself,
    before our header check) is named by its pixel count."""
    if isinstance(exc, Image.DecompressionBombError):
        n = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(n.group(1)):,} pixels" if n else "too many pixels"
        return BadInput(f"{str(path)!r} has {size}: more than the {max_pixels:,} pixels an image may have")
    return BadInput(f"{str(path)!r} is not a readable image ({type(exc).__name__})")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header alone: nothing is decoded."""
    try:
        with Image.open(path) as im:
            return im.size
    except _ERRORS as exc:
        raise _unreadable(path, exc) from None


def read_image(path: Path, max_pixels: int = MAX_IMAGE_PIXELS, data: bytes | None = None) -> np.ndarray:
    """Any image mode -> uint8 H x W x 4 (palette / colour-key transparency honoured, 16-bit scaled)."""
    return read_image_alpha(path, max_pixels, data)[0]


def read_image_alpha(
    path: Path, max_pixels: int = MAX_IMAGE_PIXELS, data: bytes | None = None
) -> tuple[np.ndarray, bool]:
    """(uint8 H x W x 4, whether the file had alpha: an alpha channel or a tRNS transparency); an image
    of more than `max_pixels` is refused from its header, before any pixel is decoded. `data`: the
    file's bytes (an upload; `path` is then only its name in messages)."""
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise BadInput(f"{str(path)!r} is {w}x{h}: more than the {max_pixels:,} pixels an image may have")
            frames = getattr(im, "n_frames", 1)
            if frames > 1:  # an animated PNG or GIF: said, not silently cut to its first frame
                log.warning(
                    "%r is animated (%d frames); only its first frame is read (split the frames into "
                    "PNGs to use them all)",
                    str(path),
                    frames,
                )
            im.load()
            alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
            rgba = _to_rgba(im)
    except _ERRORS as exc:
        raise _unreadable(path, exc, max_pixels) from None
    return rgba, alpha


def _to_rgba(im: Image.Image) -> np.ndarray:
    """uint8 H x W x 4; 16-bit and float modes are scaled to 8 bits, not clipped."""
    if im.mode.startswith(("I", "F")):
        v = np.nan_to_num(np.asarray(im, np.float64))
        if im.mode.startswith("F"):  # float: 0..1 (scaled), or already 0..255
            v = v * 255.0 if v.max(initial=0.0) <= 1.0 else v
        else:  # 16/32-bit integer grey: 0..65535
            v = v / 257.0
        im = Image.fromarray(np.rint(v).clip(0, 255).astype(np.uint8), "L")
    return np.asarray(im.convert("RGBA"), np.uint8)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
