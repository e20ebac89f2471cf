"""The training loop, written out (no Trainer class).

Randomness is derived from (seed, step) alone: batch order from a per-epoch permutation,
timesteps, noise, label dropout and flips from a per-step generator. So a run resumed from
a checkpoint at step k draws exactly what the uninterrupted run drew at k+1, k+2, ...
"""

from __future__ import annotations

import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from scarlet_moon.data.sprites import SpriteSet
from scarlet_moon.diffusion.scaling import to_model_range
from scarlet_moon.errors import RunFailed, arg
from scarlet_moon.training.config import TrainConfig
from scarlet_moon.training.state import TrainState, schedule_of

log = logging.getLogger(__name__)


WARMUP_SHARE = 0.05  # with a time budget the warm-up is over by this share of it at the latest


@dataclass
class StepInfo:
    step: int
    total: int
    loss: float
    lr: float
    epoch: int


def cosine_lr(peak: float, step: int, total: int, warmup: int = 0) -> float:
    """Cosine decay from `peak` to 10% of it over steps warmup..total (0-based `step`)."""
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def lr_at(step: int, cfg: TrainConfig, spent: float | None = None) -> float:
    """Learning rate for optimizer step `step` (0-based). With a time budget the decay follows `spent`,
    the share of the budget used (0..1), and the warm-up ends after warmup_steps or 5% of the budget,
    whichever comes first (a short budget must not be all warm-up)."""
    if spent is not None:
        ramp = min(1.0, max((step + 1) / max(cfg.warmup_steps, 1), spent / WARMUP_SHARE))
        return ramp * _decayed(cfg, int(round(1e6 * min(spent, 1.0))), 1_000_000, 0)
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return _decayed(cfg, step, cfg.steps, cfg.warmup_steps)


def _decayed(cfg: TrainConfig, step: int, total: int, warmup: int) -> float:
    if cfg.lr_schedule == "linear-decay":  # the ancestor decayed linearly to 0 over the run
        return cfg.lr * (1 - step / total)
    if cfg.lr_schedule == "cosine":
        return cosine_lr(cfg.lr, step, total, warmup)
    return cfg.lr


def draw_batch(step: int, cfg: TrainConfig, n: int, num_classes: int) -> dict[str, torch.Tensor]:
    """Indices, timesteps, noise, dropped labels and flips for one step; a function of (seed, step)."""
    per_epoch = max(1, n // cfg.batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
    idx = (
        perm[k * cfg.batch_size : (k + 1) * cfg.batch_size]
        if n >= cfg.batch_size
        else torch.randint(n, (cfg.batch_size,), generator=torch.Generator().manual_seed(cfg.seed + step))
    )
    g = torch.Generator().manual_seed(cfg.seed * 7_919 + step + 1)
    b = len(idx)
    return {
        "idx": idx,
        "t": torch.randint(0, cfg.timesteps, (b,), generator=g),
        "drop": torch.rand(b, generator=g) < cfg.cond_drop,
        "flip": torch.rand(b, generator=g) < (0.5 if cfg.hflip else 0.0),
        "epoch": torch.tensor(epoch),
        "seed": torch.tensor(int(torch.randint(0, 2**31 - 1, (1,), generator=g))),
    }


def noised(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, a, s): x0 [B,C,H,W] noised to timesteps t [B]; a = sqrt(abar_t), s = sqrt(1 - abar_t), [B,1,1,1]."""
    a = abar[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - abar[t]).sqrt().view(-1, 1, 1, 1)
    return a * x0 + s * noise, a, s


def diffusion_loss(
    model: torch.nn.Module,
    x0: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    abar: torch.Tensor,
    cfg: TrainConfig,
) -> torch.Tensor:
    """Weighted MSE on eps or v; x0 [B,C,H,W], t [B] int, abar [T] on the same device."""
    xt, a, s = noised(x0, t, noise, abar)
    target = noise if cfg.prediction == "eps" else a * noise - s * x0
    per_sample = F.mse_loss(model(xt, t.float(), y), target, reduction="none").mean(dim=(1, 2, 3))
    if cfg.loss_weighting == "min-snr":  # Hang et al. 2023
        snr = abar[t] / (1 - abar[t]).clamp_min(1e-12)
        clipped = snr.clamp(max=cfg.min_snr_gamma)
        weight = clipped / snr.clamp_min(1e-12) if cfg.prediction == "eps" else clipped / (snr + 1)
        per_sample = per_sample * weight
    return per_sample.mean()


def train_step(
    state: TrainState,
    cfg: TrainConfig,
    data_x: torch.Tensor,
    data_y: torch.Tensor,
    abar: torch.Tensor,
    num_classes: int,
    spent: float | None = None,
) -> tuple[float, float, int]:
    step = state.step
    draw = draw_batch(step, cfg, len(data_x), num_classes)
    dev = data_x.device
    x0, y = data_x[draw["idx"]], data_y[draw["idx"]].clone()
    flip = draw["flip"].to(dev)
    x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(-1), x0)
    y[draw["drop"].to(dev)] = num_classes  # the null label
    gen = torch.Generator(device=dev).manual_seed(int(draw["seed"]))
    noise = torch.randn(x0.shape, generator=gen, device=dev)
    t = draw["t"].to(dev)
    if state.world > 1:  # every rank drew the same global batch; each trains on its slice
        part = slice(state.rank * len(t) // state.world, (state.rank + 1) * len(t) // state.world)
        x0, y, t, noise = x0[part], y[part], t[part], noise[part]
    torch.manual_seed(int(draw["seed"]))  # dropout layers, if any
    lr = lr_at(step, cfg, spent)
    set_lr(state.opt, lr)
    loss = diffusion_loss(state.net or state.model, x0, y, t, noise, abar, cfg)
    value = state.mean_loss(loss)
    if not math.isfinite(value):
        return value, lr, int(draw["epoch"])
    apply_update(state.model, state.opt, state.ema, loss, cfg, step)
    state.step += 1
    return value, lr, int(draw["epoch"])


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Every group at `lr`, times its `lr_scale` (the label rows of a fine-tune: state.param_groups)."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def apply_update(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    ema: torch.nn.Module | None,
    loss: torch.Tensor,
    cfg: TrainConfig,
    step: int,
) -> None:
    """One optimizer step on `loss`: gradients, clipping (cfg.grad_clip), the step, the EMA."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    if ema is not None:
        update_ema(ema, model, cfg.ema_decay, step)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """ema <- ema + (1 - d) (model - ema), buffers copied; d warms up to `decay`."""
    d = min(decay, (1 + step) / (10 + step))  # warm-up: early weights are forgotten fast
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - d)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopFlag:
    """Ctrl-C (SIGINT), SIGTERM (timeout, docker stop, job schedulers) and SIGHUP (a closed terminal) set
    a flag that the loop checks after each whole step, so the run saves a checkpoint and stops; a
    second signal aborts. `signum` is the signal that stopped it."""

    def __init__(self) -> None:
        self.set = False
        self.signum: int = signal.SIGINT
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
        for sig in STOP_SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                break
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set, self.signum = True, signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def should_stop(self) -> bool:
        return self.set

    def agreed_seconds(self, seconds: float) -> float:
        """The run's elapsed time as every process sees it (one process: its own clock)."""
        return seconds


Hook = Callable[[StepInfo], None]


def run_loop(
    state: TrainState,
    cfg: TrainConfig,
    data: SpriteSet,
    device: str,
    *,
    on_step: Hook,
    on_checkpoint: Callable[[bool], Path],
    on_sample: Callable[[int], None],
    on_epoch: Callable[[int, float], None],
    stop: StopFlag,
) -> None:
    """Steps until cfg.steps; checkpoints/samples on schedule; NaN and Ctrl-C end it cleanly."""
    x = torch.from_numpy(to_model_range(data.images)).to(device)
    y = torch.from_numpy(data.labels.astype(np.int64)).to(device)
    abar = torch.from_numpy(schedule_of(cfg).alphas_cumprod()).float().to(device)
    num_classes = len(data.label_names)
    epoch_losses: list[float] = []
    current_epoch = None
    state.model.train()
    budget, start = cfg.time_budget, time.monotonic() - state.elapsed
    while state.step < cfg.steps and not (budget and state.elapsed >= budget):
        loss, lr, epoch = train_step(state, cfg, x, y, abar, num_classes, state.elapsed / budget if budget else None)
        state.elapsed = stop.agreed_seconds(time.monotonic() - start)  # ranks stop and decay LR alike
        if not math.isfinite(loss):
            kept = on_checkpoint(False)
            last = (
                f"The last good checkpoint is kept: {kept}"
                if kept.is_file()
                else f"No checkpoint had been written yet (lower {arg('lr')}, or check the data)"
            )
            raise RunFailed(f"loss became {loss} at step {state.step + 1}; stopped without saving it. {last}")
        if current_epoch is not None and epoch != current_epoch and epoch_losses:
            on_epoch(current_epoch, float(np.mean(epoch_losses)))
            epoch_losses = []
        current_epoch = epoch
        epoch_losses.append(loss)
        total = cfg.steps if not budget else max(state.step, round(state.step * budget / max(state.elapsed, 1e-9)))
        on_step(StepInfo(state.step, total, loss, lr, epoch))
        if cfg.sample_every and state.step % cfg.sample_every == 0:
            on_sample(state.step)
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and state.step < cfg.steps:
            on_checkpoint(True)
        if stop.should_stop():
            raise KeyboardInterrupt
    if epoch_losses and current_epoch is not None:
        on_epoch(current_epoch, float(np.mean(epoch_losses)))
