"""The generation options `sm sample` and `sm sheet` share: click flags -> typed library options, once,
and the runs through the library's one generation loop (with a progress bar and the backend named)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from cli.console import note
from cli.progress import bar

if TYPE_CHECKING:
    import numpy as np

    from scarlet_moon.backends import BackendOptions
    from scarlet_moon.backends.base import Denoiser
    from scarlet_moon.generation.request import Request
    from scarlet_moon.models.card import ModelCard
    from scarlet_moon.options import PostOptions, SamplingOptions
    from scarlet_moon.world import World

SAMPLERS = ["ddpm", "ddim", "dpmpp-2m"]


def generation_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `sm sample` and `sm sheet`."""
    opts = [
        click.option("--model", default=None, help="A .safetensors model or an exported .onnx. "
                                                    "[default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]"),
        click.option("--label", "labels", multiple=True, default=("0",), show_default=True,
                     help="Label name or index; repeat for several (the count is split)."),
        click.option("--count", type=click.IntRange(min=1), default=16, show_default=True, help="Sprites in all."),
        click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same sprites."),
        click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="[default: the model's]"),
        click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampler steps. [default: the model's]"),
        click.option("--guidance", type=float, default=None,
                     help="Classifier-free guidance scale (1 = off). [default: the model's]"),
        click.option("--eta", type=float, default=0.0, show_default=True, help="DDIM noise (0 = deterministic)."),
        click.option("--alpha-threshold", type=int, default=128, show_default=True,
                     help="Alpha at or above this (1..255) becomes 255, below it 0."),
        click.option("--palette", type=click.Path(), default=None,
                     help="Snap colours to this palette (.gpl, .hex, .pal, or an image's colours)."),
        click.option("--colors", type=click.IntRange(min=1), default=None,
                     help="At most K colours per sprite. [default with --snap: the model's cap (its card), else the "
                          "training set's 90th percentile]"),
        click.option("--snap/--no-snap", "snap_palette", default=True, show_default=True,
                     help="Snap to the training set's palette when the model carries one."),
        click.option("--cleanup/--no-cleanup", default=None,
                     help="Merge isolated pixels into a neighbour of a near shade, and remove detached 1-2 pixel "
                          "specks (high-contrast single pixels, like eyes, stay). [default: the model's; on "
                          "unless its card says off]"),
        click.option("--init", type=click.Path(), default=None,
                     help="Start from this sprite (a PNG the model's size): variations of it."),
        click.option("--strength", type=float, default=None,
                     help="With --init: 0 returns it, 1 ignores it. [default: 0.75; 1 with --mask]"),
        click.option("--mask", type=click.Path(), default=None,
                     help="With --init: inpaint; white/opaque pixels are generated, black/transparent kept."),
        click.option("--tileable", is_flag=True, help="Opposite edges wrap seamlessly (terrain tiles)."),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
                     help="[default: cpu; onnx backend: CUDA when it loads, else CPU]"),
        click.option("--backend", type=click.Choice(["torch", "onnx"]), default=None,
                     help="[default: onnx for a .onnx --model and for the bundled models (their export ships "
                          "with them), else torch]"),
        click.option("--batch", type=click.IntRange(min=1), default=None,
                     help="Sprites per sampled batch, rounded up to a multiple of 256 (same sprites at any "
                          "value). [default: 256 on CPU, 8192 on CUDA]"),
        click.option("--fp16", is_flag=True, help="Torch backend on CUDA: fp16 autocast."),
        click.option("--compile", "compile", is_flag=True,
                     help="Torch backend: torch.compile the network (about 20 s to compile on an H100; pays "
                          "off from a few thousand sprites on a GPU)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


GENERATION_KEYS = ("model", "labels", "count", "seed", "sampler", "steps", "guidance", "eta", "alpha_threshold",
                   "palette", "colors", "snap_palette", "cleanup", "init", "strength", "mask", "tileable", "device",
                   "backend", "batch", "fp16", "compile")


@dataclass(frozen=True)
class GenerationArgs:
    """What `sm sample` / `sm sheet` were asked to generate, as the library's typed options."""

    model: str | None
    labels: tuple[str, ...]
    count: int
    seed: int
    sampling: SamplingOptions
    post: PostOptions
    init: str | None
    mask: str | None
    strength: float | None
    tileable: bool
    backend: BackendOptions
    batch: int | None

    @classmethod
    def take(cls, params: dict[str, Any]) -> "GenerationArgs":
        """Pop the generation options out of a command's click parameters; every value is checked here."""
        from scarlet_moon.backends import BackendOptions
        from scarlet_moon.generation.request import check_seed
        from scarlet_moon.options import PostOptions, SamplingOptions

        p = {k: params.pop(k) for k in GENERATION_KEYS}
        return cls(p["model"], tuple(p["labels"]), p["count"], check_seed(p["seed"]),
                   SamplingOptions(p["sampler"], p["steps"], p["guidance"], p["eta"]),
                   PostOptions(p["alpha_threshold"], p["palette"], p["colors"], p["snap_palette"], p["cleanup"]),
                   p["init"], p["mask"], p["strength"], bool(p["tileable"]),
                   BackendOptions(p["backend"], p["device"], bool(p["fp16"]), bool(p["compile"])), p["batch"])

    def request(self, card: ModelCard) -> Request:
        """The request for `card`: labels resolved, init and mask loaded at its sprite size; the
        backend options checked against it too (all before any output is made)."""
        from scarlet_moon.generation.edits import load_edit
        from scarlet_moon.generation.request import Request

        edit = load_edit(self.init, self.mask, self.strength, self.tileable, size=card.size, channels=card.channels)
        req = Request.plan(card, list(self.labels), self.count, self.seed, sampling=self.sampling, post=self.post,
                           edit=edit)
        self.backend.for_model(card)
        return req


def open_backend(card: ModelCard, args: GenerationArgs, quiet: bool) -> Denoiser:
    """The denoiser for `card` as asked; names the backend on stderr."""
    from scarlet_moon.backends import open_denoiser

    b = args.backend
    den = open_denoiser(card, backend=b.backend, device=b.device, fp16=b.fp16, compile=b.compile)
    if not quiet:
        note(f"backend: {den.describe()}")
    return den


def run_generation(card: ModelCard, req: Request, args: GenerationArgs, quiet: bool,
                   jobs: int | None = None) -> np.ndarray:
    """Every sprite of `req` through the library's generation loop, one progress bar over all chunks;
    `jobs`: processes finishing chunks (None: chosen from the device and the count)."""
    from scarlet_moon.generation.chunks import generate_all

    with bar(quiet) as update:
        den = open_backend(card, args, quiet)
        return generate_all(den, req, batch=args.batch, progress=update, workers=jobs)


def pin_local_gpu(card: ModelCard, backend: BackendOptions, local_rank: int) -> None:
    """One GPU per rank on a node: CUDA_VISIBLE_DEVICES narrowed to this rank's device (before any
    CUDA initialisation; a no-op on CPU)."""
    if backend.device == "cpu" or (backend.device is None and backend.for_model(card).backend == "torch"):
        return
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[local_rank % len(visible)] if visible else str(local_rank)


def run_sharded(card: ModelCard, req: Request, args: GenerationArgs, quiet: bool, out: str | Path,
                world: World) -> tuple[np.ndarray | None, Path]:
    """This rank's chunks to shard files (scarlet_moon.generation.shard); on rank 0 also every
    sprite, gathered (else None), and the shard folder (removed once the sheet is written)."""
    from scarlet_moon.generation.shard import run_shard

    quiet = quiet or not world.main
    pin_local_gpu(card, args.backend, world.local_rank)
    den = open_backend(card, args, quiet)
    with bar(quiet, f"sampling (rank {world.rank}/{world.size})") as update, bar(quiet, "gathering chunks") as wait:
        return run_shard(den, req, out, world, batch=args.batch, progress=update, on_wait=wait)
