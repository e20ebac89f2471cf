"""libGDX / Spine texture atlas (.atlas text), as read by libGDX TextureAtlas.TextureAtlasData.

Layout: per page a header (image file name line, then `key: values` fields), then its regions
(name line, indented fields); a blank line ends a page. Animations are regions sharing a name
with `index` 0..n (atlas.findRegions(label)); unlabelled frames keep their own name, index -1.
`offsets` y is measured from the BOTTOM of the original image.
The format has no quoting: a line with ':' is read as a field and leading/trailing blanks are
trimmed, so region names are sanitised (':' and control characters -> '_') and kept unique.
"""

from __future__ import annotations

import re

from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget, by_label
from scarlet_moon.exporters.model import Frame

_UNSAFE = re.compile(r"[:\x00-\x1f\x7f]")


def atlas_name(text: str) -> str:
    """A region name the parser reads back unchanged."""
    return _UNSAFE.sub("_", text).strip() or "_"


def _region_names(frames: list[Frame]) -> dict[int, tuple[str, int]]:
    """id(frame) -> (region name, index); distinct labels/names stay distinct after sanitising."""
    taken: dict[str, tuple[str, str]] = {}  # region name -> ("label" | "frame", original text)

    def claim(key: tuple[str, str]) -> str:
        base = candidate = atlas_name(key[1])
        k = 2
        while candidate in taken and taken[candidate] != key:
            candidate, k = f"{base}_{k}", k + 1
        taken[candidate] = key
        return candidate

    out: dict[int, tuple[str, int]] = {}
    counters: dict[str, int] = {}
    for f in by_label(frames):
        if f.label is None:
            out[id(f)] = (claim(("frame", f.name)), -1)
        else:
            name = claim(("label", f.label))
            out[id(f)] = (name, counters.get(name, 0))
            counters[name] = counters.get(name, 0) + 1
    return out


class LibGdx(AtlasFormat):
    reads_pixels = False  # page sizes only: renderable in a worker
    name = "libgdx"
    description = "libGDX / Spine TextureAtlas text (.atlas), animations as indexed regions"
    suffix = ".atlas"
    engine = "libGDX (TextureAtlas), Spine"

    def render(self, target: AtlasTarget) -> str:
        names = _region_names(target.frames)
        out: list[str] = []
        for page, image in zip(target.pages, target.images):
            if _UNSAFE.search(image) or image != image.strip():
                raise ValueError(f"libGDX atlas cannot name the page image {image!r} (':' or control characters)")
            out += [
                "",
                image,
                f"size: {page.size[0]}, {page.size[1]}",
                "format: RGBA8888",
                "filter: Nearest, Nearest",
                "repeat: none",
                "pma: false",
            ]
            for f in by_label(page.frames):
                region, index = names[id(f)]
                bottom = f.source_h - f.offset_y - f.h
                out += [
                    region,
                    f"  bounds: {f.x}, {f.y}, {f.w}, {f.h}",
                    f"  offsets: {f.offset_x}, {bottom}, {f.source_w}, {f.source_h}",
                    "  rotate: false",
                    f"  index: {index}",
                ]
        return "\n".join(out[1:]) + "\n"
