"""Training loop: resume equality, Ctrl-C, NaN, SIGKILL + resume, TOML config."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, sm_cmd
from safetensors.torch import load_file

from scarlet_moon.data.sprites import load_sprites
from scarlet_moon.errors import BadInput, Interrupted, RunFailed
from scarlet_moon.models.card import read_meta
from scarlet_moon.models.checkpoint import load_checkpoint
from scarlet_moon.training import loop as train_mod
from scarlet_moon.training.config import DEFAULT, SEED, TrainConfig
from scarlet_moon.training.runs import train_run


def tiny_cfg(**kw) -> TrainConfig:
    return DEFAULT.replace({**TINY, **kw})


def run(cfg, data, root, name, **kw):
    """threads=1: bitwise equality holds at one thread count, and "auto" follows the machine's load
    (training.threads), so two runs on a busy machine may use different counts."""
    return train_run(cfg, data, runs_root=root, trackers={}, name=name, **{"threads": 1, **kw})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.reliability
def test_ctrl_c_saves_and_resume_matches_uninterrupted_run(npy_set: Path, tmp_path: Path):
    data = load_sprites(npy_set)
    cfg = tiny_cfg(steps=12)
    full = run(cfg, data, tmp_path, "full")

    def interrupt_at_5(info):
        if info.step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    with pytest.raises(Interrupted, match="interrupted at step 5"):
        run(cfg, data, tmp_path, "cut", progress=interrupt_at_5)
    assert read_meta(tmp_path / "cut" / "checkpoint.safetensors")["step"] == 5
    resumed = train_run(cfg, data, runs_root=tmp_path, trackers={}, resume="cut", threads=1)
    assert resumed.steps == 12
    assert_same_weights(full.checkpoint, resumed.checkpoint)  # weights, EMA and optimizer state
    assert_same_weights(full.model, resumed.model)


def test_seed_preset_resumes_exactly_too(npy_set: Path, tmp_path: Path):
    data = load_sprites(npy_set)
    cfg = SEED.replace(
        {
            "n_feat": 8,
            "batch_size": 8,
            "timesteps": 50,
            "sample_steps": 50,
            "steps": 6,
            "sample_every": 0,
            "checkpoint_every": 3,
        }
    )
    full = run(cfg, data, tmp_path, "full")
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        run(cfg, data, tmp_path, "cut", progress=lambda i: i.step == 3 and os.kill(os.getpid(), signal.SIGINT))
    resumed = train_run(cfg, data, runs_root=tmp_path, trackers={}, resume=cut, threads=1)
    assert_same_weights(full.checkpoint, resumed.checkpoint)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(npy_set: Path, tmp_path: Path, monkeypatch):
    data = load_sprites(npy_set)
    real = train_mod.diffusion_loss
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        loss = real(*args, **kw)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(train_mod, "diffusion_loss", flaky)
    with pytest.raises(RunFailed, match=r"loss became nan at step 6.*last good checkpoint") as err:
        run(tiny_cfg(steps=10, checkpoint_every=2), data, tmp_path, "nan")
    assert "\n" not in str(err.value)
    ckpt = tmp_path / "nan" / "checkpoint.safetensors"
    assert read_meta(ckpt)["step"] == 4
    assert all(torch.isfinite(t).all() for t in load_checkpoint(ckpt).model.values())


def test_resume_refuses_data_that_does_not_fit(npy_set: Path, tmp_path: Path):
    data = load_sprites(npy_set)
    run(tiny_cfg(steps=2), data, tmp_path, "r")
    other = load_sprites(None)  # the bundled set: other size and labels
    with pytest.raises(BadInput, match="was trained on"):
        train_run(tiny_cfg(steps=4), other, runs_root=tmp_path, trackers={}, resume="r")


def test_sample_grid_and_model_card_written(npy_set: Path, tmp_path: Path):
    data = load_sprites(npy_set)
    res = run(tiny_cfg(steps=4, sample_every=2), data, tmp_path, "g")
    grids = sorted((res.run_dir / "samples").glob("step_*.png"))
    assert [g.name for g in grids] == ["step_000002.png", "step_000004.png"]
    meta = read_meta(res.model)
    assert meta["kind"] == "model" and meta["label_names"] == ["red", "green", "blue"]
    assert meta["image_size"] == [8, 8] and meta["channels"] == 4 and meta["step"] == 4
    assert meta["data_fingerprint"] == data.fingerprint()
    assert meta["schedule"]["kind"] == "cosine" and meta["config"]["n_feat"] == 8
    assert res.grid_copies == 0.0  # 4 steps draw noise, not the training sprites


def test_a_run_whose_grid_copies_its_sprites_says_so(npy_set: Path, tmp_path: Path, monkeypatch, caplog):
    """The wiring of training.memorise: the last grid's share is returned, logged and, over 25%, warned."""
    import scarlet_moon.training.grids as grids

    data = load_sprites(npy_set)
    real_grid = grids.sample_grid

    def copying_grid(state, cfg, data_, path, device):
        out = real_grid(state, cfg, data_, path, device)
        out[: len(out) // 2] = data_.images[: len(out) // 2]  # half the grid: exact training sprites
        return out

    monkeypatch.setattr(grids, "sample_grid", copying_grid)
    with caplog.at_level("WARNING", logger="scarlet_moon"):
        res = run(tiny_cfg(steps=2, sample_every=2), data, tmp_path, "c")
    assert res.grid_copies == 0.5
    assert any(
        "50% of the step-2 sample grid copy a training sprite" in r.getMessage()
        and f"its {len(data.images)} sprites" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("sample_every", [2, 0])
def test_a_runs_card_gets_the_finishing_chosen_on_its_last_grid(
    npy_set: Path, tmp_path: Path, monkeypatch, sample_every
):
    """The card's `post` is eval.post_choice.texture_post on the last step's grid (drawn for it, and not
    saved, when the run draws no grids), against the training sprites."""
    import scarlet_moon.training.grids as grids
    from scarlet_moon.eval.post_choice import texture_post
    from scarlet_moon.models.card import read_checkpoint_card

    data = load_sprites(npy_set)
    real_grid, drawn = grids.sample_grid, []

    def recording_grid(state, cfg, data_, path, device):
        drawn.append((state.step, path, real_grid(state, cfg, data_, path, device)))
        return drawn[-1][2]

    monkeypatch.setattr(grids, "sample_grid", recording_grid)
    res = run(tiny_cfg(steps=3, sample_every=sample_every), data, tmp_path, "p")
    step, path, last = drawn[-1]
    assert step == 3 and (path is None) == (sample_every == 0)
    card = read_checkpoint_card(res.model)
    assert card.meta["post"] == texture_post(card, last, data.images)
    assert f"on {len(data.label_names) * grids.GRID_PER_LABEL} sprites" in card.meta["post"]["source"]
    assert sorted(p.name for p in (res.run_dir / "samples").glob("*.png")) == (
        ["step_000002.png", "step_000003.png"] if sample_every else []
    )


@pytest.mark.slow
@pytest.mark.reliability
def test_sigkill_after_checkpoint_then_resume_equals_uninterrupted(npy_set: Path, tmp_path: Path, sm_env):
    common = [
        "train",
        "--data",
        str(npy_set),
        "--tracking",
        "none",
        "--runs-dir",
        str(tmp_path),
        "--threads",
        "1",
        "--config",
        str(_tiny_toml(tmp_path, steps=600, checkpoint_every=20)),
    ]
    subprocess.run(sm_cmd(*common, "--name", "full"), cwd=ROOT, env=sm_env, check=True, capture_output=True)
    proc = subprocess.Popen(
        sm_cmd(*common, "--name", "killed"), cwd=ROOT, env=sm_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt = tmp_path / "killed" / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = read_meta(ckpt)["step"]
    assert 0 < step < 600, "the run must be killed part-way"
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    subprocess.run(
        sm_cmd(
            "train",
            "--resume",
            str(tmp_path / "killed"),
            "--tracking",
            "none",
            "--threads",
            "1",
            "--runs-dir",
            str(tmp_path),
        ),
        cwd=ROOT,
        env=sm_env,
        check=True,
        capture_output=True,
    )
    assert_same_weights(tmp_path / "full" / "model.safetensors", tmp_path / "killed" / "model.safetensors")
    assert_same_weights(tmp_path / "full" / "checkpoint.safetensors", ckpt)


def _tiny_toml(tmp_path: Path, **kw) -> Path:
    settings = {**TINY, **kw}
    lines = ["[train]"]
    for k, v in settings.items():
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else v}")
    p = tmp_path / "tiny.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.reliability
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_saves_like_ctrl_c_and_resume_continues(npy_set: Path, tmp_path: Path, sm_env, sig):
    """timeout, docker stop and job schedulers send SIGTERM; a closed terminal SIGHUP: the run saves a
    checkpoint and stops (exit 128 + the signal), and --resume ends with the weights of an uninterrupted run."""
    common = [
        "train",
        "--data",
        str(npy_set),
        "--tracking",
        "none",
        "--runs-dir",
        str(tmp_path),
        "--threads",
        "1",
        "--config",
        str(_tiny_toml(tmp_path, steps=400, checkpoint_every=10)),
    ]
    subprocess.run(sm_cmd(*common, "--name", "full"), cwd=ROOT, env=sm_env, check=True, capture_output=True)
    proc = subprocess.Popen(
        sm_cmd(*common, "--name", "cut"),
        cwd=ROOT,
        env=sm_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ckpt = tmp_path / "cut" / "checkpoint.safetensors"
    while not ckpt.exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    step = read_meta(ckpt)["step"]
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert f"interrupted by {sig} at step {step}; checkpoint saved" in err and 0 < step < 400
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    subprocess.run(
        sm_cmd("train", "--resume", "cut", "--tracking", "none", "--threads", "1", "--runs-dir", str(tmp_path)),
        cwd=ROOT,
        env=sm_env,
        check=True,
        capture_output=True,
    )
    assert_same_weights(tmp_path / "full" / "model.safetensors", tmp_path / "cut" / "model.safetensors")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.reliability
def test_a_run_that_died_before_its_first_checkpoint_starts_again(npy_set: Path, tmp_path: Path, caplog):
    """A folder with a config and no checkpoint: --resume says to start it again, --name takes it again
    (from step 0, said), and the dead run's temp checkpoint is removed."""
    data = load_sprites(npy_set)
    (tmp_path / "r" / "samples").mkdir(parents=True)
    (tmp_path / "r" / "config.json").write_text("{}")
    leftover = tmp_path / "r" / f".checkpoint.safetensors.sm-{_dead_pid()}-0a1b.tmp"
    leftover.write_bytes(b"half a checkpoint")
    with pytest.raises(BadInput, match="stopped before its first checkpoint: start it again with name r"):
        train_run(tiny_cfg(steps=2), data, runs_root=tmp_path, trackers={}, resume="r")
    with caplog.at_level("WARNING"):
        res = run(tiny_cfg(steps=2), data, tmp_path, "r")
    assert res.steps == 2 and "starting it again from step 0" in caplog.text
    assert not leftover.exists()
    with pytest.raises(BadInput, match="already exists"):  # now it has a checkpoint: resume it instead
        run(tiny_cfg(steps=2), data, tmp_path, "r")


@pytest.mark.reliability
def test_one_process_trains_a_run_folder_at_a_time(npy_set: Path, tmp_path: Path):
    import fcntl

    data = load_sprites(npy_set)
    run(tiny_cfg(steps=2), data, tmp_path, "r")
    fd = os.open(tmp_path / "r", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another `sm train --resume r` holds it
        before = (tmp_path / "r" / "checkpoint.safetensors").read_bytes()
        with pytest.raises(BadInput, match="being trained by another process"):
            train_run(tiny_cfg(steps=4), data, runs_root=tmp_path, trackers={}, resume="r", given={"steps"})
        assert (tmp_path / "r" / "checkpoint.safetensors").read_bytes() == before
    finally:
        os.close(fd)


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "..", "x\x1b[2J"])
def test_run_names_stay_inside_the_runs_folder(npy_set: Path, tmp_path: Path, name: str):
    with pytest.raises(BadInput, match="plain folder name"):
        run(tiny_cfg(steps=1), load_sprites(npy_set), tmp_path / "runs", name)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "runs" / "a").exists()
