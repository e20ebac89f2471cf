"""A run's state: the networks and optimizer, built new or rebuilt from a checkpoint, and written back.

A resumed run keeps its config; settings asked for again on resume either apply where that is
sound (RESUMABLE: how long, how fast, how often to write) or are refused, each one named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from scarlet_moon.data.sprites import ATTRIBUTION, SpriteSet
from scarlet_moon.diffusion.schedule import Schedule
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.limits import MAX_STEPS
from scarlet_moon.models.checkpoint import Checkpoint, load_checkpoint, optim_from_tensors, optim_to_tensors
from scarlet_moon.models.unet import build_model, count_params
from scarlet_moon.training.config import TrainConfig

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "checkpoint.safetensors"  # full training state, rewritten in place
MODEL_NAME = "model.safetensors"  # sampling weights only (EMA), written at the end
RESUMABLE = ("steps", "time_budget", "lr", "sample_every", "checkpoint_every", "log_every")  # may change on resume


def local_mean(loss: torch.Tensor) -> float:
    return float(loss.detach())


@dataclass
class TrainState:
    model: torch.nn.Module
    ema: torch.nn.Module | None
    opt: torch.optim.Optimizer
    step: int = 0
    tracking_ids: dict[str, Any] | None = None
    net: torch.nn.Module | None = None  # what forward/backward run through (DDP wrapper); None = model
    rank: int = 0  # this process's slice of the global batch (distributed.py)
    world: int = 1
    mean_loss: Callable[[torch.Tensor], float] = local_mean  # the global batch's loss (distributed.wrap)
    elapsed: float = 0.0  # seconds of wall clock trained so far (a time budget spends them)
    parent: dict[str, Any] | None = None  # the model this run was fine-tuned from (training.finetune)


def schedule_of(cfg: TrainConfig) -> Schedule:
    return Schedule(cfg.schedule, cfg.timesteps, cfg.beta_start, cfg.beta_end)


def build_network(cfg: TrainConfig, *, channels: int, size: int | tuple[int, int], num_classes: int) -> torch.nn.Module:
    return build_model(cfg.model, channels=channels, size=size, num_classes=num_classes, timesteps=cfg.timesteps)


def build_state(
    cfg: TrainConfig, *, channels: int, size: int | tuple[int, int], num_classes: int, device: str
) -> TrainState:
    torch.manual_seed(cfg.seed)  # initial weights depend on the seed only
    model = build_network(cfg, channels=channels, size=size, num_classes=num_classes).to(device)
    ema = None
    if cfg.ema_decay > 0:
        ema = build_network(cfg, channels=channels, size=size, num_classes=num_classes).to(device)
        ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False)
    opt = torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return TrainState(model, ema, opt)


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """One group; with label_lr_scale != 1 the label embedding rows are a second group whose lr is scaled
    (`lr_scale`, read by the loop): Adam moves each weight ~lr a step, so rows that start alike (new
    labels of a fine-tune) would otherwise stay alike for thousands of steps."""
    rows = getattr(model, "label_emb", None)
    if cfg.label_lr_scale == 1.0 or rows is None:
        return [{"params": list(model.parameters())}]
    others = [p for p in model.parameters() if p is not rows.weight]
    return [{"params": others}, {"params": [rows.weight], "lr_scale": cfg.label_lr_scale}]


def model_meta(cfg: TrainConfig, data: SpriteSet, state: TrainState) -> dict[str, Any]:
    """The model card part of the checkpoint metadata: enough to rebuild and sample."""
    h, w = data.size
    return {
        "config": cfg.to_dict(),
        "label_names": list(data.label_names),
        "schedule": schedule_of(cfg).to_dict(),
        "prediction": cfg.prediction,
        "image_size": [h, w],
        "channels": int(data.images.shape[-1]),
        "data_fingerprint": data.fingerprint(),
        "data_source": data.source,
        "data_options": dict(data.options),
        **({"data_attribution": ATTRIBUTION[data.source]} if data.source in ATTRIBUTION else {}),
        "palette": data.palette().tolist(),
        "colors_per_sprite": colour_stats(data.images),
        "num_params": count_params(state.model),
        "step": state.step,
        "elapsed_s": round(state.elapsed, 3),
        **({"parent": state.parent} if state.parent else {}),
        "tracking": state.tracking_ids or {},
    }


def colour_stats(images: np.ndarray) -> dict[str, float]:
    """Distinct opaque colours per training sprite; `p90` is the default cap when sampling."""
    from scarlet_moon.data.pixels import colors_per_sprite

    n = colors_per_sprite(images)
    return {"mean": float(n.mean()), "median": float(np.median(n)), "p90": int(np.ceil(np.percentile(n, 90)))}


def to_checkpoint(cfg: TrainConfig, data: SpriteSet, state: TrainState, *, full: bool = True) -> Checkpoint:
    meta = model_meta(cfg, data, state)
    if not full:  # sampling weights only: small, for shipping and registering
        weights = (state.ema or state.model).state_dict()
        return Checkpoint(meta=dict(meta, kind="model"), model=weights)
    optim, groups = optim_to_tensors(state.opt.state_dict())
    meta.update(kind="train", optim_groups=groups)
    ema = state.ema.state_dict() if state.ema is not None else {}
    return Checkpoint(meta=meta, model=state.model.state_dict(), ema=ema, optim=optim)


def restore_state(path: Path, data: SpriteSet, device: str) -> tuple[TrainConfig, TrainState]:
    """Rebuild the training state of a checkpoint with its own config."""
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    if meta.get("kind") != "train":
        raise BadInput(
            f"{str(path)!r} holds sampling weights only; {arg('resume')} needs a training checkpoint "
            f"({CHECKPOINT_NAME} in a run folder)"
        )
    saved = TrainConfig.from_dict(meta["config"], source=str(path))
    if (
        list(data.label_names) != meta["label_names"]
        or list(data.size) != meta["image_size"]
        or data.images.shape[-1] != meta["channels"]
    ):
        raise BadInput(
            f"checkpoint {str(path)!r} was trained on {meta['image_size']} sprites with labels "
            f"{meta['label_names']}; this data has {list(data.size)} with {list(data.label_names)}"
        )
    if meta["data_fingerprint"] != data.fingerprint():
        log.warning(
            "the data differs from the run's (fingerprint %s, now %s); resuming anyway",
            meta["data_fingerprint"],
            data.fingerprint(),
        )
    state = build_state(
        saved, channels=meta["channels"], size=data.size, num_classes=len(meta["label_names"]), device=device
    )
    try:
        state.model.load_state_dict(ckpt.model)
        if state.ema is not None:
            state.ema.load_state_dict(ckpt.ema)
        state.opt.load_state_dict(optim_from_tensors(ckpt.optim, meta["optim_groups"]))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise BadInput(f"checkpoint {str(path)!r} does not fit its own config: {str(exc).splitlines()[0]}") from None
    state.step = int(meta["step"])
    state.elapsed = float(meta.get("elapsed_s", 0.0))
    state.parent = meta.get("parent")
    state.tracking_ids = meta.get("tracking") or {}
    return saved, state


def resumed_config(
    saved: TrainConfig, asked: TrainConfig, given: Iterable[str], run: str
) -> tuple[TrainConfig, dict[str, tuple[Any, Any]]]:
    """The run's config with the settings `given` again on resume applied: (config, {name: (old, new)}).

    Only RESUMABLE settings may differ from the run's; any other that differs is BadInput naming each."""
    changed = {k: (saved.get(k), asked.get(k)) for k in given if saved.get(k) != asked.get(k)}
    fixed = [k for k in changed if k not in RESUMABLE]
    if fixed:
        listed = ", ".join(f"{k} (run {changed[k][0]!r}, asked {changed[k][1]!r})" for k in fixed)
        raise BadInput(
            f"{arg('resume')} {run!r}: {listed} cannot change when a run is resumed; only "
            f"{', '.join(RESUMABLE)} can. Leave {'it' if len(fixed) == 1 else 'them'} out, or start a "
            "new run"
        )
    for k, (old, new) in changed.items():
        log.warning("resuming with %s %r (the run had %r)", k, new, old)
    cfg = saved.replace({k: new for k, (_, new) in changed.items()}, source=f"resume of {run}")
    if cfg.time_budget and "steps" not in given:  # a budget decides how far it goes, not the steps it reached
        cfg = cfg.replace({"steps": MAX_STEPS})
    return cfg, changed
