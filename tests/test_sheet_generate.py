"""`sm sheet` generating its sprites from a model, then packing them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from scarlet_moon.cli.main import sm


def test_sheet_generates_named_frames_with_regeneration_data(tiny_model: Path, tmp_path: Path):
    out = tmp_path / "blue.png"
    res = CliRunner().invoke(
        sm,
        [
            "sheet",
            "--model",
            str(tiny_model),
            "--label",
            "2",
            "--count",
            "12",
            "--seed",
            "3",
            "--out",
            str(out),
            "--format",
            "json-hash,godot3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert {Path(p).name for p in res.stdout.split()} >= {"blue.png", "blue.json", "blue.tres"}
    atlas = json.loads((tmp_path / "blue.json").read_text())
    names = sorted(atlas["frames"])
    assert names == [f"blue_{i:03d}" for i in range(12)]
    assert atlas["animations"]["blue"] == names
    frame = atlas["frames"]["blue_004"]
    assert frame["frame"]["w"] == 8 and frame["frame"]["h"] == 8
    data = frame["data"]
    assert data["meta"]["seed"] == 3 and data["meta"]["batch_index"] == 4 and data["meta"]["label"] == "blue"
    sheet = np.asarray(Image.open(out))
    assert set(np.unique(sheet[..., 3])) <= {0, 255}


def test_sheet_matches_sample_pixels(tiny_model: Path, tmp_path: Path):
    """The frames of a sheet are exactly the sprites `sm sample` writes with the same options."""
    args = ["--model", str(tiny_model), "--label", "red", "--count", "4", "--seed", "9"]
    assert CliRunner().invoke(sm, ["sample", *args, "--out", str(tmp_path / "s")]).exit_code == 0
    res = CliRunner().invoke(sm, ["sheet", *args, "--out", str(tmp_path / "r.png"), "--no-dedupe"])
    assert res.exit_code == 0, res.output
    atlas = json.loads((tmp_path / "r.json").read_text())
    sheet = np.asarray(Image.open(tmp_path / "r.png").convert("RGBA"))
    for name, f in atlas["frames"].items():
        r = f["frame"]
        got = sheet[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]]
        want = np.asarray(Image.open(tmp_path / "s" / f"{name}.png").convert("RGBA"))
        assert np.array_equal(got, want), name


def test_sheet_refuses_to_replace_without_force(tiny_model: Path, tmp_path: Path):
    out = tmp_path / "h.png"
    args = ["sheet", "--model", str(tiny_model), "--count", "2", "--out", str(out)]
    assert CliRunner().invoke(sm, args).exit_code == 0
    before = out.read_bytes()
    res = CliRunner().invoke(sm, [*args, "--seed", "5"])
    assert res.exit_code == 2 and "--force" in res.stderr
    assert out.read_bytes() == before
    assert CliRunner().invoke(sm, [*args, "--seed", "5", "--force"]).exit_code == 0
    assert out.read_bytes() != before
