"""Training an animation model (models.anim) on an AnimSet: the loop written out, on the same config,
schedule, loss, EMA and learning-rate rules as a sprite model's (training.loop).

A step draws `batch_size` (character, slot) pairs: the anchor slot with probability ANCHOR_SHARE (it is
drawn from nothing, the hardest task), else any other slot with its references. Half the characters
are mirrored (every frame flipped, 'left' and 'right' swapped) when cfg.hflip.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from scarlet_moon.data.anim import AnimSet
from scarlet_moon.errors import BadInput, RunFailed, arg
from scarlet_moon.models.anim import AnimShape, cond_channels, conditions
from scarlet_moon.models.card import ModelCard, bundled_name
from scarlet_moon.models.checkpoint import Checkpoint, load_checkpoint
from scarlet_moon.models.fingerprint import file_fingerprint
from scarlet_moon.models.unet import build_model, count_params
from scarlet_moon.training.config import TrainConfig
from scarlet_moon.training.finetune import label_rows, load_weights, shrunk
from scarlet_moon.training.loop import apply_update, diffusion_loss, lr_at, set_lr
from scarlet_moon.training.state import param_groups, schedule_of

log = logging.getLogger(__name__)
ANCHOR_SHARE = 0.3


@dataclass
class AnimState:
    model: torch.nn.Module
    ema: torch.nn.Module | None
    opt: torch.optim.Optimizer
    shape: AnimShape
    step: int = 0
    elapsed: float = 0.0
    parent: dict[str, Any] | None = None
    losses: list[float] = field(default_factory=list)

    @property
    def sampler_net(self) -> torch.nn.Module:
        return self.ema if self.ema is not None else self.model


class Conditioned(torch.nn.Module):
    """The network seen as a plain denoiser of 4 channels: its conditioning planes appended to x."""

    def __init__(self, net: torch.nn.Module, cond: torch.Tensor):
        super().__init__()
        self.net, self.cond = net, cond

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.cond], 1), t, y)


def build_anim_network(cfg: TrainConfig, shape: AnimShape, size: tuple[int, int], num_classes: int) -> torch.nn.Module:
    return build_model(
        cfg.model,
        channels=4,
        size=size,
        num_classes=num_classes,
        timesteps=cfg.timesteps,
        cond_channels=cond_channels(shape.slots),
    )


def build_anim_state(cfg: TrainConfig, data: AnimSet, device: str = "cpu") -> AnimState:
    if cfg.model.arch != "unet":
        raise BadInput(f"an animation model needs arch 'unet', got {cfg.model.arch!r}")
    shape = AnimShape(data.directions, data.shape[2])
    size = data.shape[3:5]
    torch.manual_seed(cfg.seed)
    model = build_anim_network(cfg, shape, size, len(data.label_names)).to(device)
    ema = None
    if cfg.ema_decay > 0:
        ema = build_anim_network(cfg, shape, size, len(data.label_names)).to(device)
        ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False)
    opt = torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return AnimState(model, ema, opt, shape)


def to_slots(frames: np.ndarray) -> torch.Tensor:
    """uint8 N x D x F x H x W x 4 -> float N x S x 4 x H x W in [-1, 1] (S = D * F)."""
    n, d, f, h, w, _ = frames.shape
    x = frames.reshape(n, d * f, h, w, 4).transpose(0, 1, 4, 2, 3)
    return torch.from_numpy(np.ascontiguousarray(x)).float() / 127.5 - 1.0


def draw_anim_batch(
    slots: torch.Tensor, labels: torch.Tensor, shape: AnimShape, cfg: TrainConfig, step: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0 [B,4,H,W], conditioning planes, labels with dropout) of one step; a function of (seed, step)."""
    g = torch.Generator().manual_seed(cfg.seed * 7_919 + step + 1)
    b, s = cfg.batch_size, shape.slots
    char = torch.randint(len(slots), (b,), generator=g)
    other = torch.randint(1, max(s, 2), (b,), generator=g) if s > 1 else torch.zeros(b, dtype=torch.long)
    slot = torch.where(torch.rand(b, generator=g) < ANCHOR_SHARE, torch.zeros_like(other), other)
    chars = slots[char]  # B x S x 4 x H x W
    flip = torch.rand(b, generator=g) < (0.5 if cfg.hflip else 0.0)
    mirrored = chars[:, shape.mirrored()].flip(-1)
    chars = torch.where(flip.view(-1, 1, 1, 1, 1), mirrored, chars)
    refs = [shape.refs(int(k)) for k in slot]
    anchor_idx = torch.tensor([0 if a is None else a for a, _ in refs])
    key_idx = torch.tensor([0 if k is None else k for _, k in refs])
    has_anchor = torch.tensor([a is not None for a, _ in refs], dtype=torch.float32)
    has_key = torch.tensor([k is not None for _, k in refs], dtype=torch.float32)
    rows = torch.arange(b)
    anchor = chars[rows, anchor_idx] * has_anchor.view(-1, 1, 1, 1)
    key = chars[rows, key_idx] * has_key.view(-1, 1, 1, 1)
    y = labels[char].clone()
    y[torch.rand(b, generator=g) < cfg.cond_drop] = num_classes
    cond = conditions(anchor, key, has_anchor, has_key, slot, s)
    return chars[rows, slot], cond, y


def anim_step(
    state: AnimState, cfg: TrainConfig, slots: torch.Tensor, labels: torch.Tensor, abar: torch.Tensor, n_cls: int
) -> float:
    spent = state.elapsed / cfg.time_budget if cfg.time_budget else None
    x0, cond, y = draw_anim_batch(slots, labels, state.shape, cfg, state.step, n_cls)
    g = torch.Generator().manual_seed(cfg.seed * 104_729 + state.step)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, cfg.timesteps, (len(x0),), generator=g)
    set_lr(state.opt, lr_at(state.step, cfg, spent))
    loss = diffusion_loss(Conditioned(state.model, cond), x0, y, t, noise, abar, cfg)
    value = float(loss.item())
    if not math.isfinite(value):
        return value
    apply_update(state.model, state.opt, state.ema, loss, cfg, state.step)
    state.step += 1
    return value


def train_anim(
    state: AnimState,
    cfg: TrainConfig,
    data: AnimSet,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> AnimState:
    """Steps until cfg.steps or cfg.time_budget seconds; on_step(step, total, loss). A non-finite loss
    stops the run (RunFailed) before it spoils the weights."""
    slots, labels = to_slots(data.frames), torch.from_numpy(data.labels)
    abar = torch.from_numpy(schedule_of(cfg).alphas_cumprod()).float()
    n_cls, budget = len(data.label_names), cfg.time_budget
    start = time.monotonic() - state.elapsed
    state.model.train()
    while state.step < cfg.steps and not (budget and state.elapsed >= budget):
        loss = anim_step(state, cfg, slots, labels, abar, n_cls)
        state.elapsed = time.monotonic() - start
        if not math.isfinite(loss):
            raise RunFailed(f"loss became {loss} at step {state.step + 1}; stopped (lower {arg('lr')})")
        state.losses.append(loss)
        if on_step:
            total = cfg.steps if not budget else max(state.step, round(state.step * budget / max(state.elapsed, 1e-9)))
            on_step(state.step, total, loss)
        if should_stop():
            break
    return state


def config_from_parent(cfg: TrainConfig, parent: ModelCard, data: AnimSet) -> TrainConfig:
    """`cfg` with the parent's network and noise schedule (a fine-tune keeps what its weights were
    trained for); a parent of another depth than the frame size needs is BadInput."""
    pcfg = TrainConfig.from_dict(parent.config)
    h, w = data.shape[3:5]
    want = cfg.model.for_size(h, w).channel_mult or ()
    if parent.channels != 4:
        raise BadInput(f"{arg('init_from')} {str(parent.path)!r} draws {parent.channels} channels; expected RGBA (4)")
    if pcfg.model.arch != "unet" or tuple(pcfg.model.channel_mult or ()) != tuple(want):
        ph, pw = parent.size
        raise BadInput(
            f"{arg('init_from')} {str(parent.path)!r} is a {pw}x{ph} model with {len(pcfg.model.channel_mult or ())} "
            f"resolution levels; {w}x{h} frames need a 'unet' with {len(want)}: choose a model of this frame size"
        )
    keep = ("timesteps", "beta_start", "beta_end", "prediction", "schedule")
    return dataclasses.replace(cfg, model=pcfg.model, **{k: getattr(pcfg, k) for k in keep})


def load_parent(state: AnimState, cfg: TrainConfig, parent: ModelCard, data: AnimSet) -> None:
    """Start from a sprite model or an animation model (config_from_parent made `cfg` fit it): every layer
    is copied; the input conv's frame planes come from the parent, a reference or slot plane of an
    animation parent is kept where it means the same (the same direction name and frame), other planes
    start at zero, so the network starts as the parent. Label rows: by name, fresh rows for new labels."""
    fresh = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
    weights = {k: v.float() for k, v in load_checkpoint(parent.path, with_optim=False).weights.items()}
    weights = shrunk(weights, fresh, cfg.init_shrink)
    weights["inp.weight"] = _input_planes(weights["inp.weight"], AnimShape.from_meta(parent.meta), state.shape)
    weights["label_emb.weight"] = label_rows(
        weights["label_emb.weight"], parent.label_names, list(data.label_names), fresh["label_emb.weight"]
    )
    load_weights((state.model, state.ema), weights, parent.path)
    state.parent = {
        "fingerprint": file_fingerprint(parent.path),
        "name": bundled_name(parent.path),
        "labels": parent.label_names,
        "step": parent.meta.get("step"),
    }


def _input_planes(w: torch.Tensor, theirs: AnimShape | None, ours: AnimShape) -> torch.Tensor:
    """The input conv [C, 4 + cond, 3, 3] for `ours` from a parent's (a sprite model's: [C, 4, 3, 3])."""
    out = torch.zeros(w.shape[0], 4 + cond_channels(ours.slots), *w.shape[2:])
    out[:, :4] = w[:, :4]
    if theirs is None:
        return out
    out[:, 4 : 4 + 10] = w[:, 4 : 4 + 10]
    for d, name in enumerate(ours.directions):
        if name not in theirs.directions:
            continue
        for f in range(min(ours.frames, theirs.frames)):
            out[:, 14 + ours.slot(d, f)] = w[:, 14 + theirs.slot(theirs.directions.index(name), f)]
    return out


def anim_meta(cfg: TrainConfig, data: AnimSet, state: AnimState) -> dict[str, Any]:
    """The model card of an animation model: enough to rebuild and sample it."""
    from scarlet_moon.training.state import colour_stats

    n, d, f, h, w = data.shape
    return {
        "config": cfg.to_dict(),
        "anim": state.shape.to_dict(),
        "label_names": list(data.label_names),
        "schedule": schedule_of(cfg).to_dict(),
        "prediction": cfg.prediction,
        "image_size": [h, w],
        "channels": 4,
        "data_source": data.source,
        "data_options": {"layout": data.layout, "directions": ",".join(data.directions), "characters": n},
        "colors_per_sprite": colour_stats(data.frames.reshape(-1, h, w, 4)),
        "num_params": count_params(state.model),
        "step": state.step,
        "elapsed_s": round(state.elapsed, 3),
        **({"parent": state.parent} if state.parent else {}),
    }


def anim_checkpoint(cfg: TrainConfig, data: AnimSet, state: AnimState) -> Checkpoint:
    """Sampling weights only (the EMA when kept): what `sm anim` reads."""
    return Checkpoint(meta=dict(anim_meta(cfg, data, state), kind="model"), model=state.sampler_net.state_dict())
