"""Atlas writers: every format parses back to the packed rects; escaping; atomic writes; plugins."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import scarlet_moon.exporters.atomic
from scarlet_moon.exporters import AtlasFormat, AtlasTarget, Sprite, available_formats, pack, write_atlases

NASTY = 'a"b\n]\\ {x}: ü'  # quotes, newline, bracket, backslash, braces, colon, non-ASCII


def make_sprites(labels=("walk", "walk", "walk", "idle", "idle", NASTY), size=16, trim_pad=0) -> list[Sprite]:
    out = []
    for i, label in enumerate(labels):
        img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        img.paste((10 + 30 * i, 200 - 20 * i, 50, 255), (trim_pad, trim_pad + i % 2, size - trim_pad, size - trim_pad))
        out.append(Sprite(f"{label}_{i:03d}", img, label=label, meta={"seed": i, "note": NASTY}))
    return out


def rects(result) -> dict[str, tuple[int, int, int, int]]:
    return {f.name: (f.x, f.y, f.w, f.h) for f in result.frames}


# ---- tiny Godot .tres parser (variant syntax of format=2 and format=3) ------------------------------

TOKEN = re.compile(
    r'\s*(?:(?P<str>&?"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?(?:e-?\d+)?)'
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_/]*)|(?P<p>[\[\]{}(),:=]))",
    re.S,
)


def tokens(text: str) -> list[tuple[str, object]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        m = TOKEN.match(text, pos)
        assert m, f"cannot tokenise at {text[pos : pos + 30]!r}"
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "str":
            assert not value.startswith("&"), "StringName literals break godot-parser; emit plain strings"
            value = json.loads(value)
        elif kind == "num":
            value = float(value) if "." in value else int(value)
        out.append((kind, value))
        pos = m.end()
    return out


class Tres:
    """Sections: [(tag, attrs, props)]; values are str/int/float/bool/list/dict or (Ctor, [args])."""

    def __init__(self, text: str):
        self.toks, self.i, self.sections = tokens(text), 0, []
        while self.i < len(self.toks):
            if self.peek() == ("p", "["):
                self.i += 1
                tag, attrs = self.take("id"), {}
                while self.peek() != ("p", "]"):
                    key = self.take("id")
                    self.expect("=")
                    attrs[key] = self.value()
                self.i += 1
                self.sections.append((tag, attrs, {}))
            else:
                key = self.take("id")
                self.expect("=")
                self.sections[-1][2][key] = self.value()

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind):
        k, v = self.toks[self.i]
        assert k == kind, (k, v, self.i)
        self.i += 1
        return v

    def expect(self, p):
        assert self.take("p") == p

    def value(self):
        kind, v = self.toks[self.i]
        self.i += 1
        if kind in ("str", "num"):
            return v
        if kind == "id" and v in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[v]
        if kind == "id":
            self.expect("(")
            return (v, self.seq(")"))
        if v == "[":
            return self.seq("]")
        assert v == "{", v
        out = {}
        while self.peek() != ("p", "}"):
            key = self.take("str")
            self.expect(":")
            out[key] = self.value()
            if self.peek() == ("p", ","):
                self.i += 1
        self.i += 1
        return out

    def seq(self, close):
        items = []
        while self.peek() != ("p", close):
            items.append(self.value())
            if self.peek() == ("p", ","):
                self.i += 1
        self.i += 1
        return items


def godot_animations(text: str, fmt: int) -> tuple[dict[str, list[tuple]], list[str]]:
    """{animation: [(page image, x, y, w, h)]} and the ext_resource paths; checks references."""
    res = Tres(text)
    (tag, head, _), rest = res.sections[0], res.sections[1:]
    assert tag == "gd_resource" and head["type"] == "SpriteFrames" and head["format"] == fmt
    assert head["load_steps"] == len(rest)  # ext + sub resources + 1, i.e. every section after the header
    ext = {a["id"]: a["path"] for t, a, _ in rest if t == "ext_resource"}
    assert all(a["type"] == ("Texture" if fmt == 2 else "Texture2D") for t, a, _ in rest if t == "ext_resource")
    subs = {a["id"]: p for t, a, p in rest if t == "sub_resource" and a["type"] == "AtlasTexture"}
    (resource,) = [p for t, _, p in rest if t == "resource"]
    out = {}
    for anim in resource["animations"]:
        assert anim["loop"] is True and anim["speed"] == 10.0
        frames = []
        for fr in anim["frames"]:
            ref = fr if fmt == 2 else fr["texture"]
            if fmt == 3:
                assert fr["duration"] == 1.0
            assert ref[0] == "SubResource"
            sub = subs[ref[1][0]]
            assert sub["atlas"][0] == "ExtResource" and sub["region"][0] == "Rect2"
            frames.append((ext[sub["atlas"][1][0]], *sub["region"][1]))
        out[anim["name"]] = frames
    return out, list(ext.values())


# ---- port of libGDX TextureAtlas.TextureAtlasData.load ---------------------------------------------


def read_entry(line: str | None) -> list[str]:
    """[name, values...] or [] (libGDX readEntry: no colon -> not an entry)."""
    if line is None or not line.strip() or ":" not in line.strip():
        return []
    line = line.strip()
    name, _, rest = line.partition(":")
    return [name.strip(), *[v.strip() for v in rest.split(",")][:4]]


def libgdx_load(text: str) -> tuple[list[dict], list[dict]]:
    lines = iter(text.split("\n"))
    line = next(lines, None)
    while line is not None and not line.strip():
        line = next(lines, None)
    while line is not None and line.strip() and read_entry(line):  # header entries, ignored
        line = next(lines, None)
    pages, regions, page = [], [], None
    while line is not None:
        if not line.strip():
            page, line = None, next(lines, None)
        elif page is None:
            page = {"file": line, "filter": ["Nearest", "Nearest"]}
            while entry := read_entry(line := next(lines, None)):
                page[entry[0]] = entry[1:]
            pages.append(page)
        else:
            region = {"page": page["file"], "name": line.strip(), "index": -1}
            while entry := read_entry(line := next(lines, None)):
                region[entry[0]] = [int(v) for v in entry[1:]] if entry[0] in ("bounds", "offsets") else entry[1]
            region["index"] = int(region["index"])
            regions.append(region)
    return pages, regions


# ---- the formats ------------------------------------------------------------------------------------


@pytest.fixture
def packed():
    return pack(make_sprites(), padding=1, extrude=1)


def test_json_hash_is_what_phaser_and_pixi_read(tmp_path, packed):
    paths = write_atlases(packed, tmp_path / "hero.png", app_meta={"model": "m1"})
    assert paths == [tmp_path / "hero.png", tmp_path / "hero.json"]
    doc = json.loads((tmp_path / "hero.json").read_text("utf-8"))
    assert {
        k: (v["frame"]["x"], v["frame"]["y"], v["frame"]["w"], v["frame"]["h"]) for k, v in doc["frames"].items()
    } == rects(packed)
    f = doc["frames"]["walk_000"]
    assert f["rotated"] is False and f["trimmed"] is False and f["anchor"] == f["pivot"] == {"x": 0.5, "y": 0.5}
    assert f["data"] == {"label": "walk", "meta": {"seed": 0, "note": NASTY}}
    assert doc["animations"] == {
        "walk": ["walk_000", "walk_001", "walk_002"],
        "idle": ["idle_003", "idle_004"],
        NASTY: [f"{NASTY}_005"],
    }
    meta = doc["meta"]
    assert meta["image"] == "hero.png" and meta["scale"] == "1" and meta["format"] == "RGBA8888"
    assert meta["size"] == {"w": packed.pages[0].size[0], "h": packed.pages[0].size[1]}
    assert meta["app"] == "scarlet-moon" and meta["model"] == "m1" and meta["version"]
    assert Image.open(tmp_path / "hero.png").size == packed.pages[0].size


def test_trimmed_frames_report_source_size_and_offsets(tmp_path):
    result = pack(make_sprites(labels=("a", "b"), trim_pad=3), trim=True, scale=2)
    write_atlases(result, tmp_path / "t.png", ["json-hash", "libgdx", "godot3"])
    doc = json.loads((tmp_path / "t.json").read_text())
    for f in result.frames:
        e = doc["frames"][f.name]
        assert e["trimmed"] is True and e["sourceSize"] == {"w": 32, "h": 32}
        assert e["spriteSourceSize"] == {"x": f.offset_x, "y": f.offset_y, "w": f.w, "h": f.h}
    _, regions = libgdx_load((tmp_path / "t.atlas").read_text())
    f = result.frames[1]  # offsets y counts from the bottom in libGDX
    assert regions[1]["offsets"] == [f.offset_x, f.source_h - f.offset_y - f.h, 32, 32]
    assert (f.offset_x, f.offset_y, f.w, f.h) == (6, 8, 20, 18)  # 10 x 9 box at (3, 4), x2
    assert "margin = Rect2( 6, 8, 12, 14 )" in (tmp_path / "t.tres").read_text()


def test_json_array_lists_frames_with_filename(tmp_path, packed):
    write_atlases(packed, tmp_path / "hero.png", ["json-array"])
    doc = json.loads((tmp_path / "hero.array.json").read_text())
    assert [f["filename"] for f in doc["frames"]] == [f.name for f in packed.frames]
    assert {f["filename"]: tuple(f["frame"].values()) for f in doc["frames"]} == rects(packed)


def test_aseprite_frames_are_index_keys_and_tags_are_contiguous(tmp_path):
    result = pack(make_sprites(labels=("walk", "idle", "walk", "idle")))
    write_atlases(result, tmp_path / "a.png", ["aseprite"])
    doc = json.loads((tmp_path / "a.aseprite.json").read_text())
    assert list(doc["frames"]) == ["0", "1", "2", "3"]
    assert [doc["frames"][k]["data"]["name"] for k in "0123"] == ["walk_000", "walk_002", "idle_001", "idle_003"]
    assert all(doc["frames"][k]["duration"] == 100 for k in "0123")
    assert doc["meta"]["frameTags"] == [
        {"name": "walk", "from": 0, "to": 1, "direction": "forward"},
        {"name": "idle", "from": 2, "to": 3, "direction": "forward"},
    ]
    r = rects(result)
    assert tuple(doc["frames"]["1"]["frame"].values()) == r["walk_002"]


@pytest.mark.parametrize("fmt, suffix, version", [("godot3", ".tres", 2), ("godot4", ".godot4.tres", 3)])
def test_godot_sprite_frames_parse_to_the_packed_rects(tmp_path, packed, fmt, suffix, version):
    write_atlases(packed, tmp_path / "hero.png", [fmt])
    anims, paths = godot_animations((tmp_path / f"hero{suffix}").read_text("utf-8"), version)
    assert paths == ["hero.png"]  # bare relative name: the pair can move together
    expected = {}
    for f in packed.frames:
        expected.setdefault(f.label, []).append(("hero.png", f.x, f.y, f.w, f.h))
    assert anims == expected  # NASTY label round-trips exactly
    imp = tmp_path / "hero.png.import"
    assert imp.exists() == (fmt == "godot3")
    if fmt == "godot3":
        assert "flags/filter=false" in imp.read_text() and "flags/mipmaps=false" in imp.read_text()


def test_godot3_import_file_is_only_seeded_never_replaced(tmp_path, packed):
    (tmp_path / "hero.png.import").write_text("mine")
    paths = write_atlases(packed, tmp_path / "hero.png", ["godot3"])
    assert tmp_path / "hero.png.import" not in paths
    write_atlases(packed, tmp_path / "hero.png", ["godot3"], force=True)
    assert (tmp_path / "hero.png.import").read_text() == "mine"


def test_libgdx_atlas_parses_with_the_libgdx_algorithm(tmp_path, packed):
    write_atlases(packed, tmp_path / "hero.png", ["libgdx"])
    pages, regions = libgdx_load((tmp_path / "hero.atlas").read_text("utf-8"))
    assert [p["file"] for p in pages] == ["hero.png"]
    assert pages[0]["size"] == [str(v) for v in packed.pages[0].size] and pages[0]["filter"] == ["Nearest", "Nearest"]
    by_label = {}
    for f in packed.frames:
        by_label.setdefault(f.label, []).append(f)
    assert len(regions) == len(packed.frames)
    names = {r["name"] for r in regions}
    assert {"walk", "idle"} <= names and len(names) == 3  # NASTY sanitised to one readable name
    for r in regions:
        label = r["name"] if r["name"] in ("walk", "idle") else NASTY
        f = by_label[label][r["index"]]
        assert r["bounds"] == [f.x, f.y, f.w, f.h] and r["page"] == "hero.png"


def test_libgdx_keeps_distinct_labels_distinct_after_sanitising(tmp_path):
    result = pack(make_sprites(labels=("a:b", "a_b", "a\nb")))
    write_atlases(result, tmp_path / "x.png", ["libgdx"])
    _, regions = libgdx_load((tmp_path / "x.atlas").read_text())
    assert len({r["name"] for r in regions}) == 3 and all(r["index"] == 0 for r in regions)


def test_several_pages_get_numbered_files_and_a_phaser_multi_atlas(tmp_path):
    result = pack(make_sprites(labels=("w",) * 5), padding=0, max_size=32)
    assert len(result.pages) == 2
    paths = write_atlases(result, tmp_path / "hero.png", ["json-hash", "libgdx", "godot4"])
    names = sorted(p.name for p in paths)
    assert names == sorted(
        ["hero-0.png", "hero-1.png", "hero-0.json", "hero-1.json", "hero.atlas", "hero.godot4.tres", "hero.multi.json"]
    )
    page0 = json.loads((tmp_path / "hero-0.json").read_text())
    assert page0["meta"]["image"] == "hero-0.png" and page0["meta"]["related_multi_packs"] == ["hero-1.json"]
    multi = json.loads((tmp_path / "hero.multi.json").read_text())
    assert [t["image"] for t in multi["textures"]] == ["hero-0.png", "hero-1.png"]
    got = {f["filename"]: (t["image"], *f["frame"].values()) for t in multi["textures"] for f in t["frames"]}
    assert got == {
        f.name: (f"hero-{p}.png", f.x, f.y, f.w, f.h) for p, page in enumerate(result.pages) for f in page.frames
    }
    pages, regions = libgdx_load((tmp_path / "hero.atlas").read_text())
    assert [p["file"] for p in pages] == ["hero-0.png", "hero-1.png"]
    assert sorted(r["index"] for r in regions) == [0, 1, 2, 3, 4]
    anims, ext = godot_animations((tmp_path / "hero.godot4.tres").read_text(), 3)
    assert ext == ["hero-0.png", "hero-1.png"] and len(anims["w"]) == 5


def test_pixels_in_the_written_png_match_the_sprites(tmp_path):
    sprites = make_sprites(labels=("a", "b", "c"))
    result = pack(sprites, scale=3, extrude=2)
    write_atlases(result, tmp_path / "s.png")
    sheet = np.asarray(Image.open(tmp_path / "s.png").convert("RGBA"))
    doc = json.loads((tmp_path / "s.json").read_text())
    for s in sprites:
        r = doc["frames"][s.name]["frame"]
        want = np.asarray(s.image).repeat(3, 0).repeat(3, 1)
        np.testing.assert_array_equal(sheet[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]], want)


# ---- files: refusal, atomicity ------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_refuses_to_replace_existing_files_without_force(tmp_path, packed):
    write_atlases(packed, tmp_path / "hero.png", ["json-hash", "godot3"])
    before = snapshot(tmp_path)
    other = pack(make_sprites(labels=("x", "y")))
    (tmp_path / "hero.png").unlink()  # only the atlas is left in the way
    with pytest.raises(FileExistsError) as err:
        write_atlases(other, tmp_path / "hero.png", ["json-hash", "godot3"])
    assert err.value.filename == str(tmp_path / "hero.json") and "hero.json" in str(err.value)
    assert not (tmp_path / "hero.png").exists()  # nothing written at all
    assert snapshot(tmp_path) == {k: v for k, v in before.items() if k != "hero.png"}
    write_atlases(other, tmp_path / "hero.png", ["json-hash", "godot3"], force=True)
    assert set(json.loads((tmp_path / "hero.json").read_text())["frames"]) == {"x_000", "y_001"}


@pytest.mark.parametrize("fail_on, fail_at", [("fsync", 3), ("replace", 2), ("replace", 3)])
def test_failure_mid_write_keeps_old_files_and_leaves_no_temp(tmp_path, packed, monkeypatch, fail_on, fail_at):
    write_atlases(packed, tmp_path / "hero.png", ["json-hash", "godot3", "libgdx"])
    before = snapshot(tmp_path)
    real = getattr(scarlet_moon.exporters.atomic.os, fail_on)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == fail_at:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(scarlet_moon.exporters.atomic.os, fail_on, flaky)
    with pytest.raises(OSError, match="No space"):
        write_atlases(
            pack(make_sprites(labels=("q",) * 9)), tmp_path / "hero.png", ["json-hash", "godot3", "libgdx"], force=True
        )
    assert snapshot(tmp_path) == before  # same files, same bytes: no temp, no backup, no half file


def test_failure_on_a_fresh_write_leaves_nothing(tmp_path, packed, monkeypatch):
    real = scarlet_moon.exporters.atomic.os.replace
    calls = []

    def flaky(*args):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk gone")
        return real(*args)

    monkeypatch.setattr(scarlet_moon.exporters.atomic.os, "replace", flaky)
    with pytest.raises(OSError):
        write_atlases(packed, tmp_path / "hero.png", ["json-hash", "libgdx"])
    assert list(tmp_path.iterdir()) == []


class Boom(AtlasFormat):
    name, description, suffix = "boom", "fails while rendering", ".boom"

    def render(self, target: AtlasTarget) -> str:
        raise RuntimeError("render failed")


def test_a_format_that_fails_to_render_writes_nothing(tmp_path, packed, monkeypatch):
    monkeypatch.setattr(
        "scarlet_moon.exporters.registry.available_formats", lambda: {**available_formats(), "boom": Boom()}
    )
    with pytest.raises(RuntimeError):
        write_atlases(packed, tmp_path / "hero.png", ["json-hash", "boom"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "out, formats, error",
    [
        ("hero.jpg", ["json-hash"], ValueError),
        ("nope/hero.png", ["json-hash"], FileNotFoundError),
        ("hero.png", ["json-hash", "bogus"], ValueError),
    ],
)
def test_bad_arguments_are_refused(tmp_path, packed, out, formats, error):
    with pytest.raises(error, match="bogus|jpg|nope"):
        write_atlases(packed, tmp_path / out, formats)
    assert list(tmp_path.iterdir()) == []


def test_unserialisable_meta_is_refused_before_writing(tmp_path):
    result = pack([Sprite("a", Image.new("RGBA", (2, 2)), meta={"x": float("nan")})])
    with pytest.raises(ValueError):
        write_atlases(result, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_dead_writer_go_and_a_live_writers_stay(tmp_path, packed):
    """Temps and backups are named after their writer's process: the next write removes a dead one's."""
    import os

    dead = _dead_pid()
    stale = [tmp_path / f".hero.png.sm-{dead}-0a1b.tmp", tmp_path / f".hero.json.sm-{dead}-ffff.bak"]
    live = tmp_path / f".hero.png.sm-{os.getppid()}-0a1b.tmp"
    for p in [*stale, live]:
        p.write_bytes(b"leftover")
    write_atlases(packed, tmp_path / "hero.png", ["json-hash"])
    assert not any(p.exists() for p in stale) and live.exists()


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # reaped: no process has it (pid reuse within the test is vanishingly unlikely)


def test_force_with_fewer_pages_removes_the_old_extra_pages(tmp_path):
    many = pack(
        [Sprite(f"s{i}", Image.new("RGBA", (8, 8), (i, 0, 0, 255))) for i in range(30)], max_size=32, dedupe=False
    )
    assert len(many.pages) > 1
    write_atlases(many, tmp_path / "hero.png", ["json-hash", "godot3"])
    assert (tmp_path / "hero-1.png").exists() and (tmp_path / "hero.multi.json").exists()
    (tmp_path / "hero-9.png").write_bytes(b"not ours: after a gap in the numbering")
    one = pack([Sprite("a", Image.new("RGBA", (8, 8), (9, 9, 9, 255)))])
    write_atlases(one, tmp_path / "hero.png", ["json-hash", "godot3"], force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hero-9.png",
        "hero.json",
        "hero.png",
        "hero.png.import",
        "hero.tres",
    ]


# ---- registry ---------------------------------------------------------------------------------------------


def test_builtins_match_the_pyproject_entry_points_and_name_their_engine():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from scarlet_moon.exporters.registry import BUILTINS, ENTRY_POINT_GROUP

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert list(project["entry-points"][ENTRY_POINT_GROUP].items()) == list(BUILTINS)
    formats = available_formats()
    for name, _ in BUILTINS:
        assert formats[name].engine and formats[name].description, name
    assert {"sparrow", "love", "unity"} <= set(formats)


def test_built_in_formats_resolve_without_the_entry_point_scan(monkeypatch):
    """resolve_formats of built-in names skips importlib.metadata (a plugin cannot take a built-in's
    name, so the scan could not change them); any other name still scans and is found or refused."""
    import importlib.metadata

    from scarlet_moon.exporters import resolve_formats

    def no_scan(**kw):
        raise AssertionError("entry points scanned")

    monkeypatch.setattr(importlib.metadata, "entry_points", no_scan)
    chosen = resolve_formats(["json-hash", "godot3", "json-hash"], multipage=True)
    assert [f.name for f in chosen] == ["json-hash", "godot3", "phaser-multi"]
    with pytest.raises(AssertionError, match="entry points scanned"):
        resolve_formats(["my-plugin-format"])
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unknown atlas format 'my-plugin-format'"):
        resolve_formats(["my-plugin-format"])
    assert [type(f) for f in chosen] == [type(available_formats()[f.name]) for f in chosen]


def test_the_package_names_load_on_first_use_and_atomic_alone_needs_no_pillow():
    """`exporters` resolves its public names lazily (PEP 562): `scarlet_moon.exporters.atomic`, which `sm sample`
    needs, comes without Pillow and the packer; every public name still imports."""
    import subprocess
    import sys

    from scarlet_moon import exporters

    assert sorted(exporters.__all__) == sorted(exporters._WHERE) and set(exporters.__all__) <= set(dir(exporters))
    assert all(getattr(exporters, name) is not None for name in exporters.__all__)
    with pytest.raises(AttributeError, match="'nope'"):
        exporters.nope  # noqa: B018
    code = (
        "from scarlet_moon import exporters\n"
        "print(exporters.base.AtlasFormat.__name__, exporters.writer.write_atlases.__name__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["AtlasFormat", "write_atlases"], proc.stderr  # submodules by attribute too
    code = (
        "import sys, scarlet_moon.exporters.atomic\nfrom scarlet_moon.exporters import recover\n"
        "print(sorted(m for m in ('PIL', 'scarlet_moon.exporters.packer', 'scarlet_moon.exporters.model') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
    star: dict = {}
    exec("from scarlet_moon.exporters import *", star)
    assert {"pack", "write_atlases", "Sprite"} <= set(star)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.integers(0, 5))
def test_dump_json_is_the_json_of_json_dumps(doc, flat_depth):
    from scarlet_moon.exporters.fmt_json import dump_json

    text = dump_json(doc, flat_depth)
    assert json.loads(text) == json.loads(json.dumps(doc)) and text.endswith("\n")
    lines = text.splitlines()
    assert all(len(line) - len(line.lstrip(" ")) <= flat_depth for line in lines)  # indented above flat_depth only
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            dump_json({"frames": [doc, bad]}, flat_depth)
