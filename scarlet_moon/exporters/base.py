"""The atlas-format interface that built-in and third-party exporters implement.

A format turns a packed result into the text/bytes of one atlas file; the writer decides file
names, checks for existing files and writes atomically, so a format never touches the disk.

Third-party formats: expose an AtlasFormat instance (or a zero-argument callable returning
one, e.g. the class) under the entry-point group "scarlet_moon.exporters":

    [project.entry-points."scarlet_moon.exporters"]
    css = "my_pkg.css:CssFormat"
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from scarlet_moon.exporters.model import Frame, Page

DEFAULT_DURATION_MS = 100  # per frame when Sprite.meta has no "duration" (ms); = 10 fps


@dataclass(frozen=True)
class AtlasTarget:
    """What one atlas file describes.

    pages: the pages this file covers (a single page for a per-page atlas of a multipack);
    images: each page's PNG file name, relative to the atlas file (same order as pages);
    atlas_name: this atlas's own file name; siblings: the other files of a per-page multipack
    (PixiJS meta.related_multi_packs); app_meta: {"app", "version", ...} for the meta block.
    """

    pages: list[Page]
    images: list[str]
    atlas_name: str
    siblings: list[str] = field(default_factory=list)
    app_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> list[Frame]:
        return [f for p in self.pages for f in p.frames]


class AtlasFormat(abc.ABC):
    """An atlas flavour: `name` (for --format), `description`, `suffix` (".json", ".tres", ...),
    `engine`: the engines/tools that read it (shown by `sm sheet --list-formats`; optional for plugins).

    per_page: with several pages, write one atlas per page (hero-0.json, hero-1.json) instead of
    one atlas describing all pages (hero.tres).

    reads_pixels: render reads page pixels (page.image), not only page.size. False lets the writer
    render the atlas in a worker process from the page sizes alone (see scarlet_moon.exporters.parallel).
    """

    name: str = ""
    description: str = ""
    suffix: str = ""
    engine: str = ""
    per_page: bool = False
    reads_pixels: bool = True

    @abc.abstractmethod
    def render(self, target: AtlasTarget) -> str | bytes:
        """The whole atlas file; str is written as UTF-8."""

    def companions(self, target: AtlasTarget) -> dict[str, str | bytes]:
        """Extra files (name relative to the atlas -> content) written only where none exists yet."""
        return {}

    def __repr__(self) -> str:
        return f"<AtlasFormat {self.name!r} ({self.suffix})>"


def duration_ms(frame: Frame) -> int:
    """The frame's display time: Sprite.meta["duration"] in ms when it is a positive int, else 100."""
    d = frame.meta.get("duration")
    return d if isinstance(d, int) and not isinstance(d, bool) and d > 0 else DEFAULT_DURATION_MS


def tp_frame(frame: Frame) -> dict[str, Any]:
    """A TexturePacker frame entry (Phaser reads anchor||pivot, Pixi only anchor: emit both).

    Per-frame data goes under "data"; loaders ignore unknown keys (Phaser keeps them as customData).
    """
    data: dict[str, Any] = {"label": frame.label, "meta": frame.meta}
    if frame.alias_of is not None:
        data["aliasOf"] = frame.alias_of
    return {
        "frame": {"x": frame.x, "y": frame.y, "w": frame.w, "h": frame.h},
        "rotated": False,
        "trimmed": frame.trimmed,
        "spriteSourceSize": {"x": frame.offset_x, "y": frame.offset_y, "w": frame.w, "h": frame.h},
        "sourceSize": {"w": frame.source_w, "h": frame.source_h},
        "pivot": {"x": 0.5, "y": 0.5},
        "anchor": {"x": 0.5, "y": 0.5},
        "duration": duration_ms(frame),
        "data": data,
    }


def by_label(frames: list[Frame]) -> list[Frame]:
    """Frames grouped by label (labels in first-appearance order, unlabelled last), stable inside."""
    order: dict[str | None, int] = {}
    for f in frames:
        order.setdefault(f.label, len(order))
    return sorted(frames, key=lambda f: (f.label is None, order[f.label]))
