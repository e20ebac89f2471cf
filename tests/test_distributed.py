"""torchrun + DDP: 2 CPU ranks (gloo) train exactly as one process on the same global batch."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import HANG, ROOT, TINY, sm_cmd
from safetensors.torch import load_file

from scarlet_moon.cli.main import sm
from scarlet_moon.data.sprites import load_sprites
from scarlet_moon.training.config import DEFAULT
from scarlet_moon.training.loop import train_step
from scarlet_moon.training.runs import train_run
from scarlet_moon.training.state import build_state

# Constant lr after warm-up: a run of 3 steps resumed to 6 is the same as a run of 6.
SETTINGS = {**TINY, "steps": 6, "lr_schedule": "constant", "checkpoint_every": 2, "sample_every": 3}
# Logs every atomic write (os.replace) of a torchrun worker to spy/rank<RANK>.log.
SPY = """import os
if "RANK" in os.environ:
    _replace, _log = os.replace, os.path.join(os.path.dirname(__file__), "rank" + os.environ["RANK"] + ".log")
    def _spy(src, dst, *args, **kw):
        with open(_log, "a") as f:
            f.write(os.path.basename(str(dst)) + "\\n")
        return _replace(src, dst, *args, **kw)
    os.replace = _spy
"""


def _toml(path: Path, settings: dict) -> Path:
    values = {k: json.dumps(v) if isinstance(v, (str, bool, list)) else v for k, v in settings.items()}
    path.write_text("[train]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return path


def assert_close_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k].double(), wb[k].double(), rtol=0, atol=1e-5), k


@pytest.mark.slow
def test_two_gloo_ranks_train_and_resume_like_one_process(npy_set: Path, tmp_path: Path, sm_env):
    single = train_run(
        DEFAULT.replace(SETTINGS), load_sprites(npy_set), runs_root=tmp_path / "single", trackers={}, name="one"
    )
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SPY)
    env = dict(sm_env, PYTHONPATH=f"{spy}{os.pathsep}{ROOT}", OMP_NUM_THREADS="1")
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--device", "cpu"]
    first = subprocess.run(
        sm_cmd(
            "-q",
            "train",
            "--nproc",
            "2",
            "--data",
            str(npy_set),
            "--name",
            "ddp",
            *common,
            "--config",
            str(_toml(tmp_path / "tiny.toml", SETTINGS)),
            "--steps",
            "3",
        ),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [str(runs / "ddp"), str(runs / "ddp" / "model.safetensors")]
    resumed = subprocess.run(
        sm_cmd("-q", "train", "--nproc", "2", "--resume", "ddp", "--steps", "6", *common),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_close_weights(single.checkpoint, runs / "ddp" / "checkpoint.safetensors")  # weights, EMA, Adam
    assert_close_weights(single.model, runs / "ddp" / "model.safetensors")
    # rank 0 alone wrote: one run folder, its files, one MLflow run with each step logged once
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ["ddp", "mlartifacts"]
    assert sorted(p.name for p in (runs / "ddp" / "samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    assert sorted(p.name for p in spy.glob("*.log")) == ["rank0.log"]  # rank 1 replaced no file at all
    writes = set((spy / "rank0.log").read_text().split())
    assert {"config.json", "checkpoint.safetensors", "model.safetensors", "step_000006.png"} <= writes
    with sqlite3.connect(runs / "mlflow.db") as db:
        assert db.execute("select status from runs").fetchall() == [("FINISHED",)]
        steps = db.execute("select step from metrics where key = 'loss' order by step").fetchall()
    assert [s for (s,) in steps] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
@pytest.mark.slow
def test_two_ranks_with_a_time_budget_stop_after_the_same_step(npy_set: Path, tmp_path: Path, sm_env):
    """--time under torchrun: the ranks share one clock (the slowest's), so they stop after the same
    step with the same weights; each on its own clock, one would wait for the other's gradients."""
    from scarlet_moon.models.card import read_meta

    settings = {k: v for k, v in SETTINGS.items() if k not in ("steps", "lr_schedule")}
    runs = tmp_path / "runs"
    res = subprocess.run(
        sm_cmd(
            "-q",
            "train",
            "--nproc",
            "2",
            "--data",
            str(npy_set),
            "--name",
            "timed",
            "--time",
            "3s",
            "--runs-dir",
            str(runs),
            "--device",
            "cpu",
            "--tracking",
            "none",
            "--config",
            str(_toml(tmp_path / "tiny.toml", settings)),
        ),
        cwd=ROOT,
        env=dict(sm_env, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert res.returncode == 0, res.stderr  # check_in_sync passed: the ranks' weights agree
    meta = read_meta(runs / "timed" / "model.safetensors")
    assert meta["config"]["time_budget"] == 3.0 and meta["config"]["steps"] == meta["step"] >= 1


def test_failing_ranks_end_with_one_error_line_and_its_exit_code(tmp_path: Path, sm_env):
    res = subprocess.run(
        sm_cmd(
            "train",
            "--nproc",
            "2",
            "--data",
            str(tmp_path / "missing"),
            "--tracking",
            "none",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--device",
            "cpu",
        ),
        cwd=ROOT,
        env=dict(sm_env, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing" in errors[0]  # rank 0 speaks; rank 1 fails quietly


def test_batch_not_dividing_by_nproc_is_one_line_exit_2(npy_set: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("torchrun must not start"))
    res = CliRunner().invoke(
        sm,
        [
            "train",
            "--nproc",
            "3",
            "--batch-size",
            "8",
            "--data",
            str(npy_set),
            "--tracking",
            "none",
            "--runs-dir",
            str(tmp_path),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "batch size 8" in lines[0] and "3 processes" in lines[0]


def test_nproc_starts_torchrun_with_the_same_arguments(npy_set: Path, tmp_path: Path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, env: calls.append((cmd, env)) or 0)
    res = CliRunner().invoke(
        sm,
        [
            "-q",
            "train",
            "--nproc",
            "2",
            "--data",
            str(npy_set),
            "--steps",
            "4",
            "--no-wandb",
            "--runs-dir",
            str(tmp_path),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    ((cmd, env),) = calls
    assert cmd[1:8] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "scarlet_moon.cli.main",
    ]
    assert cmd[8:] == [
        "-q",
        "train",
        "--data",
        str(npy_set),
        "--steps",
        "4",
        "--runs-dir",
        str(tmp_path),
        "--no-wandb",
        "--device",
        "cpu",
    ]
    assert "SM_DIST_STATUS_FILE" in env and "OMP_NUM_THREADS" in env


class Recorder(torch.nn.Module):
    """Stands in for the DDP wrapper: records what the network is given."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.inputs = model, []

    def forward(self, xt, t, y):
        self.inputs.append((xt, t, y))
        return self.model(xt, t, y)


def test_each_rank_trains_on_its_slice_of_the_same_global_batch(monkeypatch):
    import scarlet_moon.training.distributed as dist_mod

    monkeypatch.setattr(dist_mod, "mean_over_ranks", lambda loss, world: float(loss.detach()))  # no process group
    cfg = DEFAULT.replace({**TINY, "steps": 2})
    x = torch.linspace(-1, 1, 24 * 4 * 64).reshape(24, 4, 8, 8)
    y, abar = torch.arange(24) % 3, torch.linspace(0.99, 0.01, cfg.timesteps)
    seen = {}
    for rank, world in [(0, 1), (0, 2), (1, 2)]:
        state = build_state(cfg, channels=4, size=8, num_classes=3, device="cpu")
        state.net, state.rank, state.world = Recorder(state.model), rank, world
        train_step(state, cfg, x, y, abar, 3)
        seen[rank, world] = state.net.inputs[0]
        assert len(seen[rank, world][0]) == cfg.batch_size // world
    for part in range(3):  # noisy sprites, timesteps, labels (with dropout): rank 0's half, then rank 1's
        assert torch.equal(torch.cat([seen[0, 2][part], seen[1, 2][part]]), seen[0, 1][part])
