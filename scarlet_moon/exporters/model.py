"""Data types shared by the packer and the atlas writers.

Coordinates are pixels in the sheet, origin top-left, y down (engines that want y up, like
libGDX offsets, convert in their writer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from scarlet_moon.exporters.sizes import MAX_SHEET_SIDE


@dataclass(frozen=True)
class Sprite:
    """One input frame.

    `image` may be any mode and size (converted to RGBA when packed), or a uint8 numpy array
    H x W x 4 (RGBA, used as it is: no PIL round trip for generated sprites); `label` groups frames
    into an animation/tag; `meta` is per-frame JSON-serialisable data carried into the atlas.
    """

    name: str
    image: Any  # a PIL.Image.Image of any mode, or a numpy.ndarray uint8 H x W x 4
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PackOptions:
    """How sprites are packed (scarlet_moon.exporters.packer); every value is checked here (ValueError naming it)."""

    padding: int = 1  # pixels between slots and from the sheet's edges
    extrude: int = 0  # edge pixels repeated around each frame
    scale: int = 1  # nearest-neighbour factor
    pot: bool = False  # sheet sides rounded up to powers of two
    max_size: int = 4096  # largest sheet side; more sprites go on further pages
    trim: bool = False  # crop transparent borders
    dedupe: bool = True  # identical frames stored once

    def __post_init__(self) -> None:
        for name, low, high in (
            ("padding", 0, MAX_SHEET_SIDE),
            ("extrude", 0, MAX_SHEET_SIDE),
            ("scale", 1, MAX_SHEET_SIDE),
            ("max_size", 1, MAX_SHEET_SIDE),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer {low}..{high}, got {value!r}")

    @property
    def limit(self) -> int:
        """The largest page side: max_size, rounded down to a power of two with pot."""
        return 1 << (self.max_size.bit_length() - 1) if self.pot else self.max_size

    def check_fits(self, w: int, h: int, what: str = "a sprite") -> None:
        """ValueError when a w x h sprite (before scaling and trimming) cannot go on a page."""
        side = max(w, h) * self.scale + 2 * (self.extrude + self.padding)
        if side > self.limit:
            raise ValueError(
                f"{what} of {w}x{h} needs {side} px per side at scale {self.scale} with padding "
                f"{self.padding} and extrusion {self.extrude}, more than the max sheet size {self.limit}"
            )


@dataclass(frozen=True)
class Frame:
    """Where one sprite ended up.

    (x, y, w, h): the stored pixels in the sheet, after scale and trim, without the extrusion
    border. (source_w, source_h): the untrimmed scaled size. (offset_x, offset_y): where the
    stored pixels sit inside that untrimmed box (TexturePacker spriteSourceSize.x/y).
    `alias_of` names the frame whose pixels are stored (identical sprites share one rect).
    """

    name: str
    x: int
    y: int
    w: int
    h: int
    source_w: int
    source_h: int
    offset_x: int = 0
    offset_y: int = 0
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    alias_of: str | None = None

    @property
    def trimmed(self) -> bool:
        """True when the stored rect is smaller than the source (TexturePacker `trimmed`)."""
        return (self.w, self.h, self.offset_x, self.offset_y) != (self.source_w, self.source_h, 0, 0)


@dataclass(frozen=True)
class Page:
    """One sheet image (RGBA) and the frames on it, in input order."""

    image: Image.Image
    frames: list[Frame]

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass(frozen=True)
class PackResult:
    """The packed pages plus the settings that produced them (writers may record them)."""

    pages: list[Page]
    padding: int = 1
    extrude: int = 0
    scale: int = 1

    @property
    def frames(self) -> list[Frame]:
        """Every frame of every page (page order, then input order)."""
        return [f for page in self.pages for f in page.frames]

    def animations(self) -> dict[str, list[str]]:
        """label -> frame names, labels in first-appearance order; unlabelled frames left out."""
        return animations_of(self.frames)


def animations_of(frames: list[Frame]) -> dict[str, list[str]]:
    """label -> frame names in the given order; frames without a label are left out."""
    anims: dict[str, list[str]] = {}
    for f in frames:
        if f.label is not None:
            anims.setdefault(f.label, []).append(f.name)
    return anims
