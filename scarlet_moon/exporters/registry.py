"""Atlas formats, built-in and third-party alike, from the "scarlet_moon.exporters" entry points.

The built-in formats are registered in pyproject.toml under that group, like any plugin, and
loaded by the same code. BUILTINS repeats those entries so that a source tree used without its
package metadata (copied into a project, say) still has them; test_exporters checks the two agree.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from scarlet_moon.exporters.base import AtlasFormat

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "scarlet_moon.exporters"
BUILTINS: tuple[tuple[str, str], ...] = (  # (entry-point name, value), in listing order
    ("json-hash", "scarlet_moon.exporters.fmt_json:JsonHash"),
    ("json-array", "scarlet_moon.exporters.fmt_json:JsonArray"),
    ("phaser-multi", "scarlet_moon.exporters.fmt_json:PhaserMulti"),
    ("aseprite", "scarlet_moon.exporters.fmt_json:AsepriteJson"),
    ("godot3", "scarlet_moon.exporters.fmt_godot:Godot3"),
    ("godot4", "scarlet_moon.exporters.fmt_godot:Godot4"),
    ("libgdx", "scarlet_moon.exporters.fmt_libgdx:LibGdx"),
    ("sparrow", "scarlet_moon.exporters.fmt_sparrow:Sparrow"),
    ("love", "scarlet_moon.exporters.fmt_love:Love"),
    ("unity", "scarlet_moon.exporters.fmt_unity:Unity"),
    ("tiled", "scarlet_moon.exporters.fmt_tiled:TiledTileset"),
    ("godot4-tileset", "scarlet_moon.exporters.fmt_godot_tileset:Godot4TileSet"),
)


def format_entry_points() -> list[EntryPoint]:
    """The group's entry points: the built-ins first (in BUILTINS order; from BUILTINS where the package
    metadata lacks them), then every other one by name."""
    from importlib.metadata import EntryPoint, entry_points  # ~35 ms of imports: only for the scan

    found = {(ep.name, ep.value): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    builtins = [found.pop(key) if key in found else EntryPoint(*key, ENTRY_POINT_GROUP) for key in BUILTINS]
    return builtins + sorted(found.values(), key=lambda ep: (ep.name, ep.value))


def available_formats() -> dict[str, AtlasFormat]:
    """name -> format, built-ins first (a plugin cannot take a built-in's name).

    Entry points are looked up on every call (cheap), so a package installed meanwhile is seen.
    A plugin that fails to load, or is not a format, is skipped with a warning.
    """
    formats: dict[str, AtlasFormat] = {}
    for ep in format_entry_points():
        try:
            fmt = as_format(ep.load())
        except Exception as exc:  # a broken plugin must not break the other formats
            warnings.warn(f"atlas format plugin {ep.name!r} ({ep.value}) skipped: {exc}", RuntimeWarning, stacklevel=2)
            continue
        if fmt.name in formats:
            warnings.warn(
                f"atlas format plugin {ep.name!r} ({ep.value}) skipped: the name {fmt.name!r} is already taken",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        formats[fmt.name] = fmt
    return formats


def formats_for(names: "list[str] | tuple[str, ...]") -> dict[str, AtlasFormat]:
    """A registry that holds `names`: the built-ins alone when every name is a built-in's (no plugin can
    take a built-in's name, so the entry-point scan, ~40 ms on a slow disk, cannot change them), else
    available_formats()."""
    builtin_names = {name for name, _ in BUILTINS}
    if not set(names) <= builtin_names:
        return available_formats()
    return {fmt.name: fmt for fmt in (as_format(load_object(value)) for name, value in BUILTINS if name in names)}


def load_object(value: str) -> object:
    """ "module:attribute" -> the object, as EntryPoint.load() does (without importlib.metadata)."""
    module, _, attr = value.partition(":")
    obj: object = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def as_format(obj: Any) -> AtlasFormat:
    """An entry point's object as a format: an instance, or a zero-argument factory (e.g. a class)."""
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "render")):
        obj = obj()
    for attr in ("name", "description", "suffix", "render"):
        if not hasattr(obj, attr):
            raise TypeError(f"{obj!r} has no {attr!r}; an atlas format needs name, description, suffix, render()")
    name, suffix = obj.name, obj.suffix
    if (
        not isinstance(name, str)
        or not name
        or not isinstance(suffix, str)
        or not suffix.startswith(".")
        or any(c in suffix for c in "/\\")
    ):
        raise TypeError(f"{obj!r}: name must be a non-empty string, suffix a '.'-prefixed file-name ending")
    return obj  # type: ignore[return-value]
