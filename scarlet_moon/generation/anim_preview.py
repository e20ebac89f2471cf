"""Pictures of drawn characters (uint8 N x D x F x H x W x 4): a still sheet and an animated GIF.

Both lay characters side by side, a row per direction, on a flat grey (GIF has no partial alpha):
the sheet shows every frame left to right; the GIF plays the frames in place, all characters in step.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

BACKDROP = (96, 96, 96, 255)
GAP = 2  # pixels between cells, before the zoom


def _canvas(chars: np.ndarray, cols: int, zoom: int) -> tuple[Image.Image, int, int]:
    n, d, _, h, w, _ = chars.shape
    cw, ch = (w + GAP) * zoom, (h + GAP) * zoom
    return Image.new("RGBA", (cols * cw + GAP * zoom, d * ch + GAP * zoom), BACKDROP), cw, ch


def _tile(frame: np.ndarray, zoom: int) -> Image.Image:
    img = Image.fromarray(np.ascontiguousarray(frame), "RGBA")
    return img.resize((img.width * zoom, img.height * zoom), Image.Resampling.NEAREST) if zoom > 1 else img


def character_sheet_image(chars: np.ndarray, zoom: int = 1) -> Image.Image:
    """Characters side by side (a gap between them), each D rows x F frames."""
    n, d, f = chars.shape[:3]
    sheet, cw, ch = _canvas(chars, n * f, zoom)
    for c in range(n):
        for i in range(d):
            for j in range(f):
                x = GAP * zoom + (c * f + j) * cw
                sheet.alpha_composite(_tile(chars[c, i, j], zoom), (x, GAP * zoom + i * ch))
    return sheet


def character_sheet(chars: np.ndarray, zoom: int = 1) -> bytes:
    buf = io.BytesIO()
    character_sheet_image(chars, zoom).save(buf, "PNG")
    return buf.getvalue()


def preview_gif(chars: np.ndarray, duration_ms: int = 125, zoom: int = 4, per_row: int = 8) -> bytes:
    """An endless GIF: characters across (per_row, then a new band), their directions down, frame f of
    every cycle at once."""
    n, d, f, h, w, _ = chars.shape
    cols, bands = min(n, per_row), -(-n // per_row)
    cw, ch = (w + GAP) * zoom, (h + GAP) * zoom
    size = (cols * cw + GAP * zoom, bands * (d * ch + GAP * zoom) + GAP * zoom)
    shots = []
    for j in range(f):
        sheet = Image.new("RGBA", size, BACKDROP)
        for c in range(n):
            top = GAP * zoom + (c // per_row) * (d * ch + GAP * zoom)
            for i in range(d):
                sheet.alpha_composite(_tile(chars[c, i, j], zoom), (GAP * zoom + (c % per_row) * cw, top + i * ch))
        shots.append(sheet.convert("RGB"))
    buf = io.BytesIO()
    shots[0].save(buf, "GIF", save_all=True, append_images=shots[1:], duration=duration_ms, loop=0, disposal=1)
    return buf.getvalue()
