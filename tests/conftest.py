"""Shared fixtures: tiny sprite sets and tiny model settings so training tests take seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# One torch thread in-process: on a 2-core machine shared with subprocesses (sm runs, chromium,
# godot), OpenMP spin-waiting across oversubscribed threads made tiny trainings 10x slower.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
# A subprocess that runs this long has hung: only a hang reaches it, never a slow or busy machine
# (no test depends on how fast the machine is; CI's own limit is the last guard).
HANG = 1800
# Tiny, fast settings for training tests (a few ms per step on 2 cores).
TINY = {
    "n_feat": 8,
    "channel_mult": [1, 2],
    "attention": False,
    "batch_size": 8,
    "timesteps": 50,
    "sample_every": 0,
    "checkpoint_every": 0,
    "log_every": 1,
    "sample_steps": 4,
    "warmup_steps": 2,
}


def make_sprites(n: int = 24, size: int = 8, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n RGBA sprites of size x size with a coloured blob per class on a transparent background."""
    rng = np.random.default_rng(seed)
    imgs = np.zeros((n, size, size, 4), np.uint8)
    labels = np.arange(n) % classes
    for i in range(n):
        c = rng.integers(0, 256, 3)
        y0, x0 = rng.integers(0, size // 2, 2)
        imgs[i, y0 : y0 + size // 2, x0 : x0 + size // 2, :3] = c
        imgs[i, y0 : y0 + size // 2, x0 : x0 + size // 2, 3] = 255
    onehot = np.eye(classes, dtype=np.float32)[labels]
    return imgs, onehot


@pytest.fixture
def npy_set(tmp_path: Path) -> Path:
    d = tmp_path / "npyset"
    d.mkdir()
    imgs, onehot = make_sprites()
    np.save(d / "sprites.npy", imgs)
    np.save(d / "sprites_labels.npy", onehot)
    (d / "labels.txt").write_text("red\ngreen\nblue\n")
    return d


@pytest.fixture
def sm_env(tmp_path: Path) -> dict[str, str]:
    """Environment for `sm` subprocesses: no user MLflow/W&B settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env["WANDB_MODE"] = "disabled"
    env["PYTHONPATH"] = str(ROOT)
    return env


def sm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "scarlet_moon.cli.main", *args]


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> Path:
    """30 8x8 sprites in 3 labels (red, green, blue), Kaggle npy layout."""
    d = tmp_path_factory.mktemp("tinyset")
    imgs, onehot = make_sprites(n=30, size=8, classes=3)
    np.save(d / "sprites.npy", imgs)
    np.save(d / "sprites_labels.npy", onehot)
    (d / "labels.txt").write_text("red\ngreen\nblue\n")
    return d


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_set: Path) -> Path:
    """A tiny default-preset model trained 30 steps on tiny_set (attention on, guidance 2)."""
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.runs import train_run

    cfg = DEFAULT.replace({**TINY, "steps": 30, "attention": True, "guidance": 2.0})
    res = train_run(cfg, load_sprites(tiny_set), runs_root=tmp_path_factory.mktemp("tinyruns"), trackers={}, name="m")
    return res.model


def request(labels, seed: int = 0, edit=None, **sampling):
    """A generation Request: label indices, a seed, SamplingOptions fields as keywords (sampler, steps...)."""
    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.generation.request import Request
    from scarlet_moon.options import SamplingOptions

    return Request(tuple(labels), seed=seed, sampling=SamplingOptions(**sampling), edit=edit or Edit())


def sprites_of(model, req, *, raw: bool = True, **backend):
    """The sprites of `req` through the one generation loop: the sampler's output (raw) or finished.
    `model`: a Denoiser, or a ModelCard / path opened with `backend` options (open_denoiser)."""
    from scarlet_moon.backends import open_denoiser
    from scarlet_moon.backends.base import Denoiser
    from scarlet_moon.generation.chunks import generate_all

    den = model if isinstance(model, Denoiser) else open_denoiser(model, **backend)
    return generate_all(den, req, raw=raw)
