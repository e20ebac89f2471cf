"""`sm eval` end-to-end on a tiny trained model, `--real`, `--write-card`, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_sprites

from scarlet_moon.cli.main import sm

GROUPS = ("frechet", "conditional_accuracy", "copies", "pixels")


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model: Path, tiny_set: Path) -> dict[str, Path]:
    """The tiny model, its data set, and a classifier cache shared by the module."""
    root = tmp_path_factory.mktemp("eval")
    return {"model": tiny_model, "data": tiny_set, "cache": root / "cache", "root": root}


def invoke(env: dict[str, Path], *args: str):
    return CliRunner().invoke(sm, ["eval", "--data", str(env["data"]), "--cache-dir", str(env["cache"]), *args])


def test_eval_writes_all_figure_groups(env, tmp_path: Path):
    out = tmp_path / "m.json"
    res = invoke(env, "--model", str(env["model"]), "--count", "9", "--seed", "3", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    fig = json.loads(out.read_text())
    assert fig["mode"] == "generated" and all(g in fig for g in GROUPS)
    gen = fig["generation"]
    assert gen["count"] == 9 and sum(gen["per_label"].values()) == 9 and gen["seed"] == 3
    assert gen["sampler"] == "dpmpp-2m" and gen["steps"] == 4 and gen["raw"] is False
    assert fig["frechet"]["distance"] >= 0 and fig["frechet"]["n_candidates"] == 9
    assert 0 <= fig["conditional_accuracy"]["overall"] <= 1
    assert set(fig["conditional_accuracy"]["per_label"]) == {"red", "green", "blue"}
    assert fig["copies"]["threshold"] > 0 and 0 <= fig["copies"]["share"] <= 1
    assert fig["pixels"]["alpha_crispness"]["candidates"] == 1.0  # finish() makes alpha crisp
    assert "conv3x3" in fig["classifier"]["architecture"] and fig["classifier"]["cache_file"].endswith(".safetensors")
    assert "Frechet" in res.stderr  # the rich table
    # 9 generated vs 6 held out: FD's small-sample bias differs, so no ratio to the floor, and a note says why
    assert fig["frechet"]["like_for_like"] is False and fig["frechet"]["ratio_to_floor"] is None
    assert fig["frechet"]["n_floor"] == 6 and fig["frechet"]["floor"] > 0
    assert "not compared with the floor" in res.stderr


def test_eval_by_default_generates_the_held_out_count_per_label_and_gives_the_ratio(env, tmp_path: Path):
    out = tmp_path / "d.json"
    res = invoke(env, "--model", str(env["model"]), "--out", str(out))
    assert res.exit_code == 0, res.output
    fig = json.loads(out.read_text())
    fr = fig["frechet"]
    assert fr["n_candidates"] == fr["n_floor"] == fig["split"]["held_out"] == 6
    assert fig["generation"]["per_label"] == {"red": 2, "green": 2, "blue": 2}  # the held-out split's mix
    assert fr["like_for_like"] is True and fr["ratio_to_floor"] == pytest.approx(fr["distance"] / fr["floor"])
    assert "not compared with the floor" not in res.stderr


def test_eval_real_needs_no_model_and_gives_the_floor(env, tmp_path: Path):
    out = tmp_path / "r.json"
    res = invoke(env, "--real", "--out", str(out))
    assert res.exit_code == 0, res.output
    fig = json.loads(out.read_text())
    assert fig["mode"] == "real" and fig["model"] is None and fig["generation"] is None
    assert all(g in fig for g in GROUPS)
    assert fig["frechet"]["n_candidates"] == fig["split"]["held_out"] == 6
    assert fig["conditional_accuracy"]["overall"] == pytest.approx(fig["classifier"]["held_out_accuracy"])
    assert fig["classifier"]["cached"] is True  # trained by the first test or fixture run
    assert fig["pixels"]["alpha_crispness"]["candidates"] == 1.0


def test_python_api_raw_and_write_card(env, tmp_path: Path):
    import shutil

    from scarlet_moon.backends import read_card
    from scarlet_moon.eval.metrics import evaluate, write_card_metrics
    from scarlet_moon.models.checkpoint import load_checkpoint
    from scarlet_moon.options import SamplingOptions

    fig = evaluate(
        env["model"],
        env["data"],
        count=3,
        seed=0,
        sampling=SamplingOptions("ddim", 2, 1.0),
        raw=True,
        cache_dir=env["cache"],
    )
    assert fig["generation"]["raw"] is True and fig["generation"]["sampler"] == "ddim"
    model = tmp_path / "copy.safetensors"
    shutil.copy(env["model"], model)
    before = load_checkpoint(model)
    write_card_metrics(model, fig)
    card = read_card(model)
    assert card.meta["metrics"]["eval"]["fd"] == fig["frechet"]["distance"]
    assert card.meta["metrics"]["eval"]["steps"] == 2
    after = load_checkpoint(model)
    assert {k: v.tolist() for k, v in after.weights.items()} == {k: v.tolist() for k, v in before.weights.items()}
    assert {k: before.meta[k] for k in before.meta if k != "metrics"} == {
        k: after.meta[k] for k in after.meta if k != "metrics"
    }


def test_cli_write_card(env, tmp_path: Path):
    import shutil

    from scarlet_moon.backends import read_card

    model = tmp_path / "m.safetensors"
    shutil.copy(env["model"], model)
    res = invoke(
        env, "--model", str(model), "--count", "3", "--steps", "2", "--write-card", "--out", str(tmp_path / "m.json")
    )
    assert res.exit_code == 0, res.output
    assert read_card(model).meta["metrics"]["eval"]["count"] == 3
    res = invoke(env, "--model", str(model), "--real", "--write-card", "--out", str(tmp_path / "x.json"))
    assert res.exit_code == 2 and "--write-card" in res.stderr


def test_bad_input_exits_2_with_one_line(env, tmp_path: Path):
    res = invoke(env, "--model", str(tmp_path / "nope.safetensors"), "--count", "2", "--out", str(tmp_path / "a.json"))
    assert res.exit_code == 2 and "nope.safetensors" in res.stderr and "\n" not in res.stderr.strip()

    other = tmp_path / "other"
    other.mkdir()
    imgs, onehot = make_sprites(n=20, size=8, classes=2)
    np.save(other / "sprites.npy", imgs)
    np.save(other / "sprites_labels.npy", onehot)
    res = CliRunner().invoke(
        sm,
        [
            "eval",
            "--model",
            str(env["model"]),
            "--data",
            str(other),
            "--count",
            "2",
            "--cache-dir",
            str(env["cache"]),
            "--out",
            str(tmp_path / "b.json"),
        ],
    )
    assert res.exit_code == 2 and "labels" in res.stderr and "\n" not in res.stderr.strip()

    big = tmp_path / "big"
    big.mkdir()
    imgs, onehot = make_sprites(n=20, size=16, classes=3)
    np.save(big / "sprites.npy", imgs)
    np.save(big / "sprites_labels.npy", onehot)
    (big / "labels.txt").write_text("red\ngreen\nblue\n")
    res = CliRunner().invoke(
        sm,
        [
            "eval",
            "--model",
            str(env["model"]),
            "--data",
            str(big),
            "--count",
            "2",
            "--cache-dir",
            str(env["cache"]),
            "--out",
            str(tmp_path / "c.json"),
        ],
    )
    assert res.exit_code == 2 and "16x16" in res.stderr and "8x8" in res.stderr
    assert not (tmp_path / "c.json").exists()

    res = invoke(env, "--real", "--out", str(tmp_path / "no" / "such.json"))
    assert res.exit_code == 2 and "does not exist" in res.stderr
