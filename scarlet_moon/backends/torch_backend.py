"""Sampling with a torch model: wraps the network as the samplers' denoiser.

The samplers (scarlet_moon.diffusion.samplers) are backend-free; this module supplies the torch
denoiser, with classifier-free guidance and the eps/v parametrisation bound inside.
Noise comes from one numpy Generator seeded by the user, so the onnxruntime backend,
given the same seed, draws exactly the same noise.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from scarlet_moon.data.sprites import from_model_range
from scarlet_moon.diffusion.guidance import NoiseStream, make_denoiser
from scarlet_moon.diffusion.editing import Ops, has_edits, sample_edited
from scarlet_moon.diffusion.samplers import run_sampler
from scarlet_moon.diffusion.schedule import Schedule


def torch_denoiser(model: torch.nn.Module, labels: torch.Tensor, null_label: int, guidance: float,
                   abar: np.ndarray, prediction: str) -> Callable:
    """denoiser(x, t) -> (x0, eps) for a batch x [B,C,H,W] with per-sprite `labels` [B]."""
    y = torch.cat([labels, torch.full_like(labels, null_label)]) if guidance != 1.0 else labels

    def run(x: torch.Tensor, t: int) -> torch.Tensor:
        return model(x, torch.full((x.shape[0],), float(t), device=x.device), y)

    return make_denoiser(run, len(labels), guidance, abar, prediction,
                         concat=lambda a, b: torch.cat([a, b]), finite=lambda p: bool(torch.isfinite(p).all()))


def no_tf32() -> Any:
    """cuDNN convolutions in true fp32 while sampling (torch's default lets them use TF32): the
    same choice as the onnx backend (onnx_runtime.cuda_options), so both give the same sprites."""
    b = torch.backends.cudnn
    return b.flags(enabled=b.enabled, benchmark=b.benchmark, deterministic=b.deterministic, allow_tf32=False)


@torch.no_grad()
def generate_torch(model: torch.nn.Module, *, labels: Sequence[int], num_classes: int, size: tuple[int, int],
                   channels: int, schedule: Schedule, prediction: str, sampler: str, steps: int,
                   guidance: float, seed: int, eta: float = 0.0, clip_x0: bool = True, device: str = "cpu",
                   callback: Callable[[int, int], None] | None = None, edit: Any = None,
                   noise_parts: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """Sprites for `labels` (one per entry) -> uint8 N x H x W x C; `edit`: a generation.Request
    whose init/strength/mask/tileable apply (scarlet_moon.diffusion.editing), None for plain sampling."""
    was_training = model.training
    model.eval()
    stream = NoiseStream(seed, (len(labels), channels, *size), noise_parts)
    z0 = stream()
    x = torch.from_numpy(z0).to(device)
    y = torch.as_tensor(list(labels), dtype=torch.int64, device=device)
    abar = schedule.alphas_cumprod()
    denoise = torch_denoiser(model, y, num_classes, guidance, abar, prediction)

    def noise(i: int) -> torch.Tensor:
        return torch.from_numpy(stream(i)).to(device)

    with no_tf32():
        if edit is not None and has_edits(edit):
            ops = Ops(cat=lambda parts, axis: torch.cat(list(parts), dim=axis),
                      const=lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device))
            out = sample_edited(sampler, denoise, z0, schedule, steps, edit, ops, eta=eta, noise=noise,
                                callback=callback, clip_x0=clip_x0)
        else:
            out = run_sampler(sampler, denoise, x, schedule, steps, eta=eta, noise=noise, callback=callback,
                              clip_x0=clip_x0)
    model.train(was_training)
    return from_model_range(out.float().cpu().numpy())
