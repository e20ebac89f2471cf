"""The public Python API: sprites as PIL images, through the same path as `sm sample` and `sm sheet`.

    import scarlet_moon
    images = scarlet_moon.generate(label="hero", count=16, seed=0)   # list of PIL RGBA images
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from scarlet_moon.backends import open_denoiser, read_card
from scarlet_moon.generation.chunks import ChunkProgress, generate_all
from scarlet_moon.generation.edits import load_edit
from scarlet_moon.generation.request import Request
from scarlet_moon.options import PostOptions, SamplingOptions


def generate(model: str | Path | None = None, label: str | int | Sequence[str | int] = 0, count: int = 16,
             seed: int = 0, sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
             eta: float = 0.0, alpha_threshold: int = 128, palette: Any = None, colors: int | None = None,
             snap_palette: bool = True, cleanup: bool | None = None, init: Any = None, strength: float | None = None,
             mask: Any = None, tileable: bool = False, backend: str | None = None, device: str | None = None,
             batch: int | None = None, fp16: bool = False, compile: bool = False,
             progress: ChunkProgress | None = None, jobs: int | None = None) -> list:
    """`count` sprites of `label` (name, index, or a list: the count is split) as PIL images.

    model: a .safetensors checkpoint, an exported .onnx, or None (the bundled model). Every
    option of `sm sample` is here, and the same options give the same sprites:
    sampler/steps/guidance/eta (None: the model's defaults); alpha_threshold, palette (a file or a
    K x 3 array), colors, snap_palette, cleanup (isolated shades merged, specks removed; None: the
    model's default, ModelCard.post_defaults); init (a path, PIL image or uint8 array of the
    model's sprite size) with strength in [0, 1] for
    variations, plus mask (white/opaque = generate) for inpainting; tileable for sprites whose
    opposite edges wrap; backend ("torch" | "onnx"), device, batch (sprites per sampled batch), fp16
    and compile (torch on CUDA); jobs (processes finishing the sprites while the next batch samples,
    the same bytes as 1; None: several on CUDA for large counts, else 1)."""
    from PIL import Image

    card = read_card(model)
    req = Request.plan(card, label, count, seed, sampling=SamplingOptions(sampler, steps, guidance, eta),
                       post=PostOptions(alpha_threshold, palette, colors, snap_palette, cleanup),
                       edit=load_edit(init, mask, strength, tileable, size=card.size, channels=card.channels))
    den = open_denoiser(card, backend=backend, device=device, fp16=fp16, compile=compile)
    images = generate_all(den, req, batch=batch, progress=progress, workers=jobs)
    return [Image.fromarray(im, "RGBA" if im.shape[-1] == 4 else "RGB") for im in images]
