"""`sm tileset`: a corner Wang set whose shared edges are identical by construction, and its files
(Tiled .tsx/.tmx, Godot 4 TileSet .tres) read back by independent readers and by Tiled's renderer.

The tileset is generated once for the module (default seed 0), on the bundled model exported to
ONNX (the fastest backend on a CPU). Seam score (tmxrasterizer test): the mean Euclidean RGBA
distance between two 4-neighbour pixels over the pairs that straddle a tile border ("across"),
against the same over the pairs one pixel to either side of those, inside the tiles ("beside"). The
comparison is local, like with like: the same rows and columns, the same terrains, so a map whose
terrains differ in texture is not judged by which texture its borders happen to cross. A seamless map
has no more colour jump at its tile borders than beside them; non-matching neighbours have much more.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import HANG
from PIL import Image
from test_engines import require

from scarlet_moon.cli.main import sm

ALL = [tuple(c) for c in product((0, 1), repeat=4)]  # (tl, tr, br, bl)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from scarlet_moon.onnx.export import export_onnx

    return export_onnx(None, tmp_path_factory.mktemp("tileset-onnx") / "bundled.onnx", step_graph=False).path


@pytest.fixture(scope="module")
def made(tmp_path_factory, onnx_model) -> Path:
    """cave.png + .tsx + .tmx + .tileset.tres + .json from `sm tileset` (default seed 0)."""
    out = tmp_path_factory.mktemp("tileset") / "cave.png"
    res = CliRunner().invoke(
        sm,
        [
            "-q",
            "tileset",
            "--label",
            "terrain",
            "--kind",
            "corner2",
            "--model",
            str(onnx_model),
            "--out",
            str(out),
            "--format",
            "tiled,godot4-tileset,json-hash",
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def tiles_of(out: Path) -> dict[tuple[int, ...], tuple[dict, np.ndarray]]:
    """corners -> (json-hash frame entry, H x W x 4 pixels), read back from the written files."""
    atlas = json.loads(out.with_suffix(".json").read_text())
    sheet = np.asarray(Image.open(out).convert("RGBA"))
    tiles = {}
    for name, entry in atlas["frames"].items():
        entry = dict(entry, name=name)
        r = entry["frame"]
        corners = tuple(entry["data"]["meta"]["wang"])
        assert corners not in tiles
        tiles[corners] = (entry, sheet[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]])
    return tiles


def test_sixteen_tiles_every_corner_combination_once(made):
    tiles = tiles_of(made)
    assert sorted(tiles) == sorted(ALL)
    for corners, (entry, px) in tiles.items():
        meta = entry["data"]["meta"]
        assert px.shape == (16, 16, 4)
        assert meta["role"] == ("base" if len(set(corners)) == 1 else "transition")
        assert meta["tileset_seed"] == 0 and meta["kind"] == "corner2" and meta["terrains"] == ["terrain"] * 2
        assert {"sampler", "steps", "guidance", "seed", "strength", "part_seeds", "model_fingerprint"} <= set(meta)
    seeds = [e["data"]["meta"]["seed"] for c, (e, _) in tiles.items()]
    assert len(set(seeds)) == 16  # every tile's pixels have their own seed
    assert not np.array_equal(tiles[(0,) * 4][1], tiles[(1,) * 4][1])


def test_shared_edges_are_identical_by_construction(made):
    """Each border strip is a function of its edge's two corners: any two tiles that may sit side by side
    meet in the same pixels as every other such pair, and a base tile meets itself (it tiles)."""
    tiles = {c: px for c, (_, px) in tiles_of(made).items()}
    w = 2  # the default border
    edges = {
        "right": (lambda c: (c[1], c[2]), lambda p: p[:, -w:]),
        "left": (lambda c: (c[0], c[3]), lambda p: p[:, :w]),
        "top": (lambda c: (c[0], c[1]), lambda p: p[:w]),
        "bottom": (lambda c: (c[3], c[2]), lambda p: p[-w:]),
    }
    for side, (key, cut) in edges.items():
        for a, b in product(ALL, ALL):
            if key(a) == key(b):
                assert np.array_equal(cut(tiles[a]), cut(tiles[b])), (side, a, b)
    pairs = 0
    for a, b in product(ALL, ALL):  # b right of a: the meeting strip equals the base's own wrap when uniform
        if (a[1], a[2]) == (b[0], b[3]):
            pairs += 1
            strip = np.concatenate([tiles[a][:, -w:], tiles[b][:, :w]], axis=1)
            if a[1] == a[2]:
                base = tiles[(a[1],) * 4]
                assert np.array_equal(strip, np.concatenate([base[:, -w:], base[:, :w]], axis=1))
    assert pairs == 64
    for c in (0, 1):  # the 2w x 2w block where four tiles meet at a corner of terrain c is the base's own
        base = np.roll(tiles[(c,) * 4], (w, w), axis=(0, 1))[: 2 * w, : 2 * w]
        for t in ALL:
            if t[0] == c:
                assert np.array_equal(tiles[t][:w, :w], base[w:, w:])


def test_tiled_tsx_and_tmx_parse_with_consistent_wang_ids(made):
    tiles = tiles_of(made)
    tsx = ET.parse(made.with_suffix(".tsx")).getroot()
    assert (tsx.get("tilewidth"), tsx.get("tileheight"), tsx.get("tilecount"), tsx.get("columns")) == (
        "16",
        "16",
        "16",
        "4",
    )
    assert tsx.find("image").get("source") == "cave.png"
    margin, spacing = int(tsx.get("margin")), int(tsx.get("spacing"))
    wangset = tsx.find("wangsets/wangset")
    assert wangset.get("type") == "corner" and len(wangset.findall("wangcolor")) == 2
    props = {int(t.get("id")): {p.get("name"): p.get("value") for p in t.iter("property")} for t in tsx.findall("tile")}
    corners_of = {}
    for wt in wangset.findall("wangtile"):
        tid = int(wt.get("tileid"))
        v = [int(x) for x in wt.get("wangid").split(",")]  # top, tr, right, br, bottom, bl, left, tl
        assert v[0::2] == [0, 0, 0, 0]
        corners = (v[7] - 1, v[1] - 1, v[3] - 1, v[5] - 1)
        entry = tiles[corners][0]
        assert props[tid]["name"] == entry["name"] == "terrain_" + "".join(map(str, corners))
        assert json.loads(props[tid]["meta"])["wang"] == list(corners)
        assert props[tid]["seed"] == str(entry["data"]["meta"]["seed"])
        col, row = tid % 4, tid // 4  # the tile id addresses the rect the json atlas gives for that tile
        assert (entry["frame"]["x"], entry["frame"]["y"]) == (
            margin + col * (16 + spacing),
            margin + row * (16 + spacing),
        )
        corners_of[tid + 1] = corners
    assert sorted(corners_of.values()) == sorted(ALL)
    tmx = ET.parse(made.with_suffix(".tmx")).getroot()
    assert tmx.get("orientation") == "orthogonal" and tmx.find("tileset").get("firstgid") == "1"
    assert tmx.find("tileset").get("source") == "cave.tsx"
    data = tmx.find("layer/data")
    assert data.get("encoding") == "csv"
    gids = [[int(g) for g in line.split(",") if g] for line in data.text.strip().splitlines()]
    assert len(gids) == 8 and all(len(r) == 8 for r in gids)
    assert_corner_consistent([[corners_of[g] for g in row] for row in gids])


def assert_corner_consistent(grid: list[list[tuple[int, ...]]]) -> None:
    for r, row in enumerate(grid):
        for c, t in enumerate(row):
            if c + 1 < len(row):
                assert (t[1], t[2]) == (row[c + 1][0], row[c + 1][3])
            if r + 1 < len(grid):
                assert (t[3], t[2]) == (grid[r + 1][c][0], grid[r + 1][c][1])


def test_godot4_tileset_read_by_godot_parser(made):
    gp = pytest.importorskip("godot_parser")
    tiles = tiles_of(made)
    res = gp.load(str(made.with_name("cave.tileset.tres")))
    header = res.get_sections()[0].header
    assert (header.name, header["type"], header["format"]) == ("gd_resource", "TileSet", 3)
    ext = res.get_sections()[1]
    assert ext.header["type"] == "Texture2D" and ext.header["path"] == "cave.png"
    src = res.find_sub_resource(type="TileSetAtlasSource").properties
    assert src["texture"].id == ext.header["id"]
    assert src["texture_region_size"].args == [16, 16]
    (mx, my), (sx, sy) = src["margins"].args, src["separation"].args
    bits = ("top_left_corner", "top_right_corner", "bottom_right_corner", "bottom_left_corner")
    for corners, (entry, _) in tiles.items():
        r = entry["frame"]
        key = f"{(r['x'] - mx) // (16 + sx)}:{(r['y'] - my) // (16 + sy)}/0"
        assert ((r["x"] - mx) % (16 + sx), (r["y"] - my) % (16 + sy)) == (0, 0)
        assert src[key] == 0 and src[f"{key}/terrain_set"] == 0
        assert [src[f"{key}/terrains_peering_bit/{b}"] for b in bits] == list(corners)
        assert json.loads(src[f"{key}/custom_data_1"])["wang"] == list(corners)
    top = res.find_section("resource").properties
    assert top["terrain_set_0/mode"] == 1  # Match Corners
    assert {top["terrain_set_0/terrain_0/name"], top["terrain_set_0/terrain_1/name"]} == {"terrain 1", "terrain 2"}
    assert top["sources/0"].id == "TileSetAtlasSource_1"


# ---------------------------------------------------------------------------------------------------------
# Tiled's own renderer
def seam_scores(image: np.ndarray, tile: int) -> tuple[float, float]:
    """(across, beside): mean RGBA distance of the 4-neighbour pixel pairs that straddle a tile border,
    and of the pairs one pixel to either side of those (inside the tiles, same rows and columns)."""
    px = image.astype(np.float64)
    dx = np.linalg.norm(px[:, 1:] - px[:, :-1], axis=-1)  # pair (x, x + 1)
    dy = np.linalg.norm(px[1:] - px[:-1], axis=-1)
    bx, by = np.arange(tile - 1, dx.shape[1], tile), np.arange(tile - 1, dy.shape[0], tile)
    across = np.concatenate([dx[:, bx].ravel(), dy[by].ravel()])
    beside = np.concatenate([dx[:, bx - 1].ravel(), dx[:, bx + 1].ravel(), dy[by - 1].ravel(), dy[by + 1].ravel()])
    return float(across.mean()), float(beside.mean())


@pytest.fixture(scope="module")
def tmxrasterizer() -> str:
    """Tiled's renderer; skipped when missing (failed under CI), before the tileset is generated."""
    exe = shutil.which("tmxrasterizer")
    require(exe, "tmxrasterizer (Debian package tiled) not found")
    return str(exe)


def render(exe: str, tmx: Path, tmp_path: Path) -> np.ndarray:
    png = tmp_path / (tmx.stem + ".render.png")
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}
    res = subprocess.run(
        [exe, "--no-smoothing", str(tmx), str(png)], capture_output=True, text=True, env=env, timeout=HANG
    )
    assert res.returncode == 0 and png.is_file(), res.stderr
    return np.asarray(Image.open(png).convert("RGBA"))


def write_map(made: Path, name: str, gids: list[list[int]]) -> Path:
    tmx = ET.parse(made.with_suffix(".tmx"))
    tmx.find("layer/data").text = "\n" + ",\n".join(",".join(map(str, row)) for row in gids) + "\n"
    path = made.with_name(name)
    tmx.write(path, encoding="UTF-8", xml_declaration=True)
    return path


def mismatched_gids(corners_of: dict[int, tuple[int, ...]], side: int, seed: int = 1) -> list[list[int]]:
    """A side x side map where every two neighbours disagree on a shared corner."""
    rng = np.random.default_rng(seed)
    grid: list[list[int]] = []
    for r in range(side):
        row: list[int] = []
        for c in range(side):
            ok = [
                g
                for g, t in corners_of.items()
                if (c == 0 or (t[0], t[3]) != (corners_of[row[-1]][1], corners_of[row[-1]][2]))
                and (r == 0 or (t[0], t[1]) != (corners_of[grid[-1][c]][3], corners_of[grid[-1][c]][2]))
            ]
            row.append(int(rng.choice(ok)))
        grid.append(row)
    return grid


@pytest.mark.engines
def test_tmxrasterizer_renders_seamless_map_with_exact_tiles(tmxrasterizer, made, tmp_path):
    tiles = {c: px for c, (_, px) in tiles_of(made).items()}
    tsx = ET.parse(made.with_suffix(".tsx")).getroot()
    corners_of = {}
    for wt in tsx.iter("wangtile"):
        v = [int(x) for x in wt.get("wangid").split(",")]
        corners_of[int(wt.get("tileid")) + 1] = (v[7] - 1, v[1] - 1, v[3] - 1, v[5] - 1)
    data = ET.parse(made.with_suffix(".tmx")).getroot().find("layer/data").text
    good = [[int(g) for g in line.split(",") if g] for line in data.strip().splitlines()]
    bad = mismatched_gids(corners_of, 8)
    scores = {}
    for name, gids in (("good.tmx", good), ("bad.tmx", bad)):
        image = render(tmxrasterizer, write_map(made, name, gids), tmp_path)
        assert image.shape == (8 * 16, 8 * 16, 4)
        for r, c in product(range(8), range(8)):  # every rendered tile is the tileset's, pixel for pixel
            expected = tiles[corners_of[gids[r][c]]]
            assert np.array_equal(image[r * 16 : (r + 1) * 16, c * 16 : (c + 1) * 16], expected), (name, r, c)
        scores[name] = seam_scores(image, 16)
    (good_across, good_beside), (bad_across, bad_beside) = scores["good.tmx"], scores["bad.tmx"]
    assert good_across <= good_beside, scores
    assert bad_across > 1.5 * good_across and bad_across > 1.5 * bad_beside, scores


# ---------------------------------------------------------------------------------------------------------
# the construction on its own, and the checks before any sampling
def test_ring_corners_agree_whatever_the_strips_generate():
    """Strips made from their canvases with ANY generated middle: the overlapping corner blocks of every
    tile's ring come out the same from its vertical and its horizontal strip."""
    from scarlet_moon.generation.tileset import CORNERS, strip_canvas, tile_ring, wrap_strip

    rng = np.random.default_rng(0)
    for w, size in ((1, 8), (2, 16), (3, 13)):
        bases = [rng.integers(0, 256, (size, size, 4), dtype=np.uint8) for _ in range(2)]
        v, h = {}, {}
        for axis, out in ((1, v), (0, h)):
            for a, b in product((0, 1), (0, 1)):
                if a == b:
                    out[(a, b)] = wrap_strip(bases[a], w, axis)
                    continue
                init, mask = strip_canvas(bases[a], bases[b], w, axis)
                made = np.where(mask[..., None], rng.integers(0, 256, init.shape, dtype=np.uint8), init)
                out[(a, b)] = np.take(made, range(size // 2 - w, size // 2 + w), axis=axis)
        for corners in CORNERS:
            tl, tr, br, bl = corners
            ring, mask = tile_ring(corners, v, h, w)
            assert mask.sum() == (size - 2 * w) ** 2
            assert np.array_equal(ring[:w, :w], v[(tl, bl)][:w, w:]) and np.array_equal(
                ring[:w, :w], h[(tl, tr)][w:, :w]
            )
            assert np.array_equal(ring[:w, -w:], v[(tr, br)][:w, :w]) and np.array_equal(
                ring[:w, -w:], h[(tl, tr)][w:, -w:]
            )
            assert np.array_equal(ring[-w:, -w:], v[(tr, br)][-w:, :w]) and np.array_equal(
                ring[-w:, -w:], h[(bl, br)][:w, -w:]
            )
            assert np.array_equal(ring[-w:, :w], v[(tl, bl)][-w:, w:]) and np.array_equal(
                ring[-w:, :w], h[(bl, br)][:w, :w]
            )
            if len(set(corners)) == 1:  # a base's ring from the strips is the base's own
                keep = ~mask
                assert np.array_equal(ring[keep], bases[tl][keep])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--label", "dragonz"], "unknown label 'dragonz'"),
        (["--second-label", "nope"], "unknown label 'nope'"),
        (["--kind", "blob47"], "--kind 'blob47': expected one of corner2"),
        (["--border", "5"], "--border 5: must be 1..4"),
        (["--strength", "0"], "--strength 0.0: must be in (0, 1]"),
        (["--format", "nope"], "unknown atlas format 'nope'"),
        (["--init", "A"], "--init given 1 time(s)"),
        (["--init", "SMALL", "--init", "A"], "is 8x8; this model makes 16x16 sprites"),
        (["--out", "x.jpg"], "must be a .png file name"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    Image.new("RGBA", (16, 16), (10, 200, 10, 255)).save(tmp_path / "a.png")
    Image.new("RGBA", (8, 8)).save(tmp_path / "small.png")
    names = {"A": str(tmp_path / "a.png"), "SMALL": str(tmp_path / "small.png")}
    args = [names.get(a, a) for a in args]
    out = ["--out", str(tmp_path / "t.png")] if "--out" not in args else []
    before = set(tmp_path.iterdir())
    res = CliRunner().invoke(sm, ["tileset", *out, *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert set(tmp_path.iterdir()) == before


def test_existing_sheet_needs_force(tmp_path):
    (tmp_path / "t.png").write_bytes(b"x")
    res = CliRunner().invoke(sm, ["tileset", "--out", str(tmp_path / "t.png")])
    assert res.exit_code == 2 and "pass --force" in res.output
    assert (tmp_path / "t.png").read_bytes() == b"x"


def test_init_bases_are_the_uniform_tiles(tmp_path, onnx_model, made):
    """--init a.png --init b.png: the all-A and all-B tiles are those images, pixel for pixel, and the
    other tiles keep the construction (their left edges are the bases' own where uniform)."""
    tiles = {c: px for c, (_, px) in tiles_of(made).items()}
    a, b = (Image.fromarray(np.ascontiguousarray(tiles[(c,) * 4][:, ::-1])) for c in (1, 0))  # mirrored: new tiles
    a.save(tmp_path / "a.png")
    b.save(tmp_path / "b.png")
    out = tmp_path / "given.png"
    res = CliRunner().invoke(
        sm,
        [
            "-q",
            "tileset",
            "--model",
            str(onnx_model),
            "--init",
            str(tmp_path / "a.png"),
            "--init",
            str(tmp_path / "b.png"),
            "--out",
            str(out),
            "--format",
            "json-hash",
            "--steps",
            "8",
        ],
    )
    assert res.exit_code == 0, res.output
    got = tiles_of(out)
    assert np.array_equal(got[(0,) * 4][1], np.asarray(a)) and np.array_equal(got[(1,) * 4][1], np.asarray(b))
    assert got[(0,) * 4][0]["data"]["meta"]["seed"] is None
    assert got[(0,) * 4][0]["data"]["meta"]["terrains"] == ["a", "b"]  # named after the files
    for corners, (_, px) in got.items():
        if (corners[0], corners[3]) == (1, 1):
            assert np.array_equal(px[:, :2], np.asarray(b)[:, :2])
