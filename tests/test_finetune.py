"""`sm train --init-from MODEL|bundled` (fine-tuning a prior), `--time` (a wall-clock budget the LR
schedule spans) and `--threads`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from scarlet_moon.cli.main import sm
from scarlet_moon.data.sprites import load_sprites
from scarlet_moon.errors import BadInput
from scarlet_moon.models.card import BUNDLED_PRIOR, BUNDLED_TEACHER, file_fingerprint, read_meta
from scarlet_moon.models.checkpoint import load_checkpoint
from scarlet_moon.training.finetune import label_rows
from scarlet_moon.training.threads import Threads, check_threads


def own_set(root: Path) -> Path:
    """Another game's 16x16 sprites in PNG folders: 'hero' (a label the bundled model knows) and 'slime' (new)."""
    bundled = load_sprites(None)
    heroes = bundled.images[bundled.labels == bundled.label_names.index("hero")][:12]
    for label, images in (("hero", heroes), ("slime", np.roll(heroes, 3, axis=-1))):
        (root / label).mkdir(parents=True)
        for i, im in enumerate(images):
            Image.fromarray(im, "RGBA").save(root / label / f"{i:02d}.png")
    return root


def test_label_rows_keep_matching_names_and_start_new_ones_from_the_mean():
    rows = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # labels a, b, c, then the null row
    out = label_rows(rows, ["a", "b", "c"], ["c", "new", "a"])
    assert torch.equal(out[0], rows[2]) and torch.equal(out[2], rows[0]) and torch.equal(out[3], rows[3])
    assert torch.equal(out[1], rows[:3].mean(dim=0))


def test_a_new_labels_row_is_the_runs_fresh_row_and_a_known_one_the_parents():
    rows = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # labels a, b, c, then the null row
    fresh = -torch.arange(12, dtype=torch.float32).reshape(4, 3)  # the run's own rows for x, y, a, null
    out = label_rows(rows, ["a", "b", "c"], ["x", "y", "a"], fresh)
    assert torch.equal(out[0], fresh[0]) and torch.equal(out[1], fresh[1]) and torch.equal(out[2], rows[0])
    assert torch.equal(out[3], rows[3])  # the parent's null row: guidance keeps working


def test_label_rows_learn_faster_by_label_lr_scale_and_a_resume_keeps_the_groups(tmp_path: Path):
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.runs import train_run

    data = load_sprites(own_set(tmp_path / "own"))
    cfg = DEFAULT.replace({"steps": 2, "sample_every": 0, "batch_size": 4, "label_lr_scale": 10.0})
    res = train_run(cfg, data, runs_root=tmp_path / "runs", trackers={}, name="g")
    ckpt = load_checkpoint(res.checkpoint)
    groups = ckpt.meta["optim_groups"]
    assert [g.get("lr_scale", 1.0) for g in groups] == [1.0, 10.0] and groups[1]["lr"] == 10 * groups[0]["lr"]
    more = train_run(
        cfg.replace({"steps": 3}),
        data,
        runs_root=tmp_path / "runs",
        trackers={},
        resume=tmp_path / "runs" / "g",
        given=["steps"],
    )
    assert load_checkpoint(more.checkpoint).meta["step"] == 3


def test_fine_tuning_the_bundled_model_on_other_labels_for_a_time_budget(tmp_path: Path):
    """The must-show: a PNG-folder set with other label names, `--init-from bundled --time`: the run
    writes a model `sm sample` uses; 'hero' kept its embedding, the parent is on the card and in MLflow."""
    data, runs = own_set(tmp_path / "own"), tmp_path / "runs"
    res = CliRunner().invoke(
        sm,
        [
            "train",
            "--data",
            str(data),
            "--init-from",
            "bundled",
            "--time",
            "4s",
            "--runs-dir",
            str(runs),
            "--name",
            "ft",
            "--sample-every",
            "0",
            "--batch-size",
            "8",
            "--checkpoint-every",
            "0",
        ],
    )
    assert res.exit_code == 0, res.output
    meta = read_meta(runs / "ft" / "model.safetensors")
    assert meta["label_names"] == ["hero", "slime"] and meta["parent"]["labels_kept"] == ["hero"]
    assert meta["parent"]["fingerprint"] == file_fingerprint(BUNDLED_PRIOR)  # the ordinary denoiser, not a student
    assert meta["parent"]["name"] == "bundled-prior"
    assert meta["config"]["time_budget"] == 4.0 and meta["config"]["steps"] == meta["step"] > 0
    assert meta["config"]["n_feat"] == read_meta(BUNDLED_PRIOR)["config"]["n_feat"]  # the parent's network
    assert meta["config"]["label_lr_scale"] == 10.0  # a fine-tune's defaults (finetune-recipe.md)
    assert meta["config"]["lr"] == 1e-3 and meta["config"]["init_shrink"] == 0.5
    assert "distilled" not in meta  # sampled with guidance between rows again, like any trained model
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("scarlet-moon").experiment_id])[0]
    assert run.data.params["init_from_fingerprint"] == file_fingerprint(BUNDLED_PRIOR)
    assert client.get_metric_history(run.info.run_id, "lr")  # how far the schedule got: test_budgeted_lr_...
    info = CliRunner().invoke(sm, ["info", "--json", str(runs / "ft" / "model.safetensors")])
    assert json.loads(info.stdout)["parent"]["fingerprint"] == file_fingerprint(BUNDLED_PRIOR), info.output
    assert "chosen at the end of training" in json.loads(info.stdout)["post_chosen"]  # its finishing, and why
    out = CliRunner().invoke(
        sm,
        [
            "sample",
            "--model",
            str(runs / "ft" / "model.safetensors"),
            "--label",
            "slime",
            "--count",
            "2",
            "--steps",
            "3",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert out.exit_code == 0 and len(list((tmp_path / "s").glob("slime_*.png"))) == 2
    sheet = CliRunner().invoke(
        sm,
        [
            "sheet",
            "--model",
            str(runs / "ft" / "model.safetensors"),
            "--label",
            "slime",
            "--label",
            "hero",
            "--count",
            "4",
            "--steps",
            "3",
            "--out",
            str(tmp_path / "ft.png"),
            "--format",
            "json-hash,godot3",
        ],
    )
    assert sheet.exit_code == 0, sheet.output
    atlas = json.loads((tmp_path / "ft.json").read_text())
    assert sorted(atlas["frames"]) == ["hero_000", "hero_001", "slime_000", "slime_001"]
    assert (tmp_path / "ft.png").is_file() and (tmp_path / "ft.tres").is_file()


def test_fine_tuning_starts_from_the_parents_weights(tmp_path: Path):
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.runs import train_run

    data = load_sprites(own_set(tmp_path / "own"))
    res = train_run(
        DEFAULT.replace({"steps": 1, "sample_every": 0, "batch_size": 4, "lr": 1e-12, "init_shrink": 1.0}),
        data,
        runs_root=tmp_path / "runs",
        trackers={},
        name="one",
        init_from=BUNDLED_TEACHER,
        given=("lr", "init_shrink"),  # as if given on the command line: a fine-tune's defaults stay out
    )
    mine, theirs = load_checkpoint(res.checkpoint).model, load_checkpoint(BUNDLED_TEACHER).weights
    assert torch.allclose(mine["inp.weight"], theirs["inp.weight"], atol=1e-6)  # one step at lr 1e-12
    hero = load_sprites(None).label_names.index("hero")
    assert torch.allclose(mine["label_emb.weight"][0], theirs["label_emb.weight"][hero], atol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--timesteps", "500"], "timesteps (parent 1000, asked 500)"),
        (["--n-feat", "16"], "n_feat (parent 32, asked 16)"),
    ],
)
def test_fine_tuning_refuses_a_new_network_or_schedule(tmp_path: Path, args, message):
    res = CliRunner().invoke(
        sm,
        [
            "train",
            "--data",
            str(own_set(tmp_path / "own")),
            "--init-from",
            "bundled",
            "--tracking",
            "none",
            "--runs-dir",
            str(tmp_path / "runs"),
            *args,
        ],
    )
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_fine_tuning_needs_the_same_sprite_size(npy_set: Path, tmp_path: Path):
    res = CliRunner().invoke(
        sm,
        [
            "train",
            "--data",
            str(npy_set),
            "--init-from",
            "bundled",
            "--tracking",
            "none",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "makes 16x16 sprites with 4 channels; the data" in res.stderr and "holds 8x8" in res.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_time_budget_parsing_and_threads():
    from scarlet_moon.training.config import parse_duration

    assert [parse_duration(v) for v in ("90s", "30m", "1.5h", 12, "2d")] == [90, 1800, 5400, 12, 172800]
    with pytest.raises(BadInput, match="time 'soon'"):
        parse_duration("soon")
    assert check_threads(None) == 0 and check_threads(3) == 3
    with pytest.raises(BadInput, match="threads -1"):
        check_threads(-1)
    before = torch.get_num_threads()
    try:
        Threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_budgeted_lr_follows_the_share_of_the_budget_spent_not_the_step():
    """With --time the warm-up ends at 5% of the budget (or warmup_steps, if sooner) and the cosine
    decay reaches its floor (0.1 x lr) when the budget is spent, whatever step a machine got to."""
    from scarlet_moon.training.config import TrainConfig
    from scarlet_moon.training.loop import lr_at

    cfg = TrainConfig(lr=1e-3, warmup_steps=10_000, time_budget=60.0)
    assert lr_at(0, cfg, spent=0.0) == pytest.approx(1e-3 / 10_000)  # the first step warms up
    assert lr_at(3, cfg, spent=0.025) == pytest.approx(0.5 * lr_at(3, cfg, spent=0.05), rel=0.01)  # half-way up
    assert lr_at(3, cfg, spent=0.05) == pytest.approx(1e-3, rel=0.01)  # warm at 5% of the budget
    assert lr_at(5, cfg, spent=0.5) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5), rel=0.02)  # half-way down
    assert lr_at(5, cfg, spent=1.0) == pytest.approx(1e-4) == lr_at(50_000, cfg, spent=1.0)  # the floor
    assert lr_at(5, cfg, spent=1.7) == pytest.approx(1e-4)  # past the budget: stays at the floor
    fast, slow = lr_at(9_000, cfg, spent=0.8), lr_at(90, cfg, spent=0.8)
    assert fast == pytest.approx(slow)  # decay by time: a slow machine is not left at a high LR


def test_threads_flag_reaches_torch(npy_set: Path, tmp_path: Path):
    from test_train import _tiny_toml

    before = torch.get_num_threads()
    try:
        res = CliRunner().invoke(
            sm,
            [
                "-q",
                "train",
                "--data",
                str(npy_set),
                "--tracking",
                "none",
                "--threads",
                "1",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--name",
                "t",
                "--config",
                str(_tiny_toml(tmp_path, steps=2)),
            ],
        )
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1 and (tmp_path / "runs" / "t" / "model.safetensors").is_file()
    finally:
        torch.set_num_threads(before)
    bad = CliRunner().invoke(sm, ["train", "--data", str(npy_set), "--tracking", "none", "--threads", "-2"])
    assert bad.exit_code == 2 and "--threads -2" in bad.stderr


def test_a_fine_tunes_card_reports_its_last_grids_copies(tmp_path: Path):
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.runs import train_run

    data = load_sprites(own_set(tmp_path / "own"))
    res = train_run(
        DEFAULT.replace({"steps": 1, "sample_every": 1, "batch_size": 4, "sample_steps": 2}),
        data,
        runs_root=tmp_path / "runs",
        trackers={},
        name="c",
        init_from="bundled",
    )
    copies = read_meta(res.model)["grid_copies"]
    assert copies["step"] == 1 and 0.0 <= copies["share"] <= 1.0 and copies["share"] == res.grid_copies


def test_shrink_and_perturb_starts_between_the_prior_and_a_fresh_init():
    from scarlet_moon.training.finetune import LABEL_ROWS, shrunk

    prior = {"conv.weight": torch.full((2, 2), 4.0), LABEL_ROWS: torch.ones(3, 2), "step": torch.tensor(7)}
    fresh = {"conv.weight": torch.zeros(2, 2), LABEL_ROWS: torch.zeros(3, 2), "step": torch.tensor(0)}
    out = shrunk(prior, fresh, 0.25)
    assert torch.equal(out["conv.weight"], torch.full((2, 2), 1.0))  # 0.25 x 4 + 0.75 x 0
    assert torch.equal(out[LABEL_ROWS], prior[LABEL_ROWS]) and torch.equal(out["step"], prior["step"])
    assert shrunk(prior, fresh, 1.0) is prior


def test_init_shrink_needs_a_prior_and_a_value_in_range(npy_set: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    base = ["train", "--data", str(npy_set), "--tracking", "none", "--runs-dir", str(runs), "--steps", "1"]
    res = CliRunner().invoke(sm, [*base, "--init-shrink", "0.5"])
    assert res.exit_code == 2 and "--init-shrink 0.5 shrinks the weights of a prior: it needs --init-from" in res.output
    res = CliRunner().invoke(sm, [*base, "--init-from", "bundled", "--init-shrink", "0"])
    assert res.exit_code == 2 and "bad init_shrink=0.0" in res.output and "(0, 1]" in res.output
    assert not runs.exists() or not any(runs.iterdir())
