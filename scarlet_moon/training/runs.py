"""One training run end to end: run folder, tracking, sample grids, checkpoints, registration.

Run folder layout (`<runs_root>/<name>/`):
    config.json              the resolved config and data source
    checkpoint.safetensors   full training state (weights, EMA, optimizer, step), rewritten atomically
    model.safetensors        sampling weights (EMA) + model card, written at the end
    samples/step_000500.png  sample grids: one row per label
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore[assignment]


from scarlet_moon.data.sprites import SpriteSet
from scarlet_moon.errors import BadInput, Interrupted, arg
from scarlet_moon.eval.post_choice import texture_post
from scarlet_moon.exporters.atomic import remove_dead_leftovers, write_file
from scarlet_moon.limits import check_sprite_size
from scarlet_moon.models.card import ModelCard
from scarlet_moon.models.checkpoint import save_checkpoint
from scarlet_moon.training import finetune, grids
from scarlet_moon.training.config import TrainConfig, check_training_memory
from scarlet_moon.training.distributed import SINGLE, Dist, check_in_sync, stop_flag, wrap
from scarlet_moon.training.loop import StepInfo, run_loop
from scarlet_moon.training.memorise import memorising_message
from scarlet_moon.training.state import (
    CHECKPOINT_NAME,
    MODEL_NAME,
    TrainState,
    build_state,
    restore_state,
    resumed_config,
    to_checkpoint,
)
from scarlet_moon.training.threads import Threads
from scarlet_moon.training.tracking import MultiTracker, Tracker

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    checkpoint: Path
    model: Path
    steps: int
    tracking_ids: dict[str, Any]
    seconds: float
    grid_copies: float | None = None  # the last sample grid's share of copies (training.memorise)


UNSTARTED = {"config.json", "samples"}  # what a run folder holds before its first checkpoint


def resolve_resume(resume: str | Path, runs_root: Path) -> Path:
    """A run folder, a run name under runs_root, or a checkpoint file -> the checkpoint path."""
    for cand in (Path(resume), runs_root / str(resume)):
        if cand.is_dir():
            ckpt = cand / CHECKPOINT_NAME
            if not ckpt.is_file():
                hint = (
                    f"its run stopped before its first checkpoint: start it again with {arg('name')} {cand.name}"
                    if _unstarted(cand)
                    else "is it a run folder?"
                )
                raise BadInput(f"run folder {str(cand)!r} has no {CHECKPOINT_NAME} to resume from; {hint}")
            return ckpt
        if cand.is_file():
            return cand
    raise BadInput(f"{arg('resume')} {str(resume)!r}: no such run folder, run name or checkpoint file")


def check_run_name(name: str) -> str:
    """A run name is one plain folder name: no path, no leading dot, nothing that leaves the runs folder."""
    if (
        not name
        or name != Path(name).name
        or name.startswith(".")
        or "\\" in name
        or len(name) > 200
        or any(ord(c) < 32 for c in name)
    ):
        raise BadInput(f"{arg('name')} {name!r}: expected a plain folder name (no '/', no leading '.')")
    return name


def new_run_dir(runs_root: Path, name: str | None) -> Path:
    """The folder of a new run. A folder whose run stopped before its first checkpoint is taken again
    (and said): there is nothing in it to resume."""
    run_dir = runs_root / check_run_name(name or time.strftime("run-%Y%m%d-%H%M%S"))
    runs_root.mkdir(parents=True, exist_ok=True)
    if run_dir.exists() and any(run_dir.iterdir()):
        if not _unstarted(run_dir):
            raise BadInput(
                f"run folder {str(run_dir)!r} already exists; pick another {arg('name')} or {arg('resume')} it"
            )
        log.warning(
            "run folder %s holds no checkpoint (its run stopped before the first one): starting it again from step 0",
            run_dir,
        )
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    return run_dir


def _unstarted(run_dir: Path) -> bool:
    """A run folder with a config and perhaps sample grids, but no checkpoint yet (leftover temps aside)."""
    names = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    return "config.json" in names and names <= UNSTARTED


@contextlib.contextmanager
def run_lock(run_dir: Path, active: bool = True) -> Iterator[None]:
    """One process trains a run folder at a time (an exclusive flock on the folder); the leftovers of
    a killed one (temp checkpoints) are removed once the lock is held."""
    if not active or fcntl is None:
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput(
                f"run folder {str(run_dir)!r} is being trained by another process; wait for it to "
                "end (one run, one process)"
            ) from None
        remove_dead_leftovers(run_dir)
        yield
    finally:
        os.close(fd)


def train_run(
    cfg: TrainConfig,
    data: SpriteSet,
    *,
    runs_root: Path,
    trackers: dict[str, Tracker],
    name: str | None = None,
    resume: str | Path | None = None,
    given: Iterable[str] = (),
    register_name: str | None = None,
    device: str = "cpu",
    threads: int = 0,
    progress: Callable[[StepInfo], None] | None = None,
    dist: Dist = SINGLE,
    init_from: str | Path | None = None,
) -> RunResult:
    """Train `cfg` on `data` in a new run folder, or continue the run `resume` with its own config.

    `given`: the settings of `cfg` asked for explicitly; on resume they apply where that is sound
    (training.state.RESUMABLE), and any other that differs from the run's is BadInput. `threads`: torch
    threads, 0 = the free cores (training.threads). `init_from`: a model to fine-tune (training.finetune).
    Under torchrun (`dist` from distributed.start) only rank 0 writes files and tracks."""
    t_start = time.time()
    check_sprite_size(*data.size, what=f"data {data.source!r}: sprite size")
    if resume is not None and init_from is not None:
        raise BadInput(
            f"{arg('init_from')} starts a new run from a model, {arg('resume')} continues a run: give one of them"
        )
    if resume is not None:
        cfg, changes, state, ckpt_path = _resumed(cfg, data, resume, runs_root, given, device, dist)
        run_dir = ckpt_path.parent
    else:
        changes = {}
        cfg, state, run_dir = _started(cfg, data, runs_root, name, given, device, dist, init_from)
        ckpt_path = run_dir / CHECKPOINT_NAME
    with run_lock(run_dir, dist.main):
        params = dict(
            cfg.to_dict(),
            data_source=data.source,
            data_fingerprint=data.fingerprint(),
            num_sprites=len(data.images),
            labels=",".join(data.label_names),
        )
        if state.parent:
            params.update(init_from=state.parent["name"], init_from_fingerprint=state.parent["fingerprint"])
        if dist.main:
            write_file(run_dir / "config.json", json.dumps(params, indent=2).encode())
        tracker = MultiTracker(trackers if dist.main else {})
        state.tracking_ids = dist.agree(lambda: tracker.start(run_dir.name, params, resume_ids=state.tracking_ids))
        if changes:  # a tracked param cannot change value: the new one is logged under the step it starts at
            tracker.log_params({f"resume.step{state.step}.{k}": new for k, (_, new) in changes.items()})
        wrap(state, dist, device)
        governor = Threads(threads)

        def step_done(info: StepInfo) -> None:
            governor.tick()
            if progress:
                progress(info)

        return _loop(cfg, data, state, tracker, run_dir, ckpt_path, register_name, device, step_done, t_start, dist)


def _resumed(
    cfg: TrainConfig,
    data: SpriteSet,
    resume: str | Path,
    runs_root: Path,
    given: Iterable[str],
    device: str,
    dist: Dist,
) -> tuple[TrainConfig, dict[str, tuple[Any, Any]], TrainState, Path]:
    """(the run's config with the resumable changes applied, those changes, its state, its checkpoint)."""
    ckpt_path = dist.agree(lambda: resolve_resume(resume, runs_root))
    saved, state = dist.together(lambda: restore_state(ckpt_path, data, device))
    cfg, changes = resumed_config(saved, cfg, given, str(resume))
    dist.check_batch(cfg.batch_size)  # the run's own batch size
    if dist.main:
        (ckpt_path.parent / "samples").mkdir(exist_ok=True)
    log.info("resuming %s at step %d of %d", ckpt_path.parent, state.step, cfg.steps)
    return cfg, changes, state, ckpt_path


def _started(
    cfg: TrainConfig,
    data: SpriteSet,
    runs_root: Path,
    name: str | None,
    given: Iterable[str],
    device: str,
    dist: Dist,
    init_from: str | Path | None,
) -> tuple[TrainConfig, TrainState, Path]:
    """A new run: (its config, fresh or fine-tuned from `init_from`, its state, its folder)."""
    parent = None
    if init_from is not None:  # the parent's network and schedule, checked before any folder is made
        parent = finetune.parent_card(init_from)
        finetune.check_data(parent, data)
        cfg = finetune.config_from_parent(cfg, parent, given)
    elif cfg.init_shrink != 1:
        raise BadInput(
            f"{arg('init_shrink')} {cfg.init_shrink:g} shrinks the weights of a prior: it needs {arg('init_from')}"
        )
    dist.check_batch(cfg.batch_size)  # before any folder is made
    cfg = dataclasses.replace(cfg, model=cfg.model.for_size(*data.size))  # the card records the depth built
    check_training_memory(cfg, channels=data.images.shape[-1], size=data.size, num_classes=len(data.label_names))
    run_dir = dist.agree(lambda: new_run_dir(runs_root, name))
    state = build_state(
        cfg, channels=data.images.shape[-1], size=data.size, num_classes=len(data.label_names), device=device
    )
    if parent is not None:
        state.parent = finetune.load_parent(state, parent, data, cfg)
    return cfg, state, run_dir


def _loop(
    cfg: TrainConfig,
    data: SpriteSet,
    state: TrainState,
    tracker: Any,
    run_dir: Path,
    ckpt_path: Path,
    register_name: str | None,
    device: str,
    progress: Any,
    t_start: float,
    dist: Dist = SINGLE,
) -> RunResult:
    def on_checkpoint(write: bool) -> Path:
        if write and dist.main:
            tracker.flush()  # a SIGKILL after this checkpoint loses no logged point before it
            save_checkpoint(ckpt_path, to_checkpoint(cfg, data, state))
        return ckpt_path

    def on_step(info: StepInfo) -> None:
        if cfg.log_every and (info.step % cfg.log_every == 0 or info.step == info.total):
            tracker.log_metrics({"loss": info.loss, "lr": info.lr}, info.step)
        if progress:
            progress(info)

    copies: list[tuple[int, float]] = []  # (step, share of the grid that copies a training sprite)
    last_grid: list[np.ndarray] = []  # the latest grid's raw sprites: the finishing is chosen on them

    def on_sample(step: int) -> None:
        if dist.main:
            share, sprites = grids.log_grid(state, cfg, data, run_dir, device, tracker)
            copies.append((step, share))
            last_grid[:] = [sprites]

    def on_epoch(epoch: int, mean_loss: float) -> None:
        tracker.log_metrics({"epoch_loss": mean_loss}, state.step)

    status = "FAILED"
    stop = stop_flag(dist, device)
    try:
        with stop:
            run_loop(
                state,
                cfg,
                data,
                device,
                on_step=on_step,
                on_checkpoint=on_checkpoint,
                on_sample=on_sample,
                on_epoch=on_epoch,
                stop=stop,
            )
        check_in_sync(state, dist, device)
        status = "FINISHED"
        if cfg.time_budget and state.step < cfg.steps:  # the budget ended it: the card says how far it got
            log.info("time budget of %.0f s spent after %d steps", cfg.time_budget, state.step)
            cfg = dataclasses.replace(cfg, steps=max(1, state.step))
    except KeyboardInterrupt:
        status = "KILLED"
        on_checkpoint(True)
        dist.barrier()  # every rank agreed to stop: none exits (and gets the others killed) before the save
        how = "" if stop.signum == signal.SIGINT else f" by {signal.Signals(stop.signum).name}"
        raise Interrupted(
            f"interrupted{how} at step {state.step}; checkpoint saved in {str(run_dir)!r}",
            run_dir=run_dir,
            signum=stop.signum,
        ) from None
    finally:
        if status != "FINISHED":
            tracker.finish(status)
    on_checkpoint(True)
    if cfg.sample_every and state.step % cfg.sample_every != 0:
        on_sample(state.step)
    grid = last_grid[0] if last_grid else None
    model_path = _save_model(cfg, data, state, tracker, run_dir, ckpt_path, register_name, dist, copies, grid, device)
    return RunResult(
        run_dir,
        ckpt_path,
        model_path,
        state.step,
        dict(state.tracking_ids or {}),
        time.time() - t_start,
        _said_copies(copies, len(data.images)),
    )


def _said_copies(copies: list[tuple[int, float]], num_sprites: int) -> float | None:
    """The last sample grid's share of copies, with a warning when the model learns its sprites by heart."""
    if not copies:
        return None
    step, share = copies[-1]
    if msg := memorising_message(share, step, num_sprites):
        log.warning(msg)
    return share


def _save_model(
    cfg: TrainConfig,
    data: SpriteSet,
    state: TrainState,
    tracker: MultiTracker,
    run_dir: Path,
    ckpt_path: Path,
    register_name: str | None,
    dist: Dist,
    copies: list[tuple[int, float]] | None = None,
    grid: np.ndarray | None = None,
    device: str = "cpu",
) -> Path:
    """The sampling weights (EMA) beside the checkpoint, both logged; the tracked run marked finished. The
    card keeps the last sample grid's share of copies of a training sprite (`grid_copies`, sm info) and
    the finishing chosen on that grid's sprites (`post`, eval.post_choice.texture_post; a grid is drawn
    for it when the run drew none at its last step)."""
    model_path = run_dir / MODEL_NAME
    if dist.main:
        ckpt = to_checkpoint(cfg, data, state, full=False)
        if copies:
            ckpt.meta["grid_copies"] = {"step": copies[-1][0], "share": copies[-1][1]}
        if grid is None:
            grid = grids.sample_grid(state, cfg, data, None, device)
        ckpt.meta["post"] = texture_post(ModelCard(model_path, ckpt.meta), grid, data.images)
        save_checkpoint(model_path, ckpt)
        tracker.log_artifact(ckpt_path, "checkpoint")
        tracker.log_artifact(model_path, "model")
        if register_name:
            tracker.register(model_path, register_name)
    tracker.finish("FINISHED")
    return model_path
