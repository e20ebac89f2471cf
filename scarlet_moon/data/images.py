"""Reading and writing sprite images (Pillow + numpy): one reader for every command, atomic PNG writes,
preview grids."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from scarlet_moon.atomic import atomic_write_bytes
from scarlet_moon.errors import BadInput


def read_image(path: Path) -> np.ndarray:
    """Any image mode -> uint8 H x W x 4 (palette / colour-key transparency honoured)."""
    return read_image_alpha(path)[0]


def read_image_alpha(path: Path) -> tuple[np.ndarray, bool]:
    """(uint8 H x W x 4, whether the file had alpha: an alpha channel or a tRNS transparency)."""
    try:
        with Image.open(path) as im:
            im.load()
            alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
            if im.mode.startswith("I"):  # 16/32-bit grey: scale to 8 bits before RGBA
                im = Image.fromarray((np.asarray(im, np.float64) / 257.0).clip(0, 255).astype(np.uint8), "L")
            rgba = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadInput(f"{str(path)!r} is not a readable image ({type(exc).__name__})") from None
    return np.asarray(rgba, np.uint8), alpha


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def save_png(img: Image.Image | np.ndarray, path: str | Path) -> Path:
    """Atomically write an RGBA PNG (uint8 H x W x 4 array or PIL image)."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img, "RGBA")
    atomic_write_bytes(path, png_bytes(img))
    return Path(path)


def make_grid(images: np.ndarray, ncols: int, scale: int = 4, pad: int = 1) -> Image.Image:
    """uint8 N x H x W x 4 -> one RGBA image, row-major, nearest-neighbour scaled, transparent gaps."""
    n, h, w, c = images.shape
    rows = max(1, -(-n // ncols))
    sh, sw = h * scale, w * scale
    grid = np.zeros((rows * (sh + pad) + pad, ncols * (sw + pad) + pad, 4), np.uint8)
    big = images.repeat(scale, axis=1).repeat(scale, axis=2)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (sh + pad), pad + col * (sw + pad)
        grid[y:y + sh, x:x + sw, :c] = big[i]
        if c == 3:
            grid[y:y + sh, x:x + sw, 3] = 255
    return Image.fromarray(grid, "RGBA")
