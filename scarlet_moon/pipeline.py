"""Sampling with a torch model: wraps the network as the samplers' denoiser.

The samplers (scarlet_moon.samplers) are backend-free; this module supplies the torch
denoiser, with classifier-free guidance and the eps/v parametrisation bound inside.
Noise comes from one numpy Generator seeded by the user, so the onnxruntime backend,
given the same seed, draws exactly the same noise.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from scarlet_moon.data import from_model_range
from scarlet_moon.errors import RunFailed
from scarlet_moon.samplers import guided, run_sampler
from scarlet_moon.schedule import Schedule


def split_prediction(pred: Any, x: Any, a: float, s: float, prediction: str) -> tuple[Any, Any]:
    """Network output -> (x0, eps), arithmetic only (torch or numpy). a=sqrt(abar), s=sqrt(1-abar)."""
    if prediction == "v":
        return x * a - pred * s, x * s + pred * a
    return (x - pred * s) * (1.0 / a), pred


def torch_denoiser(model: torch.nn.Module, labels: torch.Tensor, null_label: int, guidance: float,
                   abar: np.ndarray, prediction: str) -> Callable:
    """denoiser(x, t) -> (x0, eps) for a batch x [B,C,H,W] with per-sprite `labels` [B]."""
    nulls = torch.full_like(labels, null_label)
    calls = [0]

    def denoise(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        calls[0] += 1
        a, s = float(np.sqrt(abar[t])), float(np.sqrt(1.0 - abar[t]))
        tt = torch.full((x.shape[0],), float(t), device=x.device)
        if guidance == 1.0:
            pred = model(x, tt, labels)
        else:  # one batched call for the conditional and unconditional predictions
            both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([labels, nulls]))
            pred = guided(both[: x.shape[0]], both[x.shape[0]:], guidance)
        if not bool(torch.isfinite(pred).all()):  # a NaN sprite must not be written out as black
            raise RunFailed(f"sampling produced NaN/inf at step {calls[0]} (timestep {t}); "
                            f"try a lower --guidance (now {guidance}) or another sampler")
        return split_prediction(pred, x, a, s, prediction)

    return denoise


def initial_noise(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    return rng.standard_normal(tuple(shape), dtype=np.float32)


@torch.no_grad()
def generate_torch(model: torch.nn.Module, *, labels: Sequence[int], num_classes: int, size: tuple[int, int],
                   channels: int, schedule: Schedule, prediction: str, sampler: str, steps: int,
                   guidance: float, seed: int, eta: float = 0.0, clip_x0: bool = True, device: str = "cpu",
                   callback: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Sprites for `labels` (one per entry) -> uint8 N x H x W x C."""
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    shape = (len(labels), channels, *size)
    x = torch.from_numpy(initial_noise(rng, shape)).to(device)
    y = torch.as_tensor(list(labels), dtype=torch.int64, device=device)
    abar = schedule.alphas_cumprod()
    denoise = torch_denoiser(model, y, num_classes, guidance, abar, prediction)

    def noise(i: int) -> torch.Tensor:
        return torch.from_numpy(initial_noise(rng, shape)).to(device)

    out = run_sampler(sampler, denoise, x, schedule, steps, eta=eta, noise=noise, callback=callback, clip_x0=clip_x0)
    model.train(was_training)
    return from_model_range(out.float().cpu().numpy())
