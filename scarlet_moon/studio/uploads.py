"""Uploaded files: size-limited as they arrive, images refused from their header before decoding."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from scarlet_moon.errors import BadInput

if TYPE_CHECKING:
    import numpy as np

MAX_UPLOAD_BYTES = 2 << 20  # a palette file or image: far smaller
MAX_UPLOAD_SIDE = 1024  # an uploaded image's width and height
TEXT_SUFFIXES = (".gpl", ".hex", ".pal")


def upload_name(name: object) -> str:
    """The uploaded file's own name (no folders), for messages and the equivalent command."""
    if not isinstance(name, str) or not name.strip():
        raise BadInput("an upload needs its file name (?name=palette.gpl)")
    base = Path(name.replace("\\", "/")).name[:100]
    if not base or base.startswith("."):
        raise BadInput(f"upload name {name[:100]!r}: expected a file name such as palette.gpl")
    return base


def check_image_header(name: str, data: bytes) -> None:
    """A readable image of at most MAX_UPLOAD_SIDE per side, judged from its header alone."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # a huge header is refused below, with its size: no bomb warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadInput(
            f"upload {name!r} is not a readable image ({type(exc).__name__}); expected a palette "
            f"file ({', '.join(TEXT_SUFFIXES)}) or an image"
        ) from None
    if w > MAX_UPLOAD_SIDE or h > MAX_UPLOAD_SIDE:
        raise BadInput(
            f"upload {name!r} is {w}x{h}: an uploaded image may be at most {MAX_UPLOAD_SIDE}x{MAX_UPLOAD_SIDE}"
        )


def read_palette_upload(name: str, data: bytes) -> np.ndarray:
    """K x 3 uint8 palette from an uploaded .gpl/.hex/.pal or image (scarlet_moon.data.palettes)."""
    from scarlet_moon.data.palettes import palette_from_bytes

    if not data:
        raise BadInput(f"upload {name!r} is empty")
    if Path(name).suffix.lower() not in TEXT_SUFFIXES:
        check_image_header(name, data)
    return palette_from_bytes(name, data)
