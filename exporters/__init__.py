"""Spritesheet packing and engine atlas export (Pillow + numpy + stdlib only).

    from exporters import Sprite, pack, write_atlases
    result = pack([Sprite("hero_000", img, label="hero"), ...], padding=1)
    write_atlases(result, "out/hero.png", ["json-hash", "godot3"])

Formats: see available_formats() (built-ins plus "scarlet_moon.exporters" entry points).
"""

from __future__ import annotations

from exporters.atomic import recover
from exporters.base import AtlasFormat, AtlasTarget
from exporters.model import Frame, PackOptions, PackResult, Page, Sprite
from exporters.packer import pack
from exporters.registry import ENTRY_POINT_GROUP, available_formats
from exporters.writer import check_sheet_path, resolve_formats, write_atlases

__all__ = ["check_sheet_path", "AtlasFormat", "AtlasTarget", "ENTRY_POINT_GROUP", "Frame", "PackOptions", "PackResult",
           "Page", "Sprite", "available_formats", "pack", "recover", "resolve_formats", "write_atlases"]
