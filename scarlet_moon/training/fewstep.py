"""Few-step distillation: a student that samples in N DDIM steps what its teacher samples in ~25.

Progressive distillation (Salimans & Ho 2022, "Progressive distillation for fast sampling of
diffusion models", Algorithm 2), taken in one phase over K teacher steps per student step as
TRACT does (Berthelot et al. 2023, "TRACT: denoising diffusion models with transitive closure
time-distillation"). The student samples with DDIM on the product's trailing grid of N steps
(schedule.timesteps). For a student step from t to s (the next grid point; clean data after the
last), training sprites are noised to z_t = a_t x + s_t eps, the teacher integrates z_t to z_s,
and the student learns the one x0 that a single DDIM step maps z_t to z_s with:

    x0* = (z_s - (s_s / s_t) z_t) / (a_s - (s_s / s_t) a_t)        (x0* = z_s on the last step)

as its own parametrisation (v* = (a_t z_t - x0*) / s_t; eps* = (z_t - a_t x0*) / s_t): plain
MSE on v is PD's "SNR + 1" weighting of the x0 error. The teacher's segment:
- an ordinary model: DPM-Solver++(2M), the product's default sampler, with K substeps spread
  evenly over the segment's timesteps (K = 6 at N = 4 is the teacher's 24-25 steps in all);
- a few-step model (a second round, N dividing its steps): its own DDIM steps, as in PD.
Labelled rows learn the teacher's segments at its default guidance (two rows for an ordinary
teacher, one for a guidance-distilled one), null rows its unguided segments (NULL_SHARE of the
rows): the student is guidance-distilled as well (training.distill), its card's default
guidance samples in one row per step. The student starts from the teacher's weights; Adam with
cosine decay and EMA as training.distill. The card records the method, N and the teacher.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from scarlet_moon.diffusion.schedule import timesteps as grid_of
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import file_fingerprint
from scarlet_moon.training.distill import NULL_SHARE, teacher_inputs, train_student

METHOD = "progressive distillation (Salimans & Ho 2022), K teacher steps per student step in one phase (TRACT)"
MAX_SAMPLE_STEPS = 16


def segments(card: Any, n: int, substeps: int) -> list[tuple[list[int], float, str]]:
    """Per student step i: (the teacher's timesteps from grid[i] on, the abar it stops at, its sampler).

    `card` is the teacher's. A few-step teacher (its card names ddim with M steps) walks its own
    grid (N must divide M); any other teacher runs dpmpp-2m over `substeps` even timesteps."""
    T, abar = card.schedule.num_steps, card.schedule.alphas_cumprod()
    if not 1 <= n <= MAX_SAMPLE_STEPS:
        raise BadInput(f"{arg('sample_steps')} {n}: expected 1..{MAX_SAMPLE_STEPS} student steps")
    grid = grid_of(card.schedule, n)
    ends = [float(abar[t]) for t in grid[1:]] + [1.0]
    teacher_steps = int((card.meta.get("fewstep") or {}).get("steps", 0))
    if teacher_steps:
        if teacher_steps <= n or teacher_steps % n:
            raise BadInput(
                f"{arg('sample_steps')} {n}: the teacher is a {teacher_steps}-step model; the student "
                f"needs a divisor of {teacher_steps} below it (e.g. {teacher_steps // 2})"
            )
        fine = grid_of(card.schedule, teacher_steps)
        k = teacher_steps // n
        if fine[::k] != grid:  # pragma: no cover - trailing grids nest when n divides M
            raise BadInput(f"the {n}-step grid is not part of the teacher's {teacher_steps}-step grid")
        return [(fine[i * k : (i + 1) * k], end, "ddim") for i, end in enumerate(ends)]
    if not 1 <= substeps <= T // n:
        raise BadInput(f"{arg('substeps')} {substeps}: expected 1..{T // n} teacher steps per student step")
    out = []
    for i, end in enumerate(ends):
        stop = grid[i + 1] if i + 1 < n else -1
        ts = np.round(np.linspace(grid[i], stop, substeps + 1)[:-1]).astype(np.int64)
        out.append(([int(t) for t in ts], end, "dpmpp-2m"))
    return out


def _teacher_segment(
    teacher: torch.nn.Module, card: Any, z: torch.Tensor, y: torch.Tensor, seg: tuple[list[int], float, str]
) -> torch.Tensor:
    """z [B,C,H,W] at seg's first timestep carried by the teacher to abar = seg[1] (no grad)."""
    from scarlet_moon.diffusion.guidance import make_denoiser
    from scarlet_moon.diffusion.samplers import clipped, sample_ddim, sample_dpmpp_2m

    ts, end, sampler = seg
    abar = card.schedule.alphas_cumprod()
    w = card.guidance_between_rows(None)
    null = torch.full_like(y, len(card.label_names))
    labels = torch.cat([y, null]) if w != 1.0 else y

    def run(x: torch.Tensor, t: int) -> torch.Tensor:
        return teacher(x, torch.full((len(x),), float(t), device=x.device), labels)

    denoise = make_denoiser(
        run,
        len(y),
        w,
        abar,
        card.prediction,
        concat=lambda a, b: torch.cat([a, b]),
        finite=lambda a: bool(torch.isfinite(a).all()),
    )
    if card.config.get("clip_x0", True):
        denoise = clipped(denoise, abar)
    step = sample_ddim if sampler == "ddim" else sample_dpmpp_2m
    return step(denoise, z, abar, ts, abar_end=end)


def target(z_t: torch.Tensor, z_s: torch.Tensor, abar_t: float, abar_s: float, prediction: str) -> torch.Tensor:
    """What the student must predict at z_t so that one DDIM step lands on z_s (module docstring)."""
    a_t, s_t = math.sqrt(abar_t), math.sqrt(1.0 - abar_t)
    a_s, s_s = math.sqrt(abar_s), math.sqrt(max(1.0 - abar_s, 0.0))
    r = s_s / s_t
    x0 = (z_s - z_t * r) * (1.0 / (a_s - r * a_t))
    if prediction == "v":
        return (z_t * a_t - x0) * (1.0 / s_t)
    return (z_t - x0 * a_t) * (1.0 / s_t)


def fewstep_step(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    card: Any,
    x0: torch.Tensor,
    y: torch.Tensor,
    segs: list[tuple[list[int], float, str]],
    gen: torch.Generator,
) -> torch.Tensor:
    """The loss of one batch: x0 [B,C,H,W] in model range, y [B] labels; one student step per batch."""
    b, dev = len(x0), x0.device
    i = int(torch.randint(0, len(segs), (1,), generator=gen, device=dev))
    t = segs[i][0][0]
    abar = card.schedule.alphas_cumprod()
    null = torch.rand(b, generator=gen, device=dev) < NULL_SHARE
    y = torch.where(null, torch.full_like(y, len(card.label_names)), y)
    noise = torch.randn(x0.shape, generator=gen, device=dev)
    z_t = x0 * math.sqrt(abar[t]) + noise * math.sqrt(1.0 - abar[t])
    with torch.no_grad():
        z_s = _teacher_segment(teacher, card, z_t, y, segs[i])
        want = target(z_t, z_s, float(abar[t]), segs[i][1], card.prediction)
    pred = student(z_t, torch.full((b,), float(t), device=dev), y)
    return F.mse_loss(pred, want)


def distill_fewstep(
    teacher_path: str | Path | None,
    out: str | Path,
    *,
    sample_steps: int = 4,
    substeps: int = 6,
    steps: int = 1500,
    batch: int = 64,
    lr: float = 2e-4,
    ema_decay: float = 0.999,
    seed: int = 0,
    device: str = "cpu",
    data: Any = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train a `sample_steps`-step student of `teacher_path` (None = bundled) and save it to `out`."""
    from scarlet_moon.models.checkpoint import Checkpoint, save_checkpoint

    out = Path(out)
    card, ds = teacher_inputs(teacher_path, out, steps, batch, data)
    segs = segments(card, sample_steps, substeps)
    t0 = time.perf_counter()
    ema, losses = train_student(
        card,
        ds,
        lambda st, te, x0, y, gen: fewstep_step(st, te, card, x0, y, segs, gen),
        steps=steps,
        batch=batch,
        lr=lr,
        ema_decay=ema_decay,
        seed=seed,
        device=device,
        progress=progress,
    )
    info = {
        "method": METHOD,
        "steps": sample_steps,
        "sampler": "ddim",
        "teacher": file_fingerprint(card.path),
        "teacher_name": card.path.name,
        "teacher_sampling": [s[2] for s in segs][0],
        "teacher_steps_per_step": len(segs[0][0]),
        "train_steps": steps,
        "batch": batch,
        "lr": lr,
        "ema_decay": ema_decay,
        "seed": seed,
        "null_share": NULL_SHARE,
        "data": ds.source,
        "seconds": round(time.perf_counter() - t0, 1),
        "loss_first_100": float(np.mean(losses[:100])),
        "loss_last_100": float(np.mean(losses[-100:])),
    }
    meta = {k: v for k, v in card.meta.items() if k not in ("format", "package_version", "metrics", "onnx")}
    meta["config"] = dict(card.config, sampler="ddim", sample_steps=sample_steps, clip_x0=False)
    meta.update(kind="model", fewstep=info)
    w = card.guidance_between_rows(None)
    if w != 1.0:  # the labelled rows learned guided segments: the student is guidance-distilled at w too
        meta["distilled"] = {"guidance": w * card.guidance_base, "method": "folded into the few-step distillation"}
    save_checkpoint(out, Checkpoint(meta=meta, model={k: v.detach().cpu() for k, v in ema.state_dict().items()}))
    return info
