"""Palettes: K x 3 uint8 arrays, read from GIMP .gpl, Lospec .hex, JASC-PAL .pal or an image's colours."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from scarlet_moon.errors import BadInput
from scarlet_moon.limits import MAX_PALETTE

FORMATS = "GIMP .gpl, Lospec .hex (RRGGBB per line), JASC-PAL .pal, or an image (.png, .gif, .bmp, ...)"
MAX_IMAGE_COLORS = 256
MAX_TEXT_BYTES = 1 << 20  # a text palette of MAX_PALETTE colours is far smaller


def as_palette(palette: np.ndarray) -> np.ndarray:
    """A checked K x 3 uint8 palette (K >= 1)."""
    p = np.asarray(palette)
    if (
        p.ndim != 2
        or p.shape[1] != 3
        or len(p) == 0
        or not np.issubdtype(p.dtype, np.integer)
        or p.min() < 0
        or p.max() > 255
    ):
        raise BadInput(f"a palette must be K x 3 integers in 0..255 with K >= 1, got {p.dtype} {p.shape}")
    return p.astype(np.uint8)


def _bad(path: Path, what: str, line: int | None = None) -> BadInput:
    where = f"{path}" + (f" line {line}" if line is not None else "")
    return BadInput(f"bad palette file {where}: {what}; allowed: {FORMATS}")


def _finish(path: Path, colors: list[tuple[int, int, int]]) -> np.ndarray:
    if not colors:
        raise _bad(path, "no colours found")
    if len(colors) > MAX_PALETTE:
        raise _bad(path, f"{len(colors):,} colours, more than the {MAX_PALETTE} a palette may have")
    return np.array(list(dict.fromkeys(colors)), dtype=np.uint8).reshape(-1, 3)  # dedupe, keep order


def _rgb_ints(path: Path, parts: list[str], lineno: int) -> tuple[int, int, int]:
    try:
        rgb = tuple(int(p) for p in parts[:3])
    except ValueError:
        raise _bad(path, f"expected 'R G B' integers, got {' '.join(parts)[:40]!r}", lineno) from None
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise _bad(path, f"expected three values in 0..255, got {' '.join(parts)[:40]!r}", lineno)
    return rgb  # type: ignore[return-value]


def _parse_gpl(path: Path, lines: list[str]) -> np.ndarray:
    if not lines or lines[0].strip() != "GIMP Palette":
        raise _bad(path, "first line must be 'GIMP Palette'", 1)
    colors = []
    for n, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#") or re.match(r"^(Name|Columns)\s*:", line):
            continue
        colors.append(_rgb_ints(path, line.split(), n))
    return _finish(path, colors)


def _parse_hex(path: Path, lines: list[str]) -> np.ndarray:
    colors = []
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not re.fullmatch(r"#?[0-9A-Fa-f]{6}", line):
            raise _bad(path, f"expected RRGGBB, got {line[:40]!r}", n)
        v = int(line.lstrip("#"), 16)
        colors.append((v >> 16, (v >> 8) & 255, v & 255))
    return _finish(path, colors)


def _parse_jasc(path: Path, lines: list[str]) -> np.ndarray:
    if len(lines) < 3 or lines[0].strip() != "JASC-PAL" or lines[1].strip() != "0100":
        raise _bad(path, "expected the header lines 'JASC-PAL', '0100', <count>", 1)
    count = lines[2].strip()
    if not count.isdigit():
        raise _bad(path, f"expected a colour count, got {count[:40]!r}", 3)
    body = [(n, raw.strip()) for n, raw in enumerate(lines[3:], start=4) if raw.strip()]
    if len(body) != int(count):
        raise _bad(path, f"header says {int(count)} colours, found {len(body)}", 3)
    return _finish(path, [_rgb_ints(path, line.split(), n) for n, line in body])


def _image_palette(path: Path, data: bytes | None = None) -> np.ndarray:
    """The image's most frequent opaque colours; `data`: its bytes (an upload) instead of the file."""
    from scarlet_moon.data.images import read_image

    try:
        rgba = read_image(path, data=data).reshape(-1, 4)
    except BadInput as exc:
        raise _bad(path, f"cannot read the image ({exc})") from None
    opaque = rgba[rgba[:, 3] >= 128][:, :3]
    colors, counts = np.unique(opaque, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:MAX_IMAGE_COLORS]  # most frequent; ties by colour
    return _finish(path, [(int(c[0]), int(c[1]), int(c[2])) for c in colors[order]])


def load_palette(path: "str | Path") -> np.ndarray:
    """K x 3 uint8 palette from .gpl, .hex, JASC .pal, or an image's distinct opaque colours (top 256)."""
    p = Path(path)
    if not p.is_file():
        raise _bad(p, "no such file")
    if _is_text(p) and p.stat().st_size > MAX_TEXT_BYTES:
        raise _bad(p, f"{p.stat().st_size:,} bytes, more than a palette file of {MAX_PALETTE} colours needs")
    return palette_from_bytes(p.name, p.read_bytes() if _is_text(p) else None, where=p)


def _is_text(p: Path) -> bool:
    return p.suffix.lower() in (".gpl", ".hex", ".pal")


def palette_from_bytes(name: str, data: bytes | None, where: Path | None = None) -> np.ndarray:
    """A palette from a file's bytes (an upload named `name`: its extension picks the format); `data`
    None reads the image at `where`. Errors name `where`, else `name`."""
    p = where or Path(name)
    ext = Path(name).suffix.lower()
    if not _is_text(Path(name)):
        from PIL import Image

        if ext not in Image.registered_extensions():
            raise _bad(p, f"unknown extension {ext or '(none)'!r}")
        return _image_palette(p, data)
    assert data is not None
    if len(data) > MAX_TEXT_BYTES:
        raise _bad(p, f"{len(data):,} bytes, more than a palette file of {MAX_PALETTE} colours needs")
    if ext == ".pal" and data[:4] == b"RIFF":
        raise _bad(p, "RIFF (Microsoft) .pal is not supported; save it as JASC-PAL")
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise _bad(p, "not UTF-8 text") from None
    return {".gpl": _parse_gpl, ".hex": _parse_hex, ".pal": _parse_jasc}[ext](p, lines)
