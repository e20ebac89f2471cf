"""`sm sample`, `sm labels`, `sm info` on a tiny trained model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scarlet_moon.cli.main import sm


def invoke(*args: str):
    return CliRunner().invoke(sm, list(args))


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


def test_same_seed_gives_byte_identical_pngs(tiny_model: Path, tmp_path: Path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "1"), (b, "1"), (c, "2")):
        res = invoke(
            "sample", "--model", str(tiny_model), "--label", "blue", "--count", "5", "--seed", seed, "--out", str(out)
        )
        assert res.exit_code == 0, res.output
    assert list(digests(a)) == [f"blue_{i:03d}.png" for i in range(5)]
    assert digests(a) == digests(b)
    assert digests(a) != digests(c)


def test_alpha_is_crisp_and_palette_is_respected(tiny_model: Path, tmp_path: Path):
    pal = tmp_path / "p.gpl"
    pal.write_text("GIMP Palette\nName: test\n#\n255 0 0 red\n0 255 0 green\n0 0 255 blue\n20 20 20 dark\n")
    res = invoke(
        "sample",
        "--model",
        str(tiny_model),
        "--label",
        "0",
        "--label",
        "green",
        "--count",
        "6",
        "--out",
        str(tmp_path / "o"),
        "--palette",
        str(pal),
        "--alpha-threshold",
        "100",
    )
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "o").glob("*.png"))
    assert names == ["green_000.png", "green_001.png", "green_002.png", "red_000.png", "red_001.png", "red_002.png"]
    allowed = {(255, 0, 0), (0, 255, 0), (0, 0, 255), (20, 20, 20)}
    for p in (tmp_path / "o").glob("*.png"):
        arr = np.asarray(Image.open(p).convert("RGBA"))
        assert set(np.unique(arr[..., 3])) <= {0, 255}
        opaque = {tuple(int(v) for v in px) for px in arr[arr[..., 3] == 255][:, :3]}
        assert opaque <= allowed


def test_grid_scale_and_json(tiny_model: Path, tmp_path: Path):
    res = invoke(
        "sample",
        "--model",
        str(tiny_model),
        "--label",
        "red",
        "--count",
        "2",
        "--out",
        str(tmp_path / "o"),
        "--grid",
        str(tmp_path / "grid.png"),
        "--scale",
        "4",
        "--json",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [Path(f["path"]).name for f in doc["files"]] == ["red_000.png", "red_001.png"]
    assert Image.open(doc["files"][0]["scaled"]).size == (32, 32)
    assert doc["meta"]["seed"] == 0 and doc["meta"]["size"] == [8, 8]
    assert (tmp_path / "grid.png").is_file()


@pytest.mark.parametrize("label", ["99", "dragon", "-1"])
def test_unknown_label_lists_the_labels_and_exits_2(tiny_model: Path, tmp_path: Path, label: str):
    res = invoke("sample", "--model", str(tiny_model), "--label", label, "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    line = res.stderr.strip()
    assert "\n" not in line and repr(label) in line and "0=red, 1=green, 2=blue" in line


def test_labels_and_info(tiny_model: Path):
    res = invoke("labels", "--model", str(tiny_model))
    assert res.stdout.splitlines() == ["0\tred", "1\tgreen", "2\tblue"]
    assert json.loads(invoke("labels", "--model", str(tiny_model), "--json").stdout)[2] == {"index": 2, "name": "blue"}
    card = json.loads(invoke("info", str(tiny_model), "--json").stdout)
    assert card["labels"] == ["red", "green", "blue"] and card["training_steps"] == 30
    assert card["size"] == "8x8" and card["params"] > 0 and len(card["data_fingerprint"]) == 16
    lines = invoke("info", str(tiny_model)).stdout.splitlines()  # redirected: key<TAB>value on stdout
    assert lines[1] == 'labels\t["red", "green", "blue"]' and "training_steps\t30" in lines


def test_out_folder_whose_parent_is_missing(tiny_model: Path, tmp_path: Path):
    res = invoke("sample", "--model", str(tiny_model), "--out", str(tmp_path / "no" / "such"))
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_nan_during_sampling_is_reported_with_the_step(tiny_model: Path, tmp_path: Path):
    res = invoke("sample", "--model", str(tiny_model), "--guidance", "1e39", "--out", str(tmp_path / "o"))
    assert res.exit_code == 1, res.output
    assert "NaN/inf at step 1" in res.stderr and "--guidance" in res.stderr
    assert not list((tmp_path / "o").glob("*.png"))


def test_python_api_generate_returns_pil_images(tiny_model: Path):
    import scarlet_moon
    import scarlet_moon.generation  # noqa: F401  (the subpackage must not shadow the function)

    images = scarlet_moon.generate(model=tiny_model, label=["red", "blue"], count=3, seed=4)
    assert [im.size for im in images] == [(8, 8)] * 3 and all(im.mode == "RGBA" for im in images)
    again = scarlet_moon.generate(model=tiny_model, label=["red", "blue"], count=3, seed=4)
    assert [im.tobytes() for im in images] == [im.tobytes() for im in again]


@pytest.mark.parametrize("scale, blocked", [(1, "red_001.png"), (3, "red_000_x3.png")])
def test_a_folder_where_a_sprite_goes_is_one_line_exit_2_before_sampling(
    tiny_model: Path, tmp_path: Path, scale: int, blocked: str
):
    (tmp_path / "o" / blocked).mkdir(parents=True)
    res = invoke(
        "sample",
        "--model",
        str(tiny_model),
        "--label",
        "red",
        "--count",
        "2",
        "--scale",
        str(scale),
        "--out",
        str(tmp_path / "o"),
    )
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        f"error: --out {str(tmp_path / 'o')!r}: {blocked!r} there is a folder; expected a file name free for a PNG"
    )
    assert [p.name for p in (tmp_path / "o").iterdir()] == [blocked]  # nothing written, no half-file


def test_indexes_past_999_keep_counting():
    from scarlet_moon.generation.names import file_names

    names = file_names(["red", "green"], [0] * 1001 + [1])
    assert names[0] == ("red_000", 0) and names[1000] == ("red_1000", 1000) and names[-1] == ("green_000", 0)
