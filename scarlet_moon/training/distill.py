"""Guidance distillation: a student that gives the guided prediction in one network row.

Classifier-free guidance costs two rows per sprite and step (labelled and null). Following
Meng et al. 2023 ("On distillation of guided diffusion models", stage one, at a fixed scale S),
the student starts from the teacher's weights and learns, on noised training sprites,

    student(x_t, t, y)    = teacher_u + S * (teacher_c - teacher_u)   (y a label: the guided output)
    student(x_t, t, null) = teacher_u                                  (the null row stays unguided)

so the default guidance S runs one row per step, and any other scale w still works with two
rows at w / S (u + (w / S) (student_c - u) = u + w (c - u)). The card records S under
"distilled" and every backend divides the requested guidance by it (ModelCard.guidance_base).
The optimisation reuses the training loop's noising, cosine learning rate and EMA (training.loop).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from scarlet_moon.errors import BadInput, RunFailed, arg
from scarlet_moon.limits import MAX_BATCH, MAX_STEPS
from scarlet_moon.models.card import file_fingerprint
from scarlet_moon.training.loop import cosine_lr, noised, update_ema

NULL_SHARE = 0.1  # rows trained on the null label (the teacher's unguided output)


def distill_step(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    x0: torch.Tensor,
    y: torch.Tensor,
    abar: torch.Tensor,
    scale: float,
    gen: torch.Generator,
    null_label: int,
) -> torch.Tensor:
    """The MSE of one batch, unweighted: guidance steers most at high noise, where the teacher's
    min-SNR weights would be near 0. x0 [B,C,H,W] in model range, y [B] labels (no nulls)."""
    b, dev = len(x0), x0.device
    t = torch.randint(0, len(abar), (b,), generator=gen, device=dev)
    noise = torch.randn(x0.shape, generator=gen, device=dev)
    null = torch.rand(b, generator=gen, device=dev) < NULL_SHARE
    xt, _, _ = noised(x0, t, noise, abar)
    tf = t.float()
    with torch.no_grad():
        both = teacher(torch.cat([xt, xt]), torch.cat([tf, tf]), torch.cat([y, torch.full_like(y, null_label)]))
        cond, uncond = both[:b], both[b:]
        target = torch.where(null.view(-1, 1, 1, 1), uncond, uncond + (cond - uncond) * scale)
    y_in = torch.where(null, torch.full_like(y, null_label), y)
    return F.mse_loss(student(xt, tf, y_in), target)


def teacher_inputs(teacher_path: str | Path | None, out: Path, steps: int, batch: int, data: Any) -> tuple[Any, Any]:
    """(teacher card, the sprites to noise) for a distillation; BadInput for anything unusable."""
    from scarlet_moon.backends import is_onnx, read_card
    from scarlet_moon.data.sprites import load_sprites

    if out.suffix.lower() != ".safetensors" or not out.parent.is_dir():
        raise BadInput(f"{arg('out')} {str(out)!r}: expected a .safetensors path in an existing folder")
    if not (1 <= steps <= MAX_STEPS and 1 <= batch <= MAX_BATCH):
        raise BadInput(
            f"{arg('steps')} {steps} / {arg('batch')} {batch}: expected 1..{MAX_STEPS} steps and "
            f"1..{MAX_BATCH} sprites per batch"
        )
    if is_onnx(teacher_path):
        raise BadInput(f"{arg('model')} {str(teacher_path)!r} is ONNX; distillation needs the .safetensors checkpoint")
    card = read_card(teacher_path)
    source = card.meta.get("data_source", "")
    ds = data if data is not None else load_sprites(source or None)
    if ds.label_names != tuple(card.label_names) or ds.size != card.size:
        raise BadInput(f"data {ds.source!r} does not match the model's labels and sprite size")
    return card, ds


def _inputs(teacher_path: str | Path | None, out: Path, steps: int, batch: int, data: Any) -> tuple[Any, float, Any]:
    """(teacher card, its guidance scale, the sprites to noise); BadInput for anything unusable."""
    card, ds = teacher_inputs(teacher_path, out, steps, batch, data)
    scale = float(card.defaults()["guidance"]) * card.guidance_base
    if card.guidance_base != 1.0 or scale == 1.0:
        raise BadInput(
            f"model {str(card.path)!r} "
            + (
                "is already distilled"
                if card.guidance_base != 1.0
                else "samples without guidance (guidance 1); there is nothing to distill"
            )
        )
    return card, scale, ds


LossFn = Callable[[torch.nn.Module, torch.nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def train_student(
    card: Any,
    ds: Any,
    loss_fn: LossFn,
    *,
    steps: int,
    batch: int,
    lr: float,
    ema_decay: float,
    seed: int,
    device: str,
    progress: Callable[[int, int, float], None] | None,
) -> tuple[torch.nn.Module, list[float]]:
    """A student that starts as the teacher (card's network) and follows loss_fn(student, teacher,
    x0 [B,C,H,W] flipped training sprites in model range, y [B], gen): Adam with cosine decay to
    10%, gradients clipped at 1, EMA. Returns the EMA weights and the loss of every step; both
    distillations (this module's and training.fewstep) run it."""
    from scarlet_moon.backends.torch_backend import load_torch_model
    from scarlet_moon.diffusion.scaling import to_model_range
    from scarlet_moon.training.config import TrainConfig, check_training_memory

    # the student trains like a run of the teacher's network at this batch (the teacher adds one copy of
    # the weights and no kept activations): refused before anything is built
    check_training_memory(
        TrainConfig.from_dict(card.config, source=f"the card of {str(card.path)!r}").replace({"batch_size": batch}),
        channels=card.channels,
        size=card.size,
        num_classes=len(card.label_names),
        what="distillation",
    )
    teacher = load_torch_model(card, device).requires_grad_(False)
    student = copy.deepcopy(teacher).requires_grad_(True).train()
    ema = copy.deepcopy(teacher)
    x_all = torch.from_numpy(to_model_range(ds.images)).to(device)
    y_all = torch.from_numpy(ds.labels.astype(np.int64)).to(device)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    losses: list[float] = []
    for step in range(steps):
        idx = torch.randint(0, len(x_all), (batch,), generator=gen, device=device)
        flip = torch.rand(batch, generator=gen, device=device) < 0.5  # the teacher's own augmentation
        x0 = torch.where(flip.view(-1, 1, 1, 1), x_all[idx].flip(-1), x_all[idx])
        for g in opt.param_groups:
            g["lr"] = cosine_lr(lr, step, steps)
        loss = loss_fn(student, teacher, x0, y_all[idx], gen)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise RunFailed(
                f"distillation loss became {losses[-1]} at step {step + 1}; nothing written; "
                f"try a lower {arg('lr')} (now {lr})"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        update_ema(ema, student, ema_decay, step)
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    return ema, losses


def distill(
    teacher_path: str | Path | None,
    out: str | Path,
    *,
    steps: int = 4000,
    batch: int = 256,
    lr: float = 1e-4,
    ema_decay: float = 0.999,
    seed: int = 0,
    device: str = "cpu",
    data: Any = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train a guidance-distilled student of `teacher_path` (None = bundled) and save it to `out`."""
    from scarlet_moon.models.checkpoint import Checkpoint, save_checkpoint

    out = Path(out)
    card, scale, ds = _inputs(teacher_path, out, steps, batch, data)
    t0 = time.perf_counter()
    abar = torch.from_numpy(card.schedule.alphas_cumprod()).float().to(device)

    def loss_fn(
        student: torch.nn.Module, teacher: torch.nn.Module, x0: torch.Tensor, y: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        return distill_step(student, teacher, x0, y, abar, scale, gen, len(card.label_names))

    ema, losses = train_student(
        card,
        ds,
        loss_fn,
        steps=steps,
        batch=batch,
        lr=lr,
        ema_decay=ema_decay,
        seed=seed,
        device=device,
        progress=progress,
    )
    info = {
        "guidance": scale,
        "teacher": file_fingerprint(card.path),
        "teacher_name": card.path.name,
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "ema_decay": ema_decay,
        "seed": seed,
        "null_share": NULL_SHARE,
        "data": ds.source,
        "seconds": round(time.perf_counter() - t0, 1),
        "loss_first_100": float(np.mean(losses[:100])),
        "loss_last_100": float(np.mean(losses[-100:])),
        "method": "guidance distillation, Meng et al. 2023 stage one, fixed scale",
    }
    meta = {k: v for k, v in card.meta.items() if k not in ("format", "package_version", "metrics", "onnx")}
    meta.update(kind="model", distilled=info)
    save_checkpoint(out, Checkpoint(meta=meta, model={k: v.detach().cpu() for k, v in ema.state_dict().items()}))
    return info
