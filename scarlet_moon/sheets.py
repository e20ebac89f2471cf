"""Packing sprites into a spritesheet + engine atlases: the one path `sm sheet` and `sm studio` share.

    paths = pack_and_write(sprites, Path("out/hero.png"), ["json-hash"], PackOptions(padding=1))

The exporters' ValueErrors come back as BadInput naming the parameter (`out`, `formats`, `force`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from exporters import PackOptions, Sprite, pack, resolve_formats, write_atlases
from scarlet_moon.errors import BadInput, arg


def split_formats(formats: Sequence[str]) -> list[str]:
    """Formats may be repeated and/or comma-separated: ("json-hash,godot3", "libgdx"); none -> json-hash."""
    return [n.strip() for item in formats for n in item.split(",") if n.strip()] or ["json-hash"]


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The format names, split and checked against the installed formats (plugins too)."""
    names = tuple(split_formats(formats))
    try:
        resolve_formats(names)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return names


def pack_and_write(sprites: list[Sprite], out: Path, formats: Sequence[str], options: PackOptions | None = None,
                   force: bool = False, app_meta: dict[str, Any] | None = None,
                   jobs: int | None = None) -> list[Path]:
    """Pack `sprites` and write the sheet (`out`, a .png) + atlases in `formats`; the written paths.
    `jobs`: processes encoding and rendering the files (None: chosen from the sheet's size)."""
    from scarlet_moon.version import __version__

    try:
        result = pack(sprites, options)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    meta = {"app": "scarlet-moon", "version": __version__, **(app_meta or {})}
    try:
        return write_atlases(result, out, formats, force=force, app_meta=meta, workers=jobs)
    except FileExistsError as exc:
        raise BadInput(f"{exc.filename!r} already exists; pass {arg('force')} to replace it") from None
    except ValueError as exc:
        raise BadInput(f"{arg('out')} {str(out)!r}: {exc}") from None
    except OSError as exc:
        raise BadInput(f"{arg('out')} {str(out)!r} cannot be written: {exc}") from None
