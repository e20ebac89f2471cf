"""`sm sheet --from DIR`: packing existing PNGs, options, errors, plugin formats."""

from __future__ import annotations

import json
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from test_exporters import libgdx_load, make_sprites

from scarlet_moon.cli.main import sm
from scarlet_moon.exporters import available_formats, pack, write_atlases


def invoke(*args: str):
    return CliRunner().invoke(sm, list(args))


def write_pngs(folder: Path, names: list[str], size: int = 16) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGBA", (size, size), (10 * i, 100, 200, 255)).save(folder / f"{name}.png")


def test_subfolders_become_animations(tmp_path):
    write_pngs(tmp_path / "in" / "walk", ["walk_000", "walk_001"])
    write_pngs(tmp_path / "in" / "idle", ["idle_000"])
    out = tmp_path / "hero.png"
    res = invoke("sheet", "--from", str(tmp_path / "in"), "--out", str(out), "--format", "json-hash,libgdx")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [str(out), str(tmp_path / "hero.json"), str(tmp_path / "hero.atlas")]
    doc = json.loads((tmp_path / "hero.json").read_text())
    assert list(doc["frames"]) == ["idle_000", "walk_000", "walk_001"]  # sorted folders, then file names
    assert doc["animations"] == {"idle": ["idle_000"], "walk": ["walk_000", "walk_001"]}
    assert doc["frames"]["walk_001"]["data"]["meta"] == {"source": "walk/walk_001.png"}
    _, regions = libgdx_load((tmp_path / "hero.atlas").read_text())
    assert [(r["name"], r["index"]) for r in regions] == [("idle", 0), ("walk", 0), ("walk", 1)]


def test_flat_folder_labels_come_from_the_stem_prefix(tmp_path):
    write_pngs(tmp_path / "in", ["slime_b_001", "slime_b_000", "hero_000", "logo"])
    res = invoke("sheet", "--from", str(tmp_path / "in"), "--out", str(tmp_path / "s.png"))
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "s.json").read_text())
    assert list(doc["frames"]) == ["hero_000", "logo", "slime_b_000", "slime_b_001"]
    assert doc["animations"] == {"hero": ["hero_000"], "slime_b": ["slime_b_000", "slime_b_001"]}


def test_same_stem_in_two_subfolders_keeps_both(tmp_path):
    write_pngs(tmp_path / "in" / "a", ["000"])
    write_pngs(tmp_path / "in" / "b", ["000"])
    res = invoke("sheet", "--from", str(tmp_path / "in"), "--out", str(tmp_path / "s.png"))
    assert res.exit_code == 0, res.output
    assert set(json.loads((tmp_path / "s.json").read_text())["frames"]) == {"a/000", "b/000"}


def test_packing_options_reach_the_packer(tmp_path):
    write_pngs(tmp_path / "in", [f"h_{i:03d}" for i in range(5)], size=8)
    res = invoke(
        "sheet",
        "--from",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "s.png"),
        "--scale",
        "2",
        "--padding",
        "0",
        "--extrude",
        "1",
        "--pot",
        "--max-size",
        "64",
        "--no-dedupe",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {(f["frame"]["w"], f["frame"]["h"]) for f in doc["frames"].values()} == {(16, 16)}
    assert doc["meta"]["size"] == {"w": 64, "h": 64}  # 3 x 2 cells of 18 px = 54 x 36 -> pot
    assert doc["frames"]["h_000"]["frame"]["x"] == 1  # extrusion border before the frame


def test_small_max_size_writes_pages_and_multi_atlas(tmp_path):
    write_pngs(tmp_path / "in", [f"h_{i:03d}" for i in range(5)])
    res = invoke("sheet", "--from", str(tmp_path / "in"), "--out", str(tmp_path / "s.png"), "--max-size", "40")
    assert res.exit_code == 0, res.output
    assert {Path(p).name for p in res.stdout.split()} == {"s-0.png", "s-1.png", "s-0.json", "s-1.json", "s.multi.json"}


def test_existing_output_needs_force(tmp_path):
    write_pngs(tmp_path / "in", ["a_000"])
    args = ["sheet", "--from", str(tmp_path / "in"), "--out", str(tmp_path / "s.png")]
    assert invoke(*args).exit_code == 0
    before = (tmp_path / "s.json").read_bytes()
    res = invoke(*args)
    assert res.exit_code == 2 and "s.png" in res.stderr and "--force" in res.stderr
    assert (tmp_path / "s.json").read_bytes() == before
    assert invoke(*args, "--force").exit_code == 0


@pytest.mark.parametrize(
    "setup, args, needle",
    [
        (None, ["--model", "{tmp}/missing.safetensors"], "missing.safetensors"),
        (None, ["--from", "{tmp}/missing"], "missing"),
        ("empty", ["--from", "{tmp}/in"], "no .png"),
        ("corrupt", ["--from", "{tmp}/in"], "bad_000.png"),
        ("ok", ["--from", "{tmp}/in", "--format", "nope"], "'nope'; available: aseprite, godot3"),
        ("ok", ["--from", "{tmp}/in", "--out", "{tmp}/no/such/dir/s.png"], "does not exist"),
        ("ok", ["--from", "{tmp}/in", "--out", "{tmp}/s.gif"], "must be a .png"),
        ("ok", ["--from", "{tmp}/in", "--max-size", "8"], "a_000"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(tmp_path, setup, args, needle):
    (tmp_path / "in").mkdir()
    if setup == "corrupt":
        (tmp_path / "in" / "bad_000.png").write_bytes(b"not a png")
    elif setup == "ok":
        write_pngs(tmp_path / "in", ["a_000"])
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "s.png")]
    res = invoke("sheet", *args)
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "s.png").exists()


def test_list_formats_shows_builtins(tmp_path):
    res = invoke("sheet", "--list-formats")
    assert res.exit_code == 0
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert [r[0] for r in rows[:12]] == [
        "json-hash",
        "json-array",
        "phaser-multi",
        "aseprite",
        "godot3",
        "godot4",
        "libgdx",
        "sparrow",
        "love",
        "unity",
        "tiled",
        "godot4-tileset",
    ]
    assert all(len(r) == 4 and r[2] not in ("", "-") for r in rows[:12])  # name, suffix, engine, description
    by_name = {r[0]: r for r in rows}
    assert by_name["unity"][1] == ".png.meta" and "Unity" in by_name["unity"][2]
    assert "atlasXML" in by_name["sparrow"][2] and "anim8" in by_name["love"][2]


# ---- plugins (entry points of group scarlet_moon.exporters) ------------------------------------------------------------------------------------------

PLUGIN = """
from scarlet_moon.exporters import AtlasFormat

class CssFormat(AtlasFormat):
    name = "css"
    description = "CSS sprite classes"
    suffix = ".css"

    def render(self, target):
        return "".join(f".{f.name} {{ background: url({target.images[0]}) -{f.x}px -{f.y}px; "
                       f"width: {f.w}px; height: {f.h}px; }}\\n" for f in target.frames)
"""


def install_plugin(
    root: Path, module: str = "sm_css_plugin", value: str = "sm_css_plugin:CssFormat", ep_name: str = "css"
) -> None:
    """A minimal installed distribution: module + dist-info with entry_points.txt on sys.path."""
    (root / f"{module}.py").write_text(textwrap.dedent(PLUGIN))
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[scarlet_moon.exporters]\n{ep_name} = {value}\n")


@pytest.fixture
def css_plugin(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    install_plugin(root)
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("sm_css_plugin", None)


def test_a_plugin_format_is_listed_and_written(tmp_path, css_plugin):
    packed = pack(make_sprites())
    assert "css" in available_formats() and "json-hash" in available_formats()
    out = tmp_path / "out"
    out.mkdir()
    paths = write_atlases(packed, out / "hero.png", ["css", "json-hash"])
    assert paths == [out / "hero.png", out / "hero.css", out / "hero.json"]
    f = packed.frames[1]
    assert f".{f.name} {{ background: url(hero.png) -{f.x}px -{f.y}px;" in (out / "hero.css").read_text()


def test_broken_or_clashing_plugins_are_skipped_with_a_warning(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    install_plugin(root, module="sm_broken_plugin", value="sm_missing_module:Thing", ep_name="broken")
    install_plugin(
        root, module="sm_clash_plugin", value="scarlet_moon.exporters.fmt_json:JsonArray", ep_name="json-hash2"
    )
    monkeypatch.syspath_prepend(str(root))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        formats = available_formats()
    assert "broken" not in formats and formats["json-array"].suffix == ".array.json"
    text = " ".join(str(w.message) for w in caught)
    assert "broken" in text and "already taken" in text


def test_plugin_format_works_through_the_cli(tmp_path, css_plugin):
    write_pngs(tmp_path / "in", ["a_000", "a_001"])
    assert "css\t.css\t-\tCSS sprite classes" in invoke("sheet", "--list-formats").stdout  # no engine: "-"
    res = invoke("sheet", "--from", str(tmp_path / "in"), "--out", str(tmp_path / "s.png"), "--format", "css")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [str(tmp_path / "s.png"), str(tmp_path / "s.css")]
    assert ".a_001 { background: url(s.png)" in (tmp_path / "s.css").read_text()


def test_a_duck_typed_plugin_without_engine_is_listed(monkeypatch):
    class Duck:  # not an AtlasFormat subclass: no `engine` attribute at all
        name, description, suffix = "duck", "quacks", ".duck"

        def render(self, target):
            return ""

    from scarlet_moon import exporters

    real = exporters.available_formats
    monkeypatch.setattr(exporters, "available_formats", lambda: {**real(), "duck": Duck()})
    res = invoke("sheet", "--list-formats")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1] == "duck\t.duck\t-\tquacks"


def test_from_says_what_it_does_not_pack(tmp_path: Path):
    """An animated PNG packs its first frame and says so; PNGs below the label folders are named, not
    silently dropped."""
    from PIL import Image as PILImage

    src = tmp_path / "src" / "walk"
    (src / "deep").mkdir(parents=True)
    frames = [PILImage.new("RGBA", (8, 8), (60 * i, 0, 0, 255)) for i in range(3)]
    frames[0].save(src / "a.png", save_all=True, append_images=frames[1:])
    frames[1].save(src / "deep" / "b.png")
    res = CliRunner().invoke(sm, ["sheet", "--from", str(tmp_path / "src"), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())
    assert "is animated (3 frames); only its first frame is read" in said
    assert "1 PNG(s) in folders below its label folders are not read (labels are one folder deep)" in said
