"""Built-in atlas formats plus third-party ones from the "scarlet_moon.exporters" entry points."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

from exporters.base import AtlasFormat
from exporters.fmt_godot import Godot3, Godot4
from exporters.fmt_json import AsepriteJson, JsonArray, JsonHash, PhaserMulti
from exporters.fmt_libgdx import LibGdx

ENTRY_POINT_GROUP = "scarlet_moon.exporters"
BUILTINS: tuple[AtlasFormat, ...] = (JsonHash(), JsonArray(), PhaserMulti(), AsepriteJson(), Godot3(), Godot4(),
                                     LibGdx())


def available_formats() -> dict[str, AtlasFormat]:
    """name -> format: the built-ins, then every loadable plugin (built-ins win a name clash).

    Plugins are looked up on every call (cheap), so a package installed meanwhile is seen.
    A plugin that fails to load, or is not a format, is skipped with a warning.
    """
    formats = {f.name: f for f in BUILTINS}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            fmt = as_format(ep.load())
        except Exception as exc:  # a broken plugin must not break the other formats
            warnings.warn(f"atlas format plugin {ep.name!r} ({ep.value}) skipped: {exc}", RuntimeWarning,
                          stacklevel=2)
            continue
        if fmt.name in formats:
            if formats[fmt.name] is not fmt:
                warnings.warn(f"atlas format plugin {ep.name!r} ({ep.value}) skipped: the name {fmt.name!r} "
                              "is already taken", RuntimeWarning, stacklevel=2)
            continue
        formats[fmt.name] = fmt
    return formats


def as_format(obj: object) -> AtlasFormat:
    """An entry point's object as a format: an instance, or a zero-argument factory (e.g. a class)."""
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "render")):
        obj = obj()
    for attr in ("name", "description", "suffix", "render"):
        if not hasattr(obj, attr):
            raise TypeError(f"{obj!r} has no {attr!r}; an atlas format needs name, description, suffix, render()")
    name, suffix = getattr(obj, "name"), getattr(obj, "suffix")
    if not isinstance(name, str) or not name or not isinstance(suffix, str) or not suffix.startswith(".") \
            or any(c in suffix for c in "/\\"):
        raise TypeError(f"{obj!r}: name must be a non-empty string, suffix a '.'-prefixed file-name ending")
    return obj  # type: ignore[return-value]
