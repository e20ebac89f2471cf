"""A page seen as a tile grid (what Tiled's and Godot 4's tileset formats need), and Wang corner data.

Tile editors address a sheet as a grid: tile size, a margin around the image, a spacing between
tiles. The packer puts same-size, untrimmed sprites on such a grid (margin = spacing = padding);
any other layout (mixed sizes, trimming) cannot be described and is refused with a ValueError.
A frame made by `sm tileset` carries meta["wang"] = [tl, tr, br, bl] (0 = terrain A, 1 = B) and
meta["terrains"] = [name A, name B].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scarlet_moon.exporters.model import Frame, Page


@dataclass(frozen=True)
class TileGrid:
    """tile_w x tile_h tiles, `margin` from the image edges, `spacing` apart; `columns` x `rows` as
    an editor counts them from the image size; `cells` maps each frame name to its (column, row)."""

    tile_w: int
    tile_h: int
    margin: int
    spacing: int
    columns: int
    rows: int
    cells: dict[str, tuple[int, int]]

    def tile_id(self, name: str) -> int:
        col, row = self.cells[name]
        return row * self.columns + col


def _pitch(starts: list[int], size: int) -> int | None:
    """The spacing implied by distinct sorted start coordinates (None for a single one)."""
    if len(starts) < 2:
        return None
    return starts[1] - starts[0] - size


def tile_grid(page: Page, fmt: str) -> TileGrid:
    """The grid of `page`; ValueError (naming `fmt`) when its frames are not one on a regular grid."""
    frames = page.frames
    sizes = {(f.w, f.h) for f in frames}
    why = None
    if len(sizes) != 1:
        why = f"frames of {len(sizes)} sizes"
    elif any(f.trimmed for f in frames):
        why = "trimmed frames"
    if why is None:
        ((w, h),) = sizes
        xs, ys = sorted({f.x for f in frames}), sorted({f.y for f in frames})
        margin = xs[0]
        gaps = {g for g in (_pitch(xs, w), _pitch(ys, h)) if g is not None}
        spacing = gaps.pop() if len(gaps) == 1 else (0 if not gaps else -1)
        if (
            ys[0] != margin
            or spacing < 0
            or any((x - margin) % (w + spacing) for x in xs)
            or any((y - margin) % (h + spacing) for y in ys)
        ):
            why = "frames off a regular grid"
    if why is not None:
        raise ValueError(
            f"format {fmt!r} needs same-size frames on a grid, got {why} (pack untrimmed sprites of one size)"
        )
    img_w, img_h = page.size
    cells = {f.name: ((f.x - margin) // (w + spacing), (f.y - margin) // (h + spacing)) for f in frames}
    return TileGrid(
        w,
        h,
        margin,
        spacing,
        (img_w - 2 * margin + spacing) // (w + spacing),
        (img_h - 2 * margin + spacing) // (h + spacing),
        cells,
    )


def wang_corners(frame: Frame) -> tuple[int, int, int, int] | None:
    """meta["wang"] as (tl, tr, br, bl) with values 0/1, or None when the frame has none."""
    wang = frame.meta.get("wang")
    if (
        isinstance(wang, (list, tuple))
        and len(wang) == 4
        and all(c in (0, 1) and not isinstance(c, bool) for c in wang)
    ):
        return (int(wang[0]), int(wang[1]), int(wang[2]), int(wang[3]))
    return None


def wang_frames(frames: list[Frame]) -> list[tuple[Frame, tuple[int, int, int, int]]]:
    """The frames that carry Wang corners, with them."""
    return [(f, c) for f in frames if (c := wang_corners(f)) is not None]


def terrain_names(frames: list[Frame]) -> tuple[str, str]:
    """meta["terrains"] of the first Wang frame, else ("A", "B"); equal names get " 1" / " 2"."""
    for f, _ in wang_frames(frames):
        names = f.meta.get("terrains")
        if isinstance(names, (list, tuple)) and len(names) == 2 and all(isinstance(n, str) for n in names):
            a, b = names
            return (a, b) if a != b else (f"{a} 1", f"{b} 2")
    return ("A", "B")


def terrain_colours(page: Page, frames: list[Frame]) -> list[tuple[int, int, int]]:
    """The mean RGB of each terrain's all-corner tile (A then B), grey when there is none."""
    out: list[tuple[int, int, int]] = []
    rgba = np.asarray(page.image.convert("RGBA"), np.float64)
    for c in (0, 1):
        tile = next((f for f, corners in wang_frames(frames) if corners == (c,) * 4), None)
        if tile is None:
            out.append((128, 128, 128))
            continue
        block = rgba[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w, :3]
        r, g, b = (int(round(v)) for v in block.reshape(-1, 3).mean(axis=0))
        out.append((r, g, b))
    return out


def corner_map(tiles: dict[tuple[int, int, int, int], Any], cols: int, rows: int, seed: int = 0) -> list[list[Any]]:
    """A rows x cols map of `tiles` (corners -> tile) whose neighbours agree on shared corners: corner
    terrains drawn at random (stdlib random, `seed`) on a (rows + 1) x (cols + 1) grid, each cell the
    tile of its four corners. ValueError when the set lacks a combination the draw needs."""
    import random

    rng = random.Random(seed)
    grid = [[rng.randrange(2) for _ in range(cols + 1)] for _ in range(rows + 1)]
    out = []
    for r in range(rows):
        row = []
        for c in range(cols):
            key = (grid[r][c], grid[r][c + 1], grid[r + 1][c + 1], grid[r + 1][c])
            if key not in tiles:
                raise ValueError(f"the tileset has no tile with corners {list(key)}")
            row.append(tiles[key])
        out.append(row)
    return out
