"""The public Python API: the use cases of `sm sample`, `sm sheet` and `sm tileset`, through the same
pipelines (scarlet_moon.pipelines), with the options grouped in typed dataclasses.

    import scarlet_moon
    from scarlet_moon import SamplingOptions
    images = scarlet_moon.generate(label="hero", count=16, seed=0)           # PIL RGBA images
    images = scarlet_moon.generate("bundled-32", "hero", 16, sampling=SamplingOptions(steps=8))
    paths = scarlet_moon.sheet(label="hero", count=64, out="hero.png", formats=("json-hash", "godot3"))
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from scarlet_moon.backends import BackendOptions
from scarlet_moon.generation.spec import GenerationSpec
from scarlet_moon.options import EditOptions, PostOptions, SamplingOptions
from scarlet_moon.progress import SILENT, Report

if TYPE_CHECKING:
    from PIL import Image

    from scarlet_moon.exporters import PackOptions


def _spec(
    label: str | int | Sequence[str | int],
    count: int,
    model: str | Path | None,
    seed: int,
    sampling: SamplingOptions | None,
    post: PostOptions | None,
    edit: EditOptions | None,
    backend: BackendOptions | None,
    batch: int | None,
) -> GenerationSpec:
    labels: tuple[Any, ...]
    if isinstance(label, (str, bytes, int)) or not isinstance(label, Sequence):
        labels = (label,)  # one name or index (anything else is refused by the label check, naming it)
    else:
        labels = tuple(label)
    return GenerationSpec(
        model,
        labels,
        count,
        seed,
        sampling or SamplingOptions(),
        post or PostOptions(),
        edit or EditOptions(),
        backend or BackendOptions(),
        batch,
    )


def generate(
    model: str | Path | None = None,
    label: str | int | Sequence[str | int] = 0,
    count: int = 16,
    *,
    seed: int = 0,
    sampling: SamplingOptions | None = None,
    post: PostOptions | None = None,
    edit: EditOptions | None = None,
    backend: BackendOptions | None = None,
    batch: int | None = None,
    jobs: int | None = None,
    report: Report = SILENT,
) -> list[Image.Image]:
    """`count` sprites of `label` (a name, an index, or a list of them: the count is split) as PIL images;
    the same options give the same sprites as `sm sample`.

    model: a .safetensors checkpoint, an exported .onnx, or None (the bundled model); bundled names
    ("bundled-25", "bundled-32") too. sampling: sampler, steps, guidance, eta (None: the model's).
    post: alpha threshold, palette, colour cap, palette snap, clean-up. edit: init sprite, mask,
    strength, tileable. backend: torch or onnx, device, fp16, compile. batch: sprites per sampled batch.
    jobs: processes finishing the sprites (the same bytes as 1). report: progress (silent by default)."""
    from PIL import Image

    from scarlet_moon.pipelines.sprites import generate_sprites

    gen = generate_sprites(
        _spec(label, count, model, seed, sampling, post, edit, backend, batch), report=report, jobs=jobs
    )
    return [Image.fromarray(im, "RGBA" if im.shape[-1] == 4 else "RGB") for im in gen.images]


def sheet(
    model: str | Path | None = None,
    label: str | int | Sequence[str | int] = 0,
    count: int = 16,
    *,
    out: str | Path = "sheet.png",
    formats: Sequence[str] = ("json-hash",),
    pack: PackOptions | None = None,
    force: bool = False,
    seed: int = 0,
    sampling: SamplingOptions | None = None,
    post: PostOptions | None = None,
    edit: EditOptions | None = None,
    backend: BackendOptions | None = None,
    batch: int | None = None,
    jobs: int | None = None,
    report: Report = SILENT,
) -> list[Path]:
    """`sm sheet`: the sprites of `generate` packed into `out` (a .png) plus an atlas per format (see
    `sm sheet --list-formats`); the written paths. pack: padding, extrude, scale, pot, max_size, trim,
    dedupe (exporters.PackOptions). An existing sheet is replaced only with force."""
    from scarlet_moon.pipelines.sheet import make_sheet

    spec = _spec(label, count, model, seed, sampling, post, edit, backend, batch)
    return make_sheet(spec, out, formats=formats, pack=pack, force=force, report=report, jobs=jobs)
