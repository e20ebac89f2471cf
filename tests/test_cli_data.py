"""`sm data inspect`: tables on stderr, the preview path on stdout, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_sprites
from PIL import Image

from scarlet_moon.cli.main import sm


def invoke(*args: str):
    return CliRunner().invoke(sm, list(args))


def one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_inspect_bundled_writes_the_preview_in_the_current_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke("data", "inspect")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "angband16-preview.png"
    for needle in ("bundled:angband16", "hero", "81", "963", "16x16", "RGBA input", "100.0%", "b579e384bc6de229"):
        assert needle in res.stderr
    with Image.open(tmp_path / "angband16-preview.png") as im:
        assert im.mode == "RGBA" and im.size == (8 * 65 + 1, 6 * 65 + 1)  # 8 per label x 6 labels, x4 + 1px gaps
    assert [p.name for p in tmp_path.iterdir()] == ["angband16-preview.png"]  # no temp file left


def test_inspect_rgb_npy_set_with_preview_and_key(tmp_path: Path):
    imgs, onehot = make_sprites(n=9, size=8, classes=3)
    d = tmp_path / "myset"
    d.mkdir()
    np.save(d / "sprites.npy", imgs[..., :3].copy())  # RGB: the transparent background is black
    np.save(d / "sprites_labels.npy", onehot)
    out = tmp_path / "p.png"
    res = invoke("data", "inspect", str(d), "--preview", str(out), "--per-label", "2", "--background-key", "000000")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    assert "RGB input" in res.stderr and "alpha crispness" in res.stderr
    with Image.open(out) as im:
        grid = np.asarray(im)
    assert grid.shape == (3 * 33 + 1, 2 * 33 + 1, 4)
    assert grid[1, 1, 3] == 0 and (grid[..., 3] == 255).any()  # the keyed black corner is transparent


def test_inspect_tileset_with_tile(tmp_path: Path, monkeypatch):
    d = tmp_path / "sheet"
    d.mkdir()
    Image.new("RGBA", (16, 8), (255, 0, 255, 255)).save(d / "tiles.png")
    (d / "cells.csv").write_text("row,col,label\n0,0,a\n0,1,b\n")
    monkeypatch.chdir(tmp_path)
    res = invoke("data", "inspect", str(d / "cells.csv"), "--tile", "8")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "cells-preview.png" and (tmp_path / "cells-preview.png").is_file()
    assert "8x8" in res.stderr


def test_wrong_size_png_is_one_line_naming_the_file(tmp_path: Path):
    d = tmp_path / "pngs"
    for label, size in (("a", (16, 16)), ("b", (17, 16))):
        (d / label).mkdir(parents=True)
        Image.new("RGBA", size, (1, 2, 3, 255)).save(d / label / "s.png")
    line = one_line_error(invoke("data", "inspect", str(d), "--preview", str(tmp_path / "p.png")))
    assert str(d / "b" / "s.png") in line and "17x16" in line and "16x16" in line
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--background-key", "#ff00fz"], "'#ff00fz'"),
        (["--tile", "0"], "--tile 0"),
        (["--preview", "out.jpg"], "'out.jpg'"),
        (["--preview", "no/such/folder/p.png"], "does not exist"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, monkeypatch, args: list[str], needle: str):
    monkeypatch.chdir(tmp_path)
    assert needle in one_line_error(invoke("data", "inspect", *args))
    assert list(tmp_path.iterdir()) == []


def test_bad_files_are_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "does not exist" in one_line_error(invoke("data", "inspect", str(tmp_path / "nope")))
    d = tmp_path / "s"
    d.mkdir()
    np.save(d / "sprites.npy", make_sprites(n=2, classes=2)[0])
    np.save(d / "sprites_labels.npy", np.array([[1, 1], [0, 1]]))
    assert f"'{d / 'sprites_labels.npy'}'" in one_line_error(invoke("data", "inspect", str(d)))


def test_sm_data_inspect_reads_an_animated_set_and_previews_it(tmp_path: Path) -> None:
    from test_anim_data import cell, save, sheet

    from scarlet_moon.cli.cmd_data import ANIM_LAYOUTS
    from scarlet_moon.data.anim import LAYOUTS

    assert ANIM_LAYOUTS == LAYOUTS
    for c in range(2):
        save(sheet([[cell(c, d, f) for f in range(3)] for d in range(4)]), tmp_path / "set" / "hero" / f"{c}.png")
    out = tmp_path / "p.png"
    r = invoke(*["data", "inspect", str(tmp_path / "set"), "--layout", "rows", "--preview", str(out)])
    assert r.exit_code == 0, r.output
    assert "frames per direction" in r.output and "down, left, right, up" in r.output
    # --per-label 8 characters side by side (2 here, the rest blank) x 3 frames; 4 rows, one per direction;
    # each 16 px frame at 4x plus a 1 px gap
    grid = np.asarray(Image.open(out))
    assert grid.shape[:2] == (4 * 65 + 1, 8 * 3 * 65 + 1)
    for d in range(4):
        for c in range(2):
            for f in range(3):
                y, x = 1 + d * 65 + 30, 1 + (c * 3 + f) * 65 + 30
                assert tuple(grid[y, x]) == tuple(cell(c, d, f)[0, 0])
    assert grid[1 + 30, 1 + 6 * 65 + 30, 3] == 0  # a third character's place is blank
    for args, message in [
        (["--frames", "2"], "--frames describe an animated set: give --layout too"),
        (["--layout", "rows", "--tile", "16"], "--tile and --size are for still sprite sets"),
        (["--layout", "rpgmaker"], "as 12 x 8 frames each would be 4x8, under the 8 px a frame needs"),
    ]:
        r = invoke(*["data", "inspect", str(tmp_path / "set"), *args, "--preview", str(out), "--force"])
        assert r.exit_code == 2 and message in r.output, r.output
        assert "Traceback" not in r.output
