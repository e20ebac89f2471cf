"""The tile-editor formats on their own: Tiled .tsx/.tmx (fmt_tiled) and Godot 4 TileSet (fmt_godot_tileset),
for plain sheets and Wang sets, checked with xml.etree and godot-parser; and the grid they need (tilegrid)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from itertools import product

import numpy as np
import pytest
from PIL import Image

from scarlet_moon.exporters import Sprite, available_formats, pack, write_atlases
from scarlet_moon.exporters.fmt_tiled import wangid
from scarlet_moon.exporters.tilegrid import corner_map, tile_grid


def sprites(n: int = 5, size: int = 16, wang: bool = False) -> list[Sprite]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        px = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
        px[..., 3] = 255
        meta = {"seed": 1000 + i}
        if wang:
            meta.update(wang=[(i >> 3) & 1, (i >> 2) & 1, (i >> 1) & 1, i & 1], terrains=["grass", "rock"])
        out.append(Sprite(f"t_{i:02d}", Image.fromarray(px, "RGBA"), label="ground", meta=meta))
    return out


def test_formats_registered():
    formats = available_formats()
    assert formats["tiled"].suffix == ".tsx" and formats["tiled"].engine == "Tiled"
    assert formats["godot4-tileset"].suffix == ".tileset.tres" and formats["godot4"].suffix != ".tileset.tres"


@pytest.mark.parametrize("padding", [0, 1, 3])
def test_plain_sheet_tsx_and_map_show_each_frame_once(tmp_path, padding):
    result = pack(sprites(5), padding=padding, pot=True)  # pot: the image is larger than the grid
    write_atlases(result, tmp_path / "s.png", ["tiled"])
    page = result.pages[0]
    tsx = ET.parse(tmp_path / "s.tsx").getroot()
    assert tsx.find("wangsets") is None
    assert (int(tsx.get("margin")), int(tsx.get("spacing"))) == (padding, padding)
    cols = int(tsx.get("columns"))
    assert cols == (page.size[0] - 2 * padding + padding) // (16 + padding)  # as Tiled counts them
    sheet = np.asarray(page.image)
    ids = {}
    for tile in tsx.findall("tile"):
        tid = int(tile.get("id"))
        props = {p.get("name"): p.get("value") for p in tile.iter("property")}
        x, y = padding + (tid % cols) * (16 + padding), padding + (tid // cols) * (16 + padding)
        src = next(s for s in sprites(5) if s.name == props["name"])
        assert np.array_equal(sheet[y : y + 16, x : x + 16], np.asarray(src.image))
        assert props["label"] == "ground" and props["seed"] == str(src.meta["seed"])
        ids[props["name"]] = tid
    assert len(ids) == 5
    tmx = ET.parse(tmp_path / "s.tmx").getroot()
    gids = [int(g) for g in tmx.find("layer/data").text.replace("\n", "").split(",")]
    assert sorted(g for g in gids if g) == sorted(t + 1 for t in ids.values())


def test_wang_tsx_wangids_match_meta(tmp_path):
    result = pack(sprites(16, wang=True), padding=1)
    write_atlases(result, tmp_path / "w.png", ["tiled"])
    tsx = ET.parse(tmp_path / "w.tsx").getroot()
    ws = tsx.find("wangsets/wangset")
    assert ws.get("type") == "corner"
    assert [c.get("name") for c in ws.findall("wangcolor")] == ["grass", "rock"]
    meta = {
        int(t.get("id")): json.loads(next(p.get("value") for p in t.iter("property") if p.get("name") == "meta"))
        for t in tsx.findall("tile")
    }
    for wt in ws.findall("wangtile"):
        tl, tr, br, bl = meta[int(wt.get("tileid"))]["wang"]
        assert wt.get("wangid") == f"0,{tr + 1},0,{br + 1},0,{bl + 1},0,{tl + 1}"
    assert wangid((1, 0, 0, 1)) == "0,1,0,1,0,2,0,2"


def test_godot4_tileset_plain_sheet_two_pages(tmp_path):
    gp = pytest.importorskip("godot_parser")
    result = pack(sprites(6), padding=2, max_size=40)  # 2 x 2 tiles per page: two pages
    assert len(result.pages) == 2
    write_atlases(result, tmp_path / "p.png", ["godot4-tileset"])
    res = gp.load(str(tmp_path / "p.tileset.tres"))
    paths = [s.header["path"] for s in res.get_ext_resources()]
    assert paths == ["p-0.png", "p-1.png"]
    top = res.find_section("resource").properties
    assert "terrain_set_0/mode" not in top and top["tile_size"].args == [16, 16]
    for n, page in enumerate(result.pages):
        src = res.find_sub_resource(id=top[f"sources/{n}"].id).properties
        assert src["margins"].args == [2, 2] and src["separation"].args == [2, 2]
        for f in page.frames:
            key = f"{(f.x - 2) // 18}:{(f.y - 2) // 18}/0"
            assert src[key] == 0 and src[f"{key}/custom_data_0"] == f.name
            assert "terrain_set" not in "".join(k for k in src.keys() if k.startswith(key))


@pytest.mark.parametrize("fmt", ["tiled", "godot4-tileset"])
def test_non_grid_sheets_are_refused(tmp_path, fmt):
    mixed = sprites(3) + [Sprite("big", Image.new("RGBA", (24, 24), (9, 9, 9, 255)))]
    with pytest.raises(ValueError, match="same-size frames on a grid"):
        write_atlases(pack(mixed), tmp_path / "m.png", [fmt])
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_tile_grid_counts_like_an_editor():
    page = pack(sprites(5), padding=1).pages[0]
    grid = tile_grid(page, "tiled")
    assert (grid.tile_w, grid.margin, grid.spacing) == (16, 1, 1)
    assert sorted(grid.tile_id(f.name) for f in page.frames) == [0, 1, 2, 3, 4]


def test_corner_map_neighbours_agree():
    tiles = {c: c for c in product((0, 1), repeat=4)}
    grid = corner_map(tiles, 6, 5, seed=3)
    assert len(grid) == 5 and all(len(r) == 6 for r in grid)
    for r, c in product(range(5), range(6)):
        t = grid[r][c]
        if c < 5:
            assert (t[1], t[2]) == (grid[r][c + 1][0], grid[r][c + 1][3])
        if r < 4:
            assert (t[3], t[2]) == (grid[r + 1][c][0], grid[r + 1][c][1])
    assert corner_map(tiles, 6, 5, seed=3) == grid
    with pytest.raises(ValueError, match="no tile with corners"):
        corner_map({(0, 0, 0, 0): 1}, 8, 8, seed=0)


def test_several_pages_give_one_tsx_and_map_per_page(tmp_path):
    result = pack(sprites(6), padding=1, max_size=40)
    written = {p.name for p in write_atlases(result, tmp_path / "p.png", ["tiled"])}
    assert written == {"p-0.png", "p-1.png", "p-0.tsx", "p-1.tsx", "p-0.tmx", "p-1.tmx"}
    for i in (0, 1):
        assert ET.parse(tmp_path / f"p-{i}.tsx").getroot().find("image").get("source") == f"p-{i}.png"
        assert ET.parse(tmp_path / f"p-{i}.tmx").getroot().find("tileset").get("source") == f"p-{i}.tsx"


def test_sm_sheet_writes_tile_formats_and_refuses_trimmed_frames(tmp_path):
    from click.testing import CliRunner

    from scarlet_moon.cli.main import sm

    folder = tmp_path / "in"
    folder.mkdir()
    for s in sprites(4):
        s.image.save(folder / f"{s.name}.png")
    Image.new("RGBA", (16, 16)).save(folder / "t_empty.png")  # trims to 1x1
    res = CliRunner().invoke(
        sm, ["sheet", "--from", str(folder), "--out", str(tmp_path / "a.png"), "--format", "tiled,godot4-tileset"]
    )
    assert res.exit_code == 0, res.output
    assert {"a.tsx", "a.tmx", "a.tileset.tres"} <= {p.name for p in tmp_path.iterdir()}
    res = CliRunner().invoke(
        sm, ["sheet", "--from", str(folder), "--out", str(tmp_path / "b.png"), "--trim", "--format", "tiled"]
    )
    assert res.exit_code == 2 and "needs same-size frames on a grid" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "b.tsx").exists()
