"""Generating sprites with their metadata: the one path from a GenerationSpec to frames.

    gen = generate_sprites(GenerationSpec(labels=("hero",), count=16))
    gen.images           # uint8 N x H x W x 4 (or 3 for an RGB model), finished
    gen.sprites()        # exporters.Sprite frames `hero_000`..., each with what regenerates it

Under torchrun (WORLD_SIZE > 1) `generate_sharded` shares the chunks out by rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scarlet_moon.generation.spec import GenerationSpec
from scarlet_moon.progress import SILENT, Report

if TYPE_CHECKING:
    import numpy as np

    from scarlet_moon.backends import BackendOptions
    from scarlet_moon.backends.base import Denoiser
    from scarlet_moon.exporters import Sprite
    from scarlet_moon.generation.request import Request
    from scarlet_moon.models.card import ModelCard
    from scarlet_moon.world import World


@dataclass(frozen=True, eq=False)
class Generated:
    """Sprites of one request: the model's card, the request, the images and what regenerates them."""

    card: ModelCard
    request: Request
    images: np.ndarray
    meta: dict[str, Any]  # GenerationSpec.meta

    def sprites(self) -> list[Sprite]:
        """One frame per image: `<label>_000`... (generation.names), meta from frame_meta."""
        return frames(self.card, self.request, self.images, frame_common(self.card, self.request, self.meta))


def frame_common(card: ModelCard, req: Request, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The atlas meta every frame of `req` shares: seed, sampler, steps, guidance, count, chunk size and
    the model; with an edit also its init, mask, strength and tileable (their sources from `meta`)."""
    from scarlet_moon.generation.chunks import CHUNK_SIZE
    from scarlet_moon.generation.edits import edit_meta

    s = req.sampling.resolve(card)
    common = {
        "seed": req.seed,
        "sampler": s.sampler,
        "steps": s.steps,
        "guidance": s.guidance,
        "count": len(req.labels),
        "chunk_size": CHUNK_SIZE,
        "model_fingerprint": card.fingerprint(),
        "model_step": card.meta.get("step"),
    }
    if req.edit.active:  # init/strength/mask/tileable regenerate the frame too
        sources = meta or {}
        common.update(edit_meta(req.edit, sources.get("init"), sources.get("mask")))
    return common


def frames(card: ModelCard, req: Request, images: np.ndarray, common: dict[str, Any], first: int = 0) -> list[Sprite]:
    """exporters.Sprite frames for `images`, sprites `first`... of `req`: named `<label>_NNN`, each with
    `common` plus its label, label index and batch index."""
    from PIL import Image

    from scarlet_moon.exporters import Sprite
    from scarlet_moon.generation.names import file_names

    names = file_names(card.label_names, req.labels)[first : first + len(images)]
    out = []
    for i, (img, (stem, _)) in enumerate(zip(images, names), start=first):
        k = req.labels[i]
        meta = dict(common, label=card.label_names[k], label_index=k, batch_index=i)
        image = img if img.shape[-1] == 4 else Image.fromarray(img, "RGB")  # an RGBA array is packed as it is
        out.append(Sprite(name=stem, image=image, label=card.label_names[k], meta=meta))
    return out


def open_backend(card: ModelCard, backend: BackendOptions, report: Report = SILENT) -> Denoiser:
    """The denoiser for `card` as asked; the backend named through `report`."""
    from scarlet_moon.backends import open_denoiser

    den = open_denoiser(
        card, backend=backend.backend, device=backend.device, fp16=backend.fp16, compile=backend.compile
    )
    report.note(f"backend: {den.describe()}")
    return den


def generate_sprites(
    spec: GenerationSpec,
    *,
    card: ModelCard | None = None,
    request: Request | None = None,
    report: Report = SILENT,
    jobs: int | None = None,
) -> Generated:
    """Every sprite of `spec` through the library's generation loop (one progress bar over all chunks);
    `card`/`request`: already read and checked (else read here); `jobs`: processes finishing chunks
    (None: chosen from the device and the count)."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.chunks import generate_all

    card = card or read_card(spec.model)
    req = request or spec.request(card)
    with report.bar("sampling") as update:
        den = open_backend(card, spec.backend, report)
        images = generate_all(den, req, batch=spec.batch, progress=update, workers=jobs)
    return Generated(card, req, images, spec.meta(card, req))


def pin_local_gpu(card: ModelCard, backend: BackendOptions, local_rank: int) -> None:
    """One GPU per rank on a node: CUDA_VISIBLE_DEVICES narrowed to this rank's device (before any
    CUDA initialisation; a no-op on CPU)."""
    if backend.device == "cpu" or (backend.device is None and backend.for_model(card).backend == "torch"):
        return
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[local_rank % len(visible)] if visible else str(local_rank)


def generate_sharded(
    spec: GenerationSpec, card: ModelCard, req: Request, out: str | Path, world: World, report: Report = SILENT
) -> tuple[Generated | None, Path]:
    """This rank's chunks to shard files (generation.shard); on rank 0 also every sprite, gathered (else
    None), and the shard folder (to remove once the sheet is written)."""
    from scarlet_moon.generation.shard import run_shard

    report = report if world.main else SILENT
    pin_local_gpu(card, spec.backend, world.local_rank)
    den = open_backend(card, spec.backend, report)
    with report.bar(f"sampling (rank {world.rank}/{world.size})") as update, report.bar("gathering chunks") as wait:
        images, folder = run_shard(den, req, out, world, batch=spec.batch, progress=update, on_wait=wait)
    return (None if images is None else Generated(card, req, images, spec.meta(card, req))), folder
