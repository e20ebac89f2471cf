"""`sm train` from the command line: bad data, config files, help."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_train import _tiny_toml

from scarlet_moon.cli.main import sm


def png_folder(root: Path) -> Path:
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            arr = np.zeros((16, 16, 4), np.uint8)
            arr[4:12, 4:12] = (200, 40 * i, 10, 255)
            Image.fromarray(arr, "RGBA").save(root / label / f"{i}.png")
    return root


def invoke(*args: str):
    return CliRunner().invoke(sm, list(args))


@pytest.mark.parametrize(
    "breakage, named",
    [
        ("wrong_size", "bad.png"),
        ("text_as_png", "notes.png"),
        ("empty_label", "empty"),
    ],
)
def test_bad_png_folders_are_one_line_errors_with_exit_2(tmp_path: Path, breakage: str, named: str):
    root = png_folder(tmp_path / "set")
    if breakage == "wrong_size":
        Image.new("RGBA", (17, 16), (255, 0, 0, 255)).save(root / "a" / "bad.png")
    elif breakage == "text_as_png":
        (root / "b" / "notes.png").write_text("this is not an image")
    else:
        (root / "empty").mkdir()
    res = invoke("train", "--data", str(root), "--tracking", "none", "--runs-dir", str(tmp_path / "runs"))
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path):
    res = CliRunner().invoke(sm, ["--debug", "train", "--data", str(tmp_path / "missing"), "--tracking", "none"])
    assert res.exit_code == 2 and "Traceback (most recent call last)" in res.stderr
    assert res.stderr.strip().splitlines()[-1] == f"error: data path {str(tmp_path / 'missing')!r} does not exist"


def test_an_unknown_top_level_flag_is_one_line():
    res = CliRunner().invoke(sm, ["--bogus", "train"])
    assert res.exit_code == 2 and res.stderr.strip().splitlines() == [
        "error: No such option '--bogus'. Did you mean '--verbose'? (see 'sm --help')"
    ]


def test_train_on_png_folder_via_toml_config(tmp_path: Path):
    root = png_folder(tmp_path / "set")
    res = invoke(
        "-q",
        "train",
        "--data",
        str(root),
        "--tracking",
        "none",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--name",
        "png",
        "--config",
        str(_tiny_toml(tmp_path, steps=3)),
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "png" / "model.safetensors").is_file()


def test_flags_override_the_config_file(tmp_path: Path, npy_set: Path):
    from scarlet_moon.models.card import read_meta

    res = invoke(
        "-q",
        "train",
        "--data",
        str(npy_set),
        "--tracking",
        "none",
        "--runs-dir",
        str(tmp_path / "r"),
        "--name",
        "x",
        "--config",
        str(_tiny_toml(tmp_path, steps=3)),
        "--steps",
        "2",
    )
    assert res.exit_code == 0, res.output
    assert read_meta(tmp_path / "r" / "x" / "model.safetensors")["step"] == 2


def test_unknown_config_key_names_it(tmp_path: Path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nstepz = 3\n")
    res = invoke("train", "--config", str(cfg), "--tracking", "none")
    assert res.exit_code == 2 and "'stepz'" in res.stderr


def test_resume_of_missing_run_is_a_usage_error(tmp_path: Path):
    res = invoke("train", "--resume", str(tmp_path / "nope"), "--tracking", "none", "--runs-dir", str(tmp_path))
    assert res.exit_code == 2 and "nope" in res.stderr


def test_train_help_lists_the_options_that_matter():
    res = invoke("train", "--help")
    for flag in (
        "--data",
        "--preset",
        "--config",
        "--steps",
        "--resume",
        "--tracking",
        "--wandb",
        "--sample-every",
        "--checkpoint-every",
        "--background-key",
        "--tile",
    ):
        assert flag in res.stdout


def tileset(root: Path) -> Path:
    """A 4x3-cell sheet of 8x8 tiles and a CSV naming 6 of its cells."""
    root.mkdir(parents=True)
    sheet = np.zeros((24, 32, 4), np.uint8)
    rows = ["row,col,label,name"]
    for i, (r, c) in enumerate([(0, 0), (0, 1), (1, 2), (2, 3), (2, 0), (1, 1)]):
        sheet[r * 8 + 2 : r * 8 + 6, c * 8 + 2 : c * 8 + 6] = (30 * i, 200, 50, 255)
        rows.append(f"{r},{c},{'wall' if i % 2 else 'floor'},cell {i}")
    Image.fromarray(sheet, "RGBA").save(root / "tiles.png")
    (root / "cells.csv").write_text("\n".join(rows) + "\n")
    return root


def keyed_folder(root: Path) -> Path:
    """RGB sprites drawn on a solid magenta background, one subfolder per label."""
    for label in ("x", "y"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            arr = np.zeros((8, 8, 3), np.uint8)
            arr[:] = (255, 0, 255)
            arr[2:6, 2:6] = (10, 100 + 40 * i, 200)
            Image.fromarray(arr, "RGB").save(root / label / f"{i}.png")
    return root


@pytest.mark.parametrize("kind", ["npy", "png", "tileset", "keyed"])
def test_train_on_each_input_kind(tmp_path: Path, npy_set: Path, kind: str):
    from scarlet_moon.models.card import read_meta

    data, extra = {
        "npy": (npy_set, []),
        "png": (png_folder(tmp_path / "png"), []),
        "tileset": (tileset(tmp_path / "tiles"), ["--tile", "8"]),
        "keyed": (keyed_folder(tmp_path / "keyed"), ["--background-key", "FF00FF"]),
    }[kind]
    res = invoke(
        "-q",
        "train",
        "--data",
        str(data),
        *extra,
        "--tracking",
        "none",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--name",
        kind,
        "--config",
        str(_tiny_toml(tmp_path, steps=2)),
    )
    assert res.exit_code == 0, res.output
    meta = read_meta(tmp_path / "runs" / kind / "model.safetensors")
    expected = {"npy": ["red", "green", "blue"], "png": ["a", "b"], "tileset": ["floor", "wall"], "keyed": ["x", "y"]}[
        kind
    ]
    assert meta["label_names"] == expected and meta["channels"] == 4
    if kind == "keyed":  # the key colour became transparent: it is not in the palette
        assert [255, 0, 255] not in meta["palette"]
