"""Generation: labels -> sprites, with pixel-perfect post-processing. The public Python API.

    import scarlet_moon
    images = scarlet_moon.generate(label="hero", count=16, seed=0)   # list of PIL RGBA images

The torch backend lives here; torch is imported only when a torch model is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.models.card import ModelCard, read_card, resolve_labels, split_count
from scarlet_moon.errors import BadInput

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Request:
    labels: tuple[int, ...]        # one entry per sprite
    seed: int = 0
    sampler: str | None = None     # None: the model card's default
    steps: int | None = None
    guidance: float | None = None
    eta: float = 0.0
    alpha_threshold: int = 128
    palette: np.ndarray | None = None   # K x 3 uint8; None: the card's palette if snap_palette
    snap_palette: bool = True
    colors: int | None = None
    init: np.ndarray | None = None      # uint8 H x W x C sprite to start from (scarlet_moon.diffusion.editing)
    mask: np.ndarray | None = None      # bool H x W, True = generate; needs init
    strength: float | None = None       # with init: 0 keeps it, 1 ignores it
    tileable: bool = False              # opposite edges wrap
    parts: tuple[tuple[int, int], ...] | None = None  # (count, seed) per grouped chunk (chunks.py)


def plan_labels(card: ModelCard, labels: Sequence[str | int], count: int) -> tuple[int, ...]:
    """`count` sprites split over the given labels (names or indices), in label order."""
    if count < 1:
        raise BadInput(f"--count {count}: must be at least 1")
    idx = resolve_labels(labels, card.label_names)
    per = split_count(count, len(idx))
    return tuple(k for k, n in zip(idx, per) for _ in range(n))


def load_torch_model(card: ModelCard, device: str = "cpu"):
    from scarlet_moon.models.checkpoint import load_checkpoint
    from scarlet_moon.training.config import TrainConfig
    from scarlet_moon.models.unet import build_model

    ckpt = load_checkpoint(card.path, with_optim=False)
    cfg = TrainConfig.from_dict(card.config, source=str(card.path))
    model = build_model(cfg, channels=card.channels, size=card.size[0], num_classes=len(card.label_names))
    try:
        model.load_state_dict(ckpt.weights)
    except RuntimeError as exc:
        raise BadInput(f"checkpoint {str(card.path)!r}: weights do not fit its config "
                       f"({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()


def sample_array(card: ModelCard, req: Request, *, device: str = "cpu", model: Any = None,
                 progress: ProgressFn | None = None) -> np.ndarray:
    """Raw sprites (uint8 N x H x W x C) before post-processing, torch backend."""
    if card.path.suffix.lower() == ".onnx":  # onnxruntime backend; `model` may be an OnnxDenoiserSession
        from scarlet_moon.backends.onnx_backend import generate_onnx
        return generate_onnx(card, req, session=model, device=device, progress=progress)
    from scarlet_moon.backends.torch_backend import generate_torch

    d = card.defaults()
    model = model if model is not None else load_torch_model(card, device)
    out = generate_torch(model, labels=req.labels, num_classes=len(card.label_names), size=card.size,
                         channels=card.channels, schedule=card.schedule, prediction=card.prediction,
                         sampler=req.sampler or d["sampler"], steps=req.steps or d["steps"],
                         guidance=card.guidance_between_rows(req.guidance), seed=req.seed, noise_parts=req.parts,
                         eta=req.eta, clip_x0=bool(card.config.get("clip_x0", True)), device=device,
                         callback=progress, edit=req)
    return out


def finish(card: ModelCard, req: Request, raw: np.ndarray) -> np.ndarray:
    """Crisp alpha, colour cap and palette snap; by default the card's palette and a cap at the
    training set's 90th percentile of colours per sprite."""
    from scarlet_moon.data.pixels import postprocess

    palette, colors = req.palette, req.colors
    if req.snap_palette:  # look like the training set unless told otherwise
        palette = card.palette if palette is None else palette
        colors = card.meta.get("colors_per_sprite", {}).get("p90") if colors is None else colors
    from scarlet_moon.diffusion.editing import restore_kept

    out = postprocess(raw, alpha_threshold=req.alpha_threshold, palette=palette, colors=colors)
    return restore_kept(req, out)  # inpainting: kept pixels are the init's, exactly


def generate(model: str | Path | None = None, label: str | int | Sequence[str | int] = 0, count: int = 16,
             seed: int = 0, sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
             eta: float = 0.0, alpha_threshold: int = 128, palette: str | Path | None = None,
             colors: int | None = None, snap_palette: bool = True, device: str = "cpu", init: Any = None,
             strength: float | None = None, mask: Any = None, tileable: bool = False) -> list:
    """Generate `count` sprites of `label` (name, index, or a list: the count is split) as PIL images.

    Editing (scarlet_moon.diffusion.editing): `init` (path, PIL image or uint8 array, the sprite size) with
    `strength` in [0, 1] for variations, plus `mask` (white/opaque = generate) for inpainting;
    `tileable=True` for sprites whose opposite edges wrap."""
    from PIL import Image

    from scarlet_moon.diffusion.editing import edit_fields
    from scarlet_moon.data.pixels import load_palette

    card = read_card(model)
    labels = [label] if isinstance(label, (str, int)) else list(label)
    req = Request(plan_labels(card, labels, count), seed=seed, sampler=sampler, steps=steps, guidance=guidance,
                  eta=eta, alpha_threshold=alpha_threshold, snap_palette=snap_palette, colors=colors,
                  palette=load_palette(palette) if palette is not None else None,
                  **edit_fields(init, mask, strength, tileable, card.size, card.channels))
    images = finish(card, req, sample_array(card, req, device=device))
    return [Image.fromarray(im, "RGBA" if im.shape[-1] == 4 else "RGB") for im in images]
