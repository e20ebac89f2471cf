"""Godot 4 TileSet resources (.tileset.tres, format=3), beside the SpriteFrames of fmt_godot.

One TileSetAtlasSource per page (sources/0, sources/1, ...) with the page as its texture
(ExtResource, the bare PNG name, resolved against the .tres folder as in fmt_godot), margins and
separation (the packer's padding), texture_region_size, and one tile per stored frame,
"col:row/0 = 0" at its atlas coordinates. Two custom data layers (String) carry each tile's
frame name and meta (JSON).

Frames from `sm tileset` (meta["wang"] = [tl, tr, br, bl], 0 = terrain A, 1 = B) add terrain
set 0 in mode 1 (Match Corners) with two terrains, and on each tile terrain_set = 0, its
terrain (the corners' majority, A on a tie: what Godot paints it for) and the four
terrains_peering_bit/*_corner values. Written from Godot 4's documented .tres syntax and TileSet
properties; Godot 4 itself did not run here (the tests parse it with an independent reader).
"""

from __future__ import annotations

import json

from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget
from scarlet_moon.exporters.fmt_godot import q
from scarlet_moon.exporters.model import Frame, Page
from scarlet_moon.exporters.tilegrid import (
    TileGrid,
    terrain_colours,
    terrain_names,
    tile_grid,
    wang_corners,
    wang_frames,
)

PEERING = ("top_left_corner", "top_right_corner", "bottom_right_corner", "bottom_left_corner")  # = wang order
MATCH_CORNERS = 1  # TileSet.TERRAIN_MODE_MATCH_CORNERS
TYPE_STRING = 4  # Variant.Type TYPE_STRING, for the custom data layers


def _tile_lines(frame: Frame, cell: tuple[int, int]) -> list[str]:
    key = f"{cell[0]}:{cell[1]}/0"
    lines = [
        f"{key} = 0",
        f"{key}/custom_data_0 = {q(frame.name)}",
        f"{key}/custom_data_1 = {q(json.dumps(frame.meta, sort_keys=True, default=str))}",
    ]
    corners = wang_corners(frame)
    if corners is not None:
        centre = 1 if sum(corners) > 2 else 0
        lines += [f"{key}/terrain_set = 0", f"{key}/terrain = {centre}"]
        lines += [f"{key}/terrains_peering_bit/{bit} = {c}" for bit, c in zip(PEERING, corners)]
    return lines


def _source(n: int, page: Page, grid: TileGrid) -> list[str]:
    out = [
        f'[sub_resource type="TileSetAtlasSource" id="TileSetAtlasSource_{n}"]',
        f'texture = ExtResource("{n}_sheet")',
        f"margins = Vector2i({grid.margin}, {grid.margin})",
        f"separation = Vector2i({grid.spacing}, {grid.spacing})",
        f"texture_region_size = Vector2i({grid.tile_w}, {grid.tile_h})",
    ]
    seen: set[tuple[int, int]] = set()
    for f in page.frames:
        cell = grid.cells[f.name]
        if cell not in seen:  # an alias shares its original's tile
            seen.add(cell)
            out += _tile_lines(f, cell)
    return out + [""]


def _terrains(target: AtlasTarget) -> list[str]:
    frames = target.frames
    if not wang_frames(frames):
        return []
    page = next(p for p in target.pages if wang_frames(p.frames))
    names, colours = terrain_names(frames), terrain_colours(page, page.frames)
    out = [f"terrain_set_0/mode = {MATCH_CORNERS}"]
    for c in (0, 1):
        r, g, b = (v / 255 for v in colours[c])
        out += [
            f"terrain_set_0/terrain_{c}/name = {q(names[c])}",
            f"terrain_set_0/terrain_{c}/color = Color({r:.4g}, {g:.4g}, {b:.4g}, 1)",
        ]
    return out


class Godot4TileSet(AtlasFormat):
    name = "godot4-tileset"
    description = "Godot 4 TileSet .tres (atlas source per page; a Match Corners terrain set for sm tileset)"
    suffix = ".tileset.tres"
    engine = "Godot 4"

    def render(self, target: AtlasTarget) -> str:
        grids = [tile_grid(page, self.name) for page in target.pages]
        sizes = {(g.tile_w, g.tile_h) for g in grids}
        if len(sizes) != 1:
            raise ValueError(f"format {self.name!r} needs one tile size on every page, got {sorted(sizes)}")
        n_pages = len(target.pages)
        out = [f'[gd_resource type="TileSet" load_steps={2 * n_pages + 1} format=3]', ""]
        for n, image in enumerate(target.images, start=1):
            out.append(f'[ext_resource type="Texture2D" path={q(image)} id="{n}_sheet"]')
        out.append("")
        for n, (page, grid) in enumerate(zip(target.pages, grids), start=1):
            out += _source(n, page, grid)
        tile_w, tile_h = sizes.pop()
        out += ["[resource]", f"tile_size = Vector2i({tile_w}, {tile_h})"]
        out += _terrains(target)
        for i, name in enumerate(("name", "meta")):
            out += [f"custom_data_layer_{i}/name = {q(name)}", f"custom_data_layer_{i}/type = {TYPE_STRING}"]
        out += [f'sources/{n - 1} = SubResource("TileSetAtlasSource_{n}")' for n in range(1, n_pages + 1)]
        return "\n".join(out) + "\n"
