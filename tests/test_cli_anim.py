"""`sm anim` (and `sm train --layout`): walk cycles on the documented model and on a user's own set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT
from PIL import Image
from test_anim_model import DIRS, write_rows_set

from scarlet_moon.cli.main import sm

DOCUMENTED = ROOT / "models" / "crossfire-walk" / "model.safetensors"


def invoke(*args: str):
    return CliRunner().invoke(sm, ["--quiet", *map(str, args)])


def fine_tune(data: Path, init_from: object, steps: int, runs: Path):
    """`sm train` on a user's `rows` set from `init_from`, a few steps, as run `runs/ft` (no tracking)."""
    return invoke(
        "train", "--data", data, "--layout", "rows", "--init-from", init_from, "--steps", steps,
        "--batch-size", 4, "--runs-dir", runs, "--name", "ft", "--tracking", "none",
    )  # fmt: skip


def frames_of(sheet: Path) -> dict[str, np.ndarray]:
    px = np.asarray(Image.open(sheet).convert("RGBA"))
    out = {}
    for name, f in json.loads(sheet.with_suffix(".json").read_text())["frames"].items():
        r = f["frame"]
        out[name] = px[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]]
    return out


def characters(sheet: Path, names: list[str], frames: int) -> np.ndarray:
    got = frames_of(sheet)
    return np.stack([np.stack([np.stack([got[f"{c}_{d}_{i}"] for i in range(frames)]) for d in DIRS]) for c in names])


def check_walkers(out: Path, names: list[str], frames: int, fps: int, size: int) -> None:
    doc = json.loads(out.with_suffix(".json").read_text())
    want = {f"{c}_{d}": [f"{c}_{d}_{i}" for i in range(frames)] for c in names for d in DIRS}
    assert doc["animations"] == want
    assert {f["duration"] for f in doc["frames"].values()} == {round(1000 / fps)}
    assert {(f["frame"]["w"], f["frame"]["h"]) for f in doc["frames"].values()} == {(size, size)}
    gif = Image.open(out.with_suffix(".gif"))
    assert gif.n_frames == frames and gif.info["loop"] == 0


@pytest.fixture(scope="module")
def documented_sheet(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("walkers") / "walkers.png"
    res = invoke(
        "anim", "--model", DOCUMENTED, "--label", "player", "--count", 6, "--out", out, "--format", "json-hash,godot3"
    )
    assert res.exit_code == 0, res.output
    assert res.output.split() == [
        str(out),
        str(out.with_suffix(".json")),
        str(out.with_suffix(".tres")),
        str(out.with_name("walkers.png.import")),  # Godot 3 import settings (no filter)
        str(out.with_suffix(".gif")),
    ]
    return out


def test_documented_model_draws_walk_cycles_of_one_character_each(documented_sheet):
    from scarlet_moon.eval.anim_consistency import consistency

    names = [f"player_{k}" for k in range(6)]
    check_walkers(documented_sheet, names, frames=2, fps=8, size=32)
    fig = consistency(characters(documented_sheet, names, 2))
    # a character's frames share its colours and outline far more than two characters' frames do
    assert fig["palette_frames"] > 0.5 > fig["palette_frames_between"]
    assert fig["silhouette_frames"] > fig["silhouette_frames_between"] + 0.1
    assert fig["palette_directions"] > fig["palette_directions_between"] + 0.3


def test_redraw_one_direction_of_a_kept_character(documented_sheet, tmp_path):
    out = tmp_path / "again.png"
    res = invoke(
        "anim",
        "--model",
        DOCUMENTED,
        "--keep",
        documented_sheet,
        "--character",
        "player_2",
        "--redraw",
        "left",
        "--seed",
        9,
        "--out",
        out,
    )
    assert res.exit_code == 0, res.output
    before, after = frames_of(documented_sheet), frames_of(out)
    assert sorted(after) == sorted(f"player_2_{d}_{i}" for d in DIRS for i in range(2))
    for name, px in after.items():
        assert np.array_equal(px, before[name]) == ("_left_" not in name), name


def test_user_set_fine_tuned_from_the_bundled_model_then_drawn(tmp_path):
    """A user's own 16x16 walkers (rows layout), fine-tuned from the bundled sprite model, then `sm anim`."""
    data = write_rows_set(tmp_path / "mine", n=6, size=16, frames=3)
    res = fine_tune(data, "bundled", 6, tmp_path / "runs")
    assert res.exit_code == 0, res.output
    model = tmp_path / "runs" / "ft" / "model.safetensors"
    assert res.output.split()[-1] == str(model)
    card = json.loads((tmp_path / "runs" / "ft" / "config.json").read_text())
    assert card["init_from"] == "bundled-prior" and card["frames"] == 3 and card["layout"] == "rows"
    out = tmp_path / "knights.png"
    res = invoke(
        "anim",
        "--model",
        model,
        "--label",
        "knight",
        "--count",
        3,
        "--fps",
        6,
        "--steps",
        4,
        "--out",
        out,
        "--format",
        "json-hash,aseprite",
    )
    assert res.exit_code == 0, res.output
    check_walkers(out, ["knight_0", "knight_1", "knight_2"], frames=3, fps=6, size=16)
    tags = json.loads(out.with_name("knights.aseprite.json").read_text())["meta"]["frameTags"]
    assert [t["name"] for t in tags] == [f"knight_{k}_{d}" for k in range(3) for d in DIRS]
    assert all(t["to"] - t["from"] == 2 for t in tags)


def test_user_set_fine_tuned_from_the_documented_animation_model(tmp_path):
    """32x32 walkers with 2 frames: the documented model's every layer carries over."""
    data = write_rows_set(tmp_path / "mine32", n=4, size=32, frames=2)
    res = fine_tune(data, DOCUMENTED, 3, tmp_path / "runs")
    assert res.exit_code == 0, res.output
    out = tmp_path / "slimes.png"
    res = invoke(
        "anim",
        "--model",
        tmp_path / "runs" / "ft" / "model.safetensors",
        "--label",
        "slime",
        "--count",
        2,
        "--steps",
        3,
        "--out",
        out,
    )
    assert res.exit_code == 0, res.output
    check_walkers(out, ["slime_0", "slime_1"], frames=2, fps=8, size=32)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "bundled"], "draws single sprites, not animations"),
        (
            ["--model", DOCUMENTED, "--label", "wizard"],
            "unknown label 'wizard'; this model's labels are 0=monster, 1=player",
        ),
        (["--model", DOCUMENTED, "--out", "x.webp"], "must be a .png file name"),
        (
            ["--model", DOCUMENTED, "--keep", "x.png"],
            "editing takes --keep SHEET, --character NAME and at least one --redraw",
        ),
        (
            ["--model", DOCUMENTED, "--keep", "nope.png", "--character", "player_0", "--redraw", "up"],
            "editing needs the sheet and its json-hash atlas",
        ),
        (["--model", "missing.safetensors"], "missing.safetensors"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    res = invoke("anim", *args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not list(tmp_path.iterdir())  # nothing written


def test_existing_preview_is_not_overwritten_without_force(tmp_path):
    (tmp_path / "w.gif").write_bytes(b"mine")
    res = invoke("anim", "--model", DOCUMENTED, "--count", 1, "--steps", 2, "--out", tmp_path / "w.png")
    assert res.exit_code == 2 and "w.gif" in res.output and "--force" in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.gif"]


def test_an_edit_cannot_write_over_the_sheet_it_keeps(documented_sheet):
    before = documented_sheet.read_bytes()
    res = invoke(
        "anim",
        "--model",
        DOCUMENTED,
        "--keep",
        documented_sheet,
        "--character",
        "player_0",
        "--redraw",
        "up",
        "--out",
        documented_sheet,
        "--force",
    )
    assert res.exit_code == 2 and "outside the run's inputs" in res.output, res.output
    assert documented_sheet.read_bytes() == before


def test_train_animation_options_need_a_layout(tmp_path):
    res = invoke("train", "--data", tmp_path, "--frames", 2)
    assert res.exit_code == 2 and "--frames describes an animated set: it needs --layout" in res.output
    res = invoke("train", "--data", tmp_path, "--layout", "rows", "--resume", "x")
    assert res.exit_code == 2 and "does not support resuming" in res.output


def test_sprite_commands_refuse_an_animation_model_and_leave_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["sample", "--model", DOCUMENTED, "--out", "s"], ["sheet", "--model", DOCUMENTED, "--out", "s.png"]):
        res = invoke(*args)
        assert res.exit_code == 2 and "is an animation model" in res.output, (args, res.output)
    res = invoke("train", "--init-from", DOCUMENTED, "--steps", 1, "--tracking", "none")
    assert res.exit_code == 2 and "starts animation models only" in res.output, res.output
    res = invoke("train", "--init-from", "missing.safetensors", "--steps", 1)  # the default MLflow store's folder
    assert res.exit_code == 2, res.output
    assert not list(tmp_path.iterdir())  # no sample folder, no runs folder


def test_a_tampered_card_and_a_hostile_atlas_are_refused(tmp_path, documented_sheet):
    import shutil

    from scarlet_moon.models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(DOCUMENTED, with_optim=False)
    ckpt.meta["config"] = {**ckpt.meta["config"], "n_feat": 1024}  # would be gigabytes if built
    save_checkpoint(tmp_path / "big.safetensors", ckpt)
    res = invoke("anim", "--model", tmp_path / "big.safetensors", "--out", tmp_path / "w.png")
    assert res.exit_code == 2 and "the card or the weights were altered" in res.output, res.output
    shutil.copy(documented_sheet, tmp_path / "k.png")
    (tmp_path / "k.json").write_text("[" * 100_000 + "]" * 100_000)
    res = invoke(
        "anim",
        "--model",
        DOCUMENTED,
        "--keep",
        tmp_path / "k.png",
        "--character",
        "player_0",
        "--redraw",
        "up",
        "--out",
        tmp_path / "e.png",
    )
    assert res.exit_code == 2 and "cannot be read" in res.output and "Traceback" not in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.safetensors", "k.json", "k.png"]
