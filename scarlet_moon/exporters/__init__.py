"""Spritesheet packing and engine atlas export (Pillow + numpy + stdlib only).

    from scarlet_moon.exporters import Sprite, pack, write_atlases
    result = pack([Sprite("hero_000", img, label="hero"), ...], padding=1)
    write_atlases(result, "out/hero.png", ["json-hash", "godot3"])

Formats: see available_formats() (built-ins plus "scarlet_moon.exporters" entry points).

The names below are imported on first use (PEP 562): a tool that only needs `scarlet_moon.exporters.atomic` (as
`sm sample` does) does not pay for Pillow and the packer at start-up.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

# public name -> the submodule that defines it
_WHERE = {
    "recover": "atomic",
    "AtlasFormat": "base",
    "AtlasTarget": "base",
    "Frame": "model",
    "PackOptions": "model",
    "PackResult": "model",
    "Page": "model",
    "Sprite": "model",
    "pack": "packer",
    "ENTRY_POINT_GROUP": "registry",
    "available_formats": "registry",
    "check_sheet_path": "writer",
    "prepare_sheet_path": "writer",
    "resolve_formats": "writer",
    "write_atlases": "writer",
}

__all__ = [
    "ENTRY_POINT_GROUP",
    "AtlasFormat",
    "AtlasTarget",
    "Frame",
    "PackOptions",
    "PackResult",
    "Page",
    "Sprite",
    "available_formats",
    "check_sheet_path",
    "prepare_sheet_path",
    "pack",
    "recover",
    "resolve_formats",
    "write_atlases",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:  # a submodule used as `from scarlet_moon import exporters; exporters.base.X` still resolves
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:
    from scarlet_moon.exporters.atomic import recover
    from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget
    from scarlet_moon.exporters.model import Frame, PackOptions, PackResult, Page, Sprite
    from scarlet_moon.exporters.packer import pack
    from scarlet_moon.exporters.registry import ENTRY_POINT_GROUP, available_formats
    from scarlet_moon.exporters.writer import check_sheet_path, prepare_sheet_path, resolve_formats, write_atlases
