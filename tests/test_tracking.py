"""MLflow (a real local sqlite store) and W&B (offline / disabled) tracking."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import HANG, ROOT, sm_cmd
from mlflow.tracking import MlflowClient
from test_train import _tiny_toml

from scarlet_moon.cli.main import sm


def _client(runs: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")


def _only_run(client: MlflowClient):
    exp = client.get_experiment_by_name("scarlet-moon")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return runs[0]


def test_tiny_run_is_tracked_in_mlflow(npy_set: Path, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs = tmp_path / "runs"
    res = CliRunner().invoke(
        sm,
        [
            "-q",
            "train",
            "--data",
            str(npy_set),
            "--runs-dir",
            str(runs),
            "--name",
            "t",
            "--config",
            str(_tiny_toml(tmp_path, steps=6, sample_every=3)),
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [str(runs / "t"), str(runs / "t" / "model.safetensors")]
    client = _client(runs)
    run = _only_run(client)
    assert run.info.status == "FINISHED" and run.info.run_name == "t"
    assert run.data.params["n_feat"] == "8" and run.data.params["labels"] == "red,green,blue"
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == [1, 2, 3, 4, 5, 6]
    assert client.get_metric_history(run.info.run_id, "epoch_loss")
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples", "model", "checkpoint"} <= top
    samples = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert samples == {"samples/step_000003.png", "samples/step_000006.png"}
    versions = client.search_model_versions("name='scarlet-moon-sprites'")
    assert len(versions) == 1 and versions[0].run_id == run.info.run_id


def test_resume_continues_the_same_mlflow_run(npy_set: Path, tmp_path: Path, monkeypatch):
    import os
    import signal

    from conftest import TINY

    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.errors import Interrupted
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.runs import train_run
    from scarlet_moon.training.tracking import MlflowTracker

    runs = tmp_path / "runs"
    runs.mkdir()
    uri = f"sqlite:///{runs / 'mlflow.db'}"
    data, cfg = load_sprites(npy_set), DEFAULT.replace({**TINY, "steps": 8})
    with pytest.raises(Interrupted):
        train_run(
            cfg,
            data,
            runs_root=runs,
            trackers={"mlflow": MlflowTracker(uri)},
            name="r",
            progress=lambda i: i.step == 4 and os.kill(os.getpid(), signal.SIGINT),
        )
    train_run(cfg, data, runs_root=runs, trackers={"mlflow": MlflowTracker(uri)}, resume="r")
    run = _only_run(_client(runs))
    assert run.info.status == "FINISHED"
    steps = [m.step for m in _client(runs).get_metric_history(run.info.run_id, "loss")]
    assert steps == list(range(1, 9))


@pytest.mark.slow
@pytest.mark.reliability
def test_sigkill_then_resume_continues_the_same_mlflow_run(npy_set: Path, tmp_path: Path, sm_env):
    """SIGKILL after a checkpoint (the MLflow run is left RUNNING), then --resume: one run, FINISHED,
    every loss step logged, none twice past the checkpoint."""
    import signal
    import time

    from scarlet_moon.models.card import read_meta

    common = [
        "train",
        "--data",
        str(npy_set),
        "--runs-dir",
        str(tmp_path),
        "--config",
        str(_tiny_toml(tmp_path, steps=400, checkpoint_every=20, log_every=1)),
    ]
    proc = subprocess.Popen(
        sm_cmd(*common, "--name", "k"), cwd=ROOT, env=sm_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt = tmp_path / "k" / "checkpoint.safetensors"
    deadline = time.time() + 180
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_meta(ckpt)["step"]
    assert 0 < killed_at < 400, "the run must be killed part-way"
    assert _only_run(_client(tmp_path)).info.status == "RUNNING"  # what a SIGKILL leaves behind
    subprocess.run(
        sm_cmd("train", "--resume", "k", "--runs-dir", str(tmp_path)),
        cwd=ROOT,
        env=sm_env,
        check=True,
        capture_output=True,
    )
    run = _only_run(_client(tmp_path))  # still exactly one run
    assert run.info.status == "FINISHED"
    steps = sorted({m.step for m in _client(tmp_path).get_metric_history(run.info.run_id, "loss")})
    assert steps == list(range(1, 401))


def test_tracking_none_writes_no_store(npy_set: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    res = CliRunner().invoke(
        sm,
        [
            "-q",
            "train",
            "--data",
            str(npy_set),
            "--runs-dir",
            str(runs),
            "--name",
            "n",
            "--tracking",
            "none",
            "--config",
            str(_tiny_toml(tmp_path, steps=2)),
        ],
    )
    assert res.exit_code == 0, res.output
    assert not (runs / "mlflow.db").exists() and not (runs / "wandb").exists()


def test_wandb_offline_without_key_never_waits(npy_set: Path, tmp_path: Path, sm_env):
    env = {k: v for k, v in sm_env.items() if k != "WANDB_MODE"}
    env.update(WANDB_SILENT="true", HOME=str(tmp_path))
    runs = tmp_path / "runs"
    out = subprocess.run(
        sm_cmd(
            "-q",
            "train",
            "--data",
            str(npy_set),
            "--runs-dir",
            str(runs),
            "--name",
            "w",
            "--tracking",
            "mlflow",
            "--wandb",
            "--config",
            str(_tiny_toml(tmp_path, steps=3)),
        ),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    offline = list((runs / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1


@pytest.mark.slow
def test_sm_train_200_steps_on_bundled_set(tmp_path: Path, sm_env):
    """The issue's must-show: `sm train --steps 200` on the bundled set, read back from MLflow."""
    runs = tmp_path / "runs"
    out = subprocess.run(
        sm_cmd("train", "--steps", "200", "--runs-dir", str(runs), "--name", "b200"),
        cwd=ROOT,
        env=sm_env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert out.returncode == 0, out.stderr
    run_dir = runs / "b200"
    assert (run_dir / "checkpoint.safetensors").is_file() and (run_dir / "model.safetensors").is_file()
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["step_000200.png"]
    client = _client(runs)
    run = _only_run(client)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 20  # every 10 steps
    assert run.data.params["labels"] == "creature,item,consumable,spell,terrain,hero"
    assert client.search_model_versions("name='scarlet-moon-sprites'")


def test_resume_applies_a_new_lr_and_refuses_a_new_network(npy_set: Path, tmp_path: Path, monkeypatch):
    """`--resume RUN --lr 0.5` trains on at 0.5: the run's config, its model card and its MLflow params
    say so; a setting that cannot change mid-run (the network, the schedule) is refused, each one named."""
    import json

    from scarlet_moon.models.card import read_meta

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs)]
    res = CliRunner().invoke(
        sm,
        ["-q", "train", "--data", str(npy_set), *common, "--name", "r", "--config", str(_tiny_toml(tmp_path, steps=2))],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(sm, ["train", "--resume", "r", *common, "--steps", "4", "--lr", "0.5"])
    assert res.exit_code == 0, res.output
    assert "resuming with lr 0.5 (the run had 0.0002)" in res.stderr
    assert json.loads((runs / "r" / "config.json").read_text())["lr"] == 0.5
    assert read_meta(runs / "r" / "model.safetensors")["config"]["lr"] == 0.5
    client = _client(runs)
    run = _only_run(client)
    assert run.data.params["lr"] == "0.0002" and run.data.params["resume.step2.lr"] == "0.5"
    assert run.data.params["resume.step2.steps"] == "4" and run.info.status == "FINISHED"
    lrs = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "lr")}
    assert lrs[3] == pytest.approx(0.5) and lrs[2] < 0.001  # warm-up ends at step 2; cosine from the new peak

    before = (runs / "r" / "checkpoint.safetensors").read_bytes()
    res = CliRunner().invoke(
        sm, ["train", "--resume", "r", *common, "--n-feat", "16", "--timesteps", "40", "--lr", "0.1"]
    )
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: --resume 'r': ") and "n_feat (run 8, asked 16)" in line
    assert "timesteps (run 50, asked 40)" in line and "lr" not in line.split("cannot change")[0]
    assert (runs / "r" / "checkpoint.safetensors").read_bytes() == before


def test_a_run_whose_process_died_is_marked_killed_by_the_next_run(npy_set: Path, tmp_path: Path):
    """A SIGKILLed run that is never resumed does not stay RUNNING forever: the next run of this machine
    marks it KILLED (its process id is gone); a live one's run is left alone."""
    import os
    import socket

    from conftest import TINY

    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.runs import train_run
    from scarlet_moon.training.tracking import MlflowTracker

    runs = tmp_path / "runs"
    runs.mkdir()
    client = _client(runs)
    exp = client.create_experiment("scarlet-moon")
    proc = subprocess.Popen(["true"])
    proc.wait()
    dead = client.create_run(exp, run_name="dead", tags={"sm.pid": str(proc.pid), "sm.host": socket.gethostname()})
    live = client.create_run(exp, run_name="live", tags={"sm.pid": str(os.getppid()), "sm.host": socket.gethostname()})
    train_run(
        DEFAULT.replace({**TINY, "steps": 2}),
        load_sprites(npy_set),
        runs_root=runs,
        trackers={"mlflow": MlflowTracker(f"sqlite:///{runs / 'mlflow.db'}")},
        name="next",
    )
    assert client.get_run(dead.info.run_id).info.status == "KILLED"
    assert client.get_run(live.info.run_id).info.status == "RUNNING"


def test_an_unreachable_tracking_uri_is_one_line_at_once(npy_set: Path, tmp_path: Path, sm_env):
    """MLflow alone would retry for minutes; the store is probed first (nothing answers on port 9)."""
    out = subprocess.run(
        sm_cmd(
            "train",
            "--data",
            str(npy_set),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--tracking-uri",
            "http://127.0.0.1:9",
            "--config",
            str(_tiny_toml(tmp_path, steps=2)),
        ),
        cwd=ROOT,
        env=sm_env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        "error: --tracking-uri 'http://127.0.0.1:9': no MLflow server answers there ([Errno 111] Connection refused)"
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
