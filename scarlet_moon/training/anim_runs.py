"""`sm train --layout ...`: an animation model's run, in a run folder and tracked like a sprite model's.

The run folder holds config.json, model.safetensors (the sampling weights, what `sm anim` reads) and
preview.png (one character per label drawn at the end: a row per direction, frames left to right).
Ctrl-C saves the model reached so far. Resume and torchrun are sprite-model features only (for now).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from scarlet_moon.data.anim import AnimSet
from scarlet_moon.errors import BadInput, Interrupted
from scarlet_moon.exporters.atomic import write_file
from scarlet_moon.limits import check_sprite_size
from scarlet_moon.models.checkpoint import save_checkpoint
from scarlet_moon.training.config import TrainConfig
from scarlet_moon.training.runs import RunResult, new_run_dir, run_lock
from scarlet_moon.training.state import MODEL_NAME
from scarlet_moon.training.threads import Threads
from scarlet_moon.training.tracking import MultiTracker, Tracker

PREVIEW_NAME = "preview.png"


def train_anim_run(
    cfg: TrainConfig,
    data: AnimSet,
    *,
    runs_root: Path,
    trackers: dict[str, Tracker],
    name: str | None = None,
    threads: int = 0,
    init_from: str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> RunResult:
    """Train an animation model on `data` in a new run folder; `init_from`: a sprite or animation model
    of the frame size to start from (training.anim.init_from_parent)."""
    from scarlet_moon.training.anim import (
        anim_checkpoint,
        build_anim_state,
        config_from_parent,
        load_parent,
        train_anim,
    )
    from scarlet_moon.training.finetune import parent_card

    t_start = time.time()
    n, d, f, h, w = data.shape
    check_sprite_size(h, w, what=f"data {data.source!r}: frame size")
    if cfg.model.arch != "unet":
        raise BadInput(f"an animation model needs the default preset's arch 'unet', got {cfg.model.arch!r}")
    cfg = dataclasses.replace(cfg, model=cfg.model.for_size(h, w))
    parent = parent_card(init_from, anim=True) if init_from else None
    if parent is not None:
        cfg = config_from_parent(cfg, parent, data)
    state = build_anim_state(cfg, data)
    if parent is not None:
        load_parent(state, cfg, parent, data)
    run_dir = new_run_dir(runs_root, name)
    with run_lock(run_dir):
        params = dict(
            cfg.to_dict(),
            data_source=data.source,
            layout=data.layout,
            characters=n,
            directions=",".join(data.directions),
            frames=f,
            labels=",".join(data.label_names),
            **({"init_from": state.parent["name"]} if state.parent else {}),
        )
        write_file(run_dir / "config.json", json.dumps(params, indent=2).encode())
        tracker = MultiTracker(trackers)
        tracker.start(run_dir.name, params)
        governor = Threads(threads)

        def on_step(step: int, total: int, loss: float) -> None:
            governor.tick()
            if cfg.log_every and step % cfg.log_every == 0:
                tracker.log_metrics({"loss": loss}, step)
            if progress:
                progress(step, total, loss)

        model_path = run_dir / MODEL_NAME
        try:
            train_anim(state, cfg, data, on_step=on_step)
        except KeyboardInterrupt:
            save_checkpoint(model_path, anim_checkpoint(_reached(cfg, state.step), data, state))
            tracker.finish("KILLED")
            raise Interrupted(
                f"interrupted at step {state.step}; the model so far is {str(model_path)!r}", run_dir=run_dir
            ) from None
        except BaseException:
            tracker.finish("FAILED")
            raise
        cfg = _reached(cfg, state.step)
        save_checkpoint(model_path, anim_checkpoint(cfg, data, state))
        _preview(model_path, data, run_dir / PREVIEW_NAME, cfg.seed)
        tracker.log_metrics({"final_loss": float(np.mean(state.losses[-50:]))}, state.step)
        tracker.log_artifact(model_path, "model")
        tracker.log_artifact(run_dir / PREVIEW_NAME, "samples")
        tracker.finish("FINISHED")
    return RunResult(run_dir, model_path, model_path, state.step, {}, time.time() - t_start, None)


def _reached(cfg: TrainConfig, step: int) -> TrainConfig:
    """The config as the card records it: the steps the run reached when a time budget or Ctrl-C ended it."""
    return dataclasses.replace(cfg, steps=max(1, step)) if step < cfg.steps else cfg


def _preview(model_path: Path, data: AnimSet, out: Path, seed: int) -> None:
    """One character per label, a row per direction, 4x: what the run learnt, at a glance."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.anim import AnimOptions, draw_characters
    from scarlet_moon.generation.anim_preview import character_sheet

    chars = draw_characters(read_card(model_path), list(range(len(data.label_names))), AnimOptions(seed=seed))
    write_file(out, character_sheet(chars, zoom=4))
