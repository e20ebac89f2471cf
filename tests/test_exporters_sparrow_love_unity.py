"""The sparrow, love and unity atlas formats, read back by independent readers.

Sparrow XML: xml.etree. LÖVE: the Lua module loaded by a plain lua5.4 in an empty environment
(tests/lua/dump_love_atlas.lua; missing lua5.4 skips locally, fails under CI). Unity: PyYAML.
The engines themselves load these files in tests/test_engines.py (Phaser atlasXML, LÖVE 11); Unity
does not run here.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from conftest import HANG, ROOT
from PIL import Image
from test_exporters import NASTY, make_sprites, rects
from test_plugin_aseprite import lua_tool

from scarlet_moon.exporters import Sprite, pack, write_atlases
from scarlet_moon.exporters.base import AtlasTarget
from scarlet_moon.exporters.fmt_love import uniform_grid

HOSTILE = ["a\"b'c", "<x>&amp;", "]]", "]=]--", "ü 日本 🐉", "tab\there", "ctl\x01\x7f", "new\nline", "back\\slash"]


def hostile_sprites() -> list[Sprite]:
    """16x16 sprites of distinct colours (none deduplicated), labelled with HOSTILE, NASTY and "walk"."""
    labels = [*HOSTILE, NASTY, "walk", "walk"]
    return [
        Sprite(f"{label}_{i:03d}", Image.new("RGBA", (16, 16), (20 * i, 255 - 20 * i, 7, 255)), label=label)
        for i, label in enumerate(labels)
    ]


# ---- Sparrow XML ----------------------------------------------------------------------------------------


def sparrow(path: Path) -> tuple[str, dict[str, dict[str, int]]]:
    root = ET.parse(path).getroot()
    assert root.tag == "TextureAtlas" and all(e.tag == "SubTexture" for e in root)
    names = [e.attrib["name"] for e in root]
    assert len(set(names)) == len(names), names
    return root.attrib["imagePath"], {
        e.attrib["name"]: {k: int(v) for k, v in e.attrib.items() if k != "name"} for e in root
    }


def test_sparrow_xml_parses_to_the_packed_rects(tmp_path):
    result = pack(hostile_sprites(), padding=1, extrude=1)
    write_atlases(result, tmp_path / "hero.png", ["sparrow"])
    image, subs = sparrow(tmp_path / "hero.xml")
    assert image == "hero.png"
    # every name XML can hold round-trips exactly (quotes, <, &, newline, tab, unicode); only C0/DEL-free
    # names are required to: "ctl\x01\x7f" loses \x01 (XML 1.0 cannot hold it) but stays distinct
    legal = {f.name for f in result.frames if "\x01" not in f.name}
    assert legal <= set(subs) and len(subs) == len(result.frames)
    (odd,) = set(subs) - legal
    assert odd.startswith("ctl_\x7f")
    got = {n: (s["x"], s["y"], s["width"], s["height"]) for n, s in subs.items()}
    assert {n: got[n] for n in legal} == {n: r for n, r in rects(result).items() if n in legal}
    assert all(set(s) == {"x", "y", "width", "height"} for s in subs.values())  # untrimmed: no frameX...


def test_sparrow_trimmed_frames_carry_negated_offsets(tmp_path):
    result = pack(make_sprites(labels=("a", "b"), trim_pad=3), trim=True, scale=2)
    write_atlases(result, tmp_path / "t.png", ["sparrow"])
    _, subs = sparrow(tmp_path / "t.xml")
    for f in result.frames:
        s = subs[f.name]
        assert (s["x"], s["y"], s["width"], s["height"]) == (f.x, f.y, f.w, f.h)
        assert (s["frameX"], s["frameY"], s["frameWidth"], s["frameHeight"]) == (
            -f.offset_x,
            -f.offset_y,
            f.source_w,
            f.source_h,
        )
    assert subs["b_001"]["frameY"] == -8  # the 10x9 box at (3, 4), scaled x2


def test_sparrow_writes_one_file_per_page(tmp_path):
    result = pack(make_sprites(labels=("w",) * 5), padding=0, max_size=32)
    assert len(result.pages) == 2
    write_atlases(result, tmp_path / "hero.png", ["sparrow"])
    for p, page in enumerate(result.pages):
        image, subs = sparrow(tmp_path / f"hero-{p}.xml")
        assert image == f"hero-{p}.png" and set(subs) == {f.name for f in page.frames}


# ---- LÖVE Lua module ----------------------------------------------------------------------------------


def love_dump(path: Path) -> dict:
    """The module's data as read by lua5.4 (tests/lua/dump_love_atlas.lua)."""
    out = subprocess.run(
        [lua_tool("lua5.4"), str(ROOT / "tests" / "lua" / "dump_love_atlas.lua"), str(path)],
        capture_output=True,
        timeout=HANG,
    )
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    lines = [line.split(b"\t") for line in out.stdout.splitlines()]
    assert lines[-1] == [b"DONE"], out.stdout[-500:]

    def s(h: bytes) -> str | None:
        return None if h == b"-" else bytes.fromhex(h.decode()).decode("utf-8")

    d: dict = {"pages": [], "frames": [], "index": {}, "anims": {}, "grid_anims": {}, "quads": []}
    for kind, *v in lines[:-1]:
        kind = kind.decode()
        if kind == "IMAGE":
            d["image"] = s(v[0])
        elif kind == "PAGE":
            d["pages"].append((s(v[1]), int(v[2]), int(v[3])))
        elif kind == "FRAME":
            ints = [int(x) for x in v[3:12]]
            d["frames"].append(
                {
                    "name": s(v[1]),
                    "label": s(v[2]),
                    "page": ints[0],
                    "rect": tuple(ints[1:5]),
                    "source": tuple(ints[5:7]),
                    "offset": tuple(ints[7:9]),
                    "duration": float(v[12]),
                    "cell": None if v[13] == b"-" else (int(v[13]), int(v[14])),
                    "alias": s(v[15]),
                }
            )
        elif kind == "INDEX":
            d["index"][s(v[0])] = int(v[1])
        elif kind == "ANIM":
            d["anims"][s(v[0])] = [int(x) for x in v[1].split(b",")]
        elif kind == "ANIMCOUNT":
            d["anim_count"] = int(v[0])
        elif kind == "GRID":
            d["grid"] = None if v == [b"nil"] else [int(x) for x in v]
        elif kind == "GRIDANIM":
            d["grid_anims"][s(v[0])] = [int(x) for x in v[1].split(b",")]
        elif kind == "QUAD":
            d["quads"].append(tuple(int(x) for x in v[1].split(b",")))
    return d


def anim8_cell(grid: list[int], col: int, row: int) -> tuple[int, int, int, int]:
    """anim8's Grid createFrame: x = left + (col-1)*frameWidth + col*border (same for y)."""
    fw, fh, _, _, left, top, border = grid
    return left + (col - 1) * fw + col * border, top + (row - 1) * fh + row * border, fw, fh


@pytest.mark.parametrize("padding, extrude", [(1, 0), (1, 1), (0, 0), (2, 3)])
def test_love_module_loads_in_plain_lua_with_exact_strings_and_an_anim8_grid(tmp_path, monkeypatch, padding, extrude):
    monkeypatch.setattr(
        "scarlet_moon.exporters.fmt_love.CHUNK_ROWS", 5
    )  # 12 frames in 3 functions: the joins are read too
    sprites = hostile_sprites()
    result = pack(sprites, padding=padding, extrude=extrude)
    write_atlases(result, tmp_path / "hero.png", ["love"])
    d = love_dump(tmp_path / "hero.lua")
    (w, h) = result.pages[0].size
    assert d["image"] == "hero.png" and d["pages"] == [("hero.png", w, h)]
    assert [f["name"] for f in d["frames"]] == [f.name for f in result.frames]  # hostile labels exact
    assert [f["label"] for f in d["frames"]] == [f.label for f in result.frames]
    assert {f["name"]: f["rect"] for f in d["frames"]} == rects(result)
    assert all(f["duration"] == 0.1 and f["source"] == (16, 16) and f["offset"] == (0, 0) for f in d["frames"])
    assert d["index"] == {f.name: i for i, f in enumerate(result.frames, start=1)}
    names = [f["name"] for f in d["frames"]]
    assert {k: [names[i - 1] for i in v] for k, v in d["anims"].items()} == result.animations()
    assert d["anim_count"] == len(result.animations())
    assert d["quads"] == [(*r, w, h) for r in rects(result).values()]
    # the anim8 grid reproduces every frame's rect, per frame and per animation
    grid = d["grid"]
    assert grid[:4] == [16, 16, w, h] and grid[6] == padding + 2 * extrude
    for f in d["frames"]:
        assert anim8_cell(grid, *f["cell"]) == f["rect"], f
    for label, cells in d["grid_anims"].items():
        pairs = list(zip(cells[::2], cells[1::2]))
        assert [anim8_cell(grid, *c) for c in pairs] == [d["frames"][i - 1]["rect"] for i in d["anims"][label]]
    assert set(d["grid_anims"]) == set(d["anims"])
    # anim8's bounds check: every used cell within floor(imageWidth / frameWidth) x floor(imageHeight / frameHeight)
    assert all(1 <= f["cell"][0] <= w // 16 and 1 <= f["cell"][1] <= h // 16 for f in d["frames"])


def test_love_without_a_grid_and_with_several_pages(tmp_path):
    mixed = make_sprites(labels=("a", "b", "c"), trim_pad=3)  # trimmed to different sizes: no grid
    result = pack(mixed, trim=True)
    write_atlases(result, tmp_path / "m.png", ["love"])
    d = love_dump(tmp_path / "m.lua")
    assert d["grid"] is None and all(f["cell"] is None for f in d["frames"])
    for got, f in zip(d["frames"], result.frames):
        assert got["offset"] == (f.offset_x, f.offset_y) and got["source"] == (f.source_w, f.source_h)
    many = pack(make_sprites(labels=("w",) * 5), padding=0, max_size=32)
    write_atlases(many, tmp_path / "p.png", ["love"])
    d = love_dump(tmp_path / "p.lua")  # one module for all pages
    assert [p[0] for p in d["pages"]] == ["p-0.png", "p-1.png"] and d["grid"] is None
    page_of = {f.name: p for p, page in enumerate(many.pages, start=1) for f in page.frames}
    assert [f["page"] for f in d["frames"]] == [page_of[f["name"]] for f in d["frames"]]
    assert len(d["anims"]["w"]) == 5


def test_uniform_grid_rejects_frames_off_the_grid():
    img = Image.new("RGBA", (4, 4))
    from scarlet_moon.exporters.model import Frame, Page

    def target(*xy):
        return AtlasTarget(
            [Page(img, [Frame(f"f{i}", x, y, 4, 4, 4, 4) for i, (x, y) in enumerate(xy)])], ["a.png"], "a.lua"
        )

    assert uniform_grid(target((1, 1), (6, 1), (11, 1))) == {
        "frameWidth": 4,
        "frameHeight": 4,
        "imageWidth": 4,
        "imageHeight": 4,
        "left": 0,
        "top": 0,
        "border": 1,
    }
    assert uniform_grid(target((1, 1), (6, 1), (12, 1))) is None  # uneven gaps
    assert uniform_grid(target((1, 1), (6, 1), (1, 7))) is None  # x gap 1, y gap 2
    assert uniform_grid(target((1, 1), (3, 1))) is None  # overlapping cells


# ---- Unity .png.meta -----------------------------------------------------------------------------------


def unity_meta(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text("utf-8"))
    assert doc["fileFormatVersion"] == 2 and len(doc["guid"]) == 32 and int(doc["guid"], 16) >= 0
    return doc


def test_unity_meta_sprites_have_bottom_left_rects_unique_names_and_ids(tmp_path):
    result = pack(hostile_sprites(), padding=1, extrude=1)
    paths = write_atlases(result, tmp_path / "hero.png", ["unity"])
    assert [p.name for p in paths] == ["hero.png", "hero.png.meta"]
    doc = unity_meta(tmp_path / "hero.png.meta")
    ti = doc["TextureImporter"]
    assert ti["serializedVersion"] == 12 and ti["textureType"] == 8 and ti["spriteMode"] == 2
    assert ti["textureSettings"]["filterMode"] == 0 and ti["alphaIsTransparency"] == 1
    assert ti["mipmaps"]["enableMipMap"] == 0 and ti["spritePixelsToUnits"] == 16
    assert [p["textureCompression"] for p in ti["platformSettings"]] == [0]
    sprites = ti["spriteSheet"]["sprites"]
    names = [s["name"] for s in sprites]
    assert sorted(names) == sorted(f.name for f in result.frames) and len(set(names)) == len(names)
    (w, h) = result.pages[0].size
    frames = {f.name: f for f in result.frames}
    for s in sprites:
        f = frames[s["name"]]
        r = s["rect"]
        assert (r["x"], r["y"], r["width"], r["height"]) == (f.x, h - f.y - f.h, f.w, f.h)  # y from the bottom
        assert s["alignment"] == 0 and s["pivot"] == {"x": 0.5, "y": 0.5}
        assert len(s["spriteID"]) == 32 and int(s["spriteID"], 16) >= 0
    ids = [s["internalID"] for s in sprites]
    assert len(set(ids)) == len(ids) and 0 not in ids and all(-(2**63) <= i < 2**63 for i in ids)
    assert len({s["spriteID"] for s in sprites}) == len(sprites)
    assert ti["spriteSheet"]["nameFileIdTable"] == {s["name"]: s["internalID"] for s in sprites}


def test_unity_guid_and_ids_are_stable_across_exports(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_atlases(pack(make_sprites()), tmp_path / "a" / "hero.png", ["unity"])
    write_atlases(pack(make_sprites(labels=("walk", "x"))), tmp_path / "b" / "hero.png", ["unity"])
    write_atlases(pack(make_sprites()), tmp_path / "b" / "other.png", ["unity"])
    a, b = unity_meta(tmp_path / "a" / "hero.png.meta"), unity_meta(tmp_path / "b" / "hero.png.meta")
    assert a["guid"] == b["guid"] != unity_meta(tmp_path / "b" / "other.png.meta")["guid"]
    ids_a = {s["name"]: s["internalID"] for s in a["TextureImporter"]["spriteSheet"]["sprites"]}
    ids_b = {s["name"]: s["internalID"] for s in b["TextureImporter"]["spriteSheet"]["sprites"]}
    assert ids_a["walk_000"] == ids_b["walk_000"]


def test_unity_trimmed_pivot_is_the_untrimmed_centre_and_pages_get_their_own_meta(tmp_path):
    result = pack(make_sprites(labels=("a", "b"), trim_pad=3), trim=True, scale=2)
    write_atlases(result, tmp_path / "t.png", ["unity"])
    sprites = unity_meta(tmp_path / "t.png.meta")["TextureImporter"]["spriteSheet"]["sprites"]
    for s, f in zip(sprites, result.frames):
        assert s["alignment"] == 9  # Custom
        # the pivot, in texture pixels (y up), is the centre of the untrimmed box
        px = s["rect"]["x"] + s["pivot"]["x"] * s["rect"]["width"]
        py = s["rect"]["y"] + s["pivot"]["y"] * s["rect"]["height"]
        box_left, box_bottom = f.x - f.offset_x, s["rect"]["y"] - (f.source_h - f.offset_y - f.h)
        assert px == pytest.approx(box_left + f.source_w / 2, abs=1e-4)
        assert py == pytest.approx(box_bottom + f.source_h / 2, abs=1e-4)
    many = pack(make_sprites(labels=("w",) * 5), padding=0, max_size=32)
    paths = write_atlases(many, tmp_path / "hero.png", ["unity"])
    assert sorted(p.name for p in paths) == ["hero-0.png", "hero-0.png.meta", "hero-1.png", "hero-1.png.meta"]
    for p, page in enumerate(many.pages):
        doc = unity_meta(tmp_path / f"hero-{p}.png.meta")
        got = {s["name"] for s in doc["TextureImporter"]["spriteSheet"]["sprites"]}
        assert got == {f.name for f in page.frames}


@pytest.mark.parametrize(
    "text",
    [
        "hero_000",
        "true",
        "Null",
        "y",
        "1e3",
        "0x1F",
        "~",
        "-x",
        "a: b",
        "#c",
        " x",
        "x ",
        "'q'",
        "a\tb",
        "日本",
        "🐉",
        "",
        "[1]",
        "{a}",
        "*ref",
        "&anchor",
        "!tag",
        "%",
        "@",
        "`",
    ],
)
def test_unity_yaml_strings_read_back_exactly(text):
    from scarlet_moon.exporters.fmt_unity import yaml_str

    assert yaml.safe_load(f"k: {yaml_str(text)}\n") == {"k": text}
    assert yaml.safe_load(f"m:\n  {yaml_str(text)}: 1\n") == {"m": {text: 1}}


def test_unity_meta_must_be_named_after_its_png():
    from scarlet_moon.exporters.fmt_unity import Unity

    page = pack(make_sprites(labels=("a",))).pages[0]
    with pytest.raises(ValueError, match="a.png.meta"):
        Unity().render(AtlasTarget([page], ["a.png"], "a.meta"))


def test_force_from_several_pages_to_one_removes_the_old_page_files(tmp_path):
    many = pack(make_sprites(labels=("w",) * 5), padding=0, max_size=32)
    write_atlases(many, tmp_path / "hero.png", ["sparrow", "love", "unity"])
    write_atlases(pack(make_sprites(labels=("w",))), tmp_path / "hero.png", ["sparrow", "love", "unity"], force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hero.lua", "hero.png", "hero.png.meta", "hero.xml"]
