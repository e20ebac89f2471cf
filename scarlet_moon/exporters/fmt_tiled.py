"""Tiled tilesets (.tsx, Tiled 1.5+ format) with an example map (.tmx) as a companion file.

The sheet is an image-based tileset: tilewidth/tileheight, margin and spacing (the packer's
padding), columns and tilecount as Tiled itself counts them from the image size; tile ids run
row-major over that grid. Every tile a frame uses gets properties: "name", "label", "seed"
(a string: Tiled's int properties are 32-bit) and "meta" (the frame's meta as JSON).

Frames from `sm tileset` (meta["wang"] = [tl, tr, br, bl], 0 = terrain A, 1 = B) add a <wangsets>
block: one "corner" Wang set with two colours (1 = A, 2 = B) and each tile's wangid, 8 values in
Tiled's order top, top-right, right, bottom-right, bottom, bottom-left, left, top-left, the
edge slots 0. The companion .tmx (orthogonal, CSV layer, firstgid 1) is an 8x8 map of tiles that
agree on their shared corners (a random corner grid, fixed seed) for such a set; for any other
sheet it shows each frame once. Like every companion it is written only where no file of that name
exists yet, so a map edited in Tiled is never replaced. Several pages: one .tsx + .tmx per page.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import PurePosixPath

from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget
from scarlet_moon.exporters.model import Frame, Page
from scarlet_moon.exporters.tilegrid import TileGrid, corner_map, terrain_colours, terrain_names, tile_grid, wang_frames

TSX_VERSION = "1.8"  # the map format version Tiled 1.8 writes (wangsets as introduced in 1.5)
MAP_SIDE = 8  # the example map of a Wang set is MAP_SIDE x MAP_SIDE tiles
MAP_SEED = 0  # its corner grid's random seed


def wangid(corners: tuple[int, int, int, int]) -> str:
    """Tiled's wangid of a corner tile: top, top-right, right, bottom-right, bottom, bottom-left, left,
    top-left; corner colours 1 (A) / 2 (B), edge slots 0."""
    tl, tr, br, bl = (c + 1 for c in corners)
    return f"0,{tr},0,{br},0,{bl},0,{tl}"


def _xml(root: ET.Element) -> str:
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _tile(root: ET.Element, tid: int, frame: Frame) -> None:
    """<tile id=...> with the frame's properties."""
    props = ET.SubElement(ET.SubElement(root, "tile", id=str(tid)), "properties")
    seed = frame.meta.get("seed")
    values = [
        ("name", frame.name),
        ("label", frame.label or ""),
        ("seed", "" if seed is None else str(seed)),
        ("meta", json.dumps(frame.meta, sort_keys=True, default=str)),
    ]
    for name, value in values:
        ET.SubElement(props, "property", name=name, value=value)


def _first_frames(grid: TileGrid, frames: list[Frame]) -> dict[int, Frame]:
    """Tile id -> the first frame stored there (aliases share their original's tile)."""
    out: dict[int, Frame] = {}
    for f in frames:
        out.setdefault(grid.tile_id(f.name), f)
    return out


def _wangset(root: ET.Element, page: Page, grid: TileGrid) -> None:
    found = wang_frames(page.frames)
    if not found:
        return
    names, colours = terrain_names(page.frames), terrain_colours(page, page.frames)
    base = {corners[0]: grid.tile_id(f.name) for f, corners in found if len(set(corners)) == 1}
    wangset = ET.SubElement(
        ET.SubElement(root, "wangsets"), "wangset", name=" / ".join(names), type="corner", tile=str(base.get(0, -1))
    )
    for c in (0, 1):
        ET.SubElement(
            wangset,
            "wangcolor",
            name=names[c],
            color="#%02x%02x%02x" % colours[c],
            tile=str(base.get(c, -1)),
            probability="1",
        )
    seen = set()
    for f, corners in found:
        tid = grid.tile_id(f.name)
        if tid not in seen:
            seen.add(tid)
            ET.SubElement(wangset, "wangtile", tileid=str(tid), wangid=wangid(corners))


def render_tsx(page: Page, image: str, name: str, fmt: str = "tiled") -> str:
    """The .tsx of one page whose PNG is `image` (relative to the .tsx)."""
    grid = tile_grid(page, fmt)
    root = ET.Element(
        "tileset",
        version=TSX_VERSION,
        name=name,
        tilewidth=str(grid.tile_w),
        tileheight=str(grid.tile_h),
        spacing=str(grid.spacing),
        margin=str(grid.margin),
        tilecount=str(grid.columns * grid.rows),
        columns=str(grid.columns),
    )
    ET.SubElement(root, "image", source=image, width=str(page.size[0]), height=str(page.size[1]))
    for tid, frame in sorted(_first_frames(grid, page.frames).items()):
        _tile(root, tid, frame)
    _wangset(root, page, grid)
    return _xml(root)


def map_gids(page: Page, grid: TileGrid) -> list[list[int]]:
    """The example map as rows of gids (firstgid 1; 0 = empty)."""
    found = wang_frames(page.frames)
    by_corners = {corners: grid.tile_id(f.name) + 1 for f, corners in found}
    if len(by_corners) == 16:
        return corner_map(by_corners, MAP_SIDE, MAP_SIDE, MAP_SEED)
    gids = list(dict.fromkeys(grid.tile_id(f.name) + 1 for f in page.frames))
    cols = max(1, math.ceil(math.sqrt(len(gids))))
    gids += [0] * (-len(gids) % cols)
    return [gids[i : i + cols] for i in range(0, len(gids), cols)]


def render_tmx(gids: list[list[int]], grid: TileGrid, tileset: str) -> str:
    """An orthogonal map of `gids` using the tileset file `tileset` (firstgid 1), one CSV layer."""
    rows, cols = len(gids), len(gids[0])
    root = ET.Element(
        "map",
        version=TSX_VERSION,
        orientation="orthogonal",
        renderorder="right-down",
        width=str(cols),
        height=str(rows),
        tilewidth=str(grid.tile_w),
        tileheight=str(grid.tile_h),
        infinite="0",
        nextlayerid="2",
        nextobjectid="1",
    )
    ET.SubElement(root, "tileset", firstgid="1", source=tileset)
    layer = ET.SubElement(root, "layer", id="1", name="tiles", width=str(cols), height=str(rows))
    data = ET.SubElement(layer, "data", encoding="csv")
    data_text = ",\n".join(",".join(str(g) for g in row) for row in gids)
    ET.indent(root, space=" ")
    data.text = "\n" + data_text + "\n"
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


class TiledTileset(AtlasFormat):
    name = "tiled"
    description = "Tiled .tsx tileset (Wang corner set for sm tileset) + an example .tmx map"
    suffix = ".tsx"
    per_page = True
    engine = "Tiled"

    def render(self, target: AtlasTarget) -> str:
        page, image = target.pages[0], target.images[0]
        return render_tsx(page, image, PurePosixPath(target.atlas_name).stem, self.name)

    def companions(self, target: AtlasTarget) -> dict[str, str | bytes]:
        page = target.pages[0]
        grid = tile_grid(page, self.name)
        stem = PurePosixPath(target.atlas_name).stem
        return {f"{stem}.tmx": render_tmx(map_gids(page, grid), grid, target.atlas_name)}
