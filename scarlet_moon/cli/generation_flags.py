"""The generation flags `sm sample` and `sm sheet` share, and click's values -> the library's typed
GenerationSpec (scarlet_moon.generation.spec), once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import click

if TYPE_CHECKING:
    from scarlet_moon.generation.spec import GenerationSpec

SAMPLERS = ["ddpm", "ddim", "dpmpp-2m"]


def generation_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `sm sample` and `sm sheet`."""
    opts = [
        click.option(
            "--model",
            default=None,
            help="A .safetensors model or an exported .onnx. "
            "[default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]",
        ),
        click.option(
            "--label",
            "labels",
            multiple=True,
            default=("0",),
            show_default=True,
            help="Label name or index; repeat for several (the count is split).",
        ),
        click.option("--count", type=click.IntRange(min=1), default=16, show_default=True, help="Sprites in all."),
        click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same sprites."),
        click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="[default: the model's]"),
        click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampler steps. [default: the model's]"),
        click.option(
            "--guidance",
            type=float,
            default=None,
            help="Classifier-free guidance scale (1 = off). [default: the model's]",
        ),
        click.option("--eta", type=float, default=0.0, show_default=True, help="DDIM noise (0 = deterministic)."),
        click.option(
            "--alpha-threshold",
            type=int,
            default=128,
            show_default=True,
            help="Alpha at or above this (1..255) becomes 255, below it 0.",
        ),
        click.option(
            "--palette",
            type=click.Path(),
            default=None,
            help="Snap colours to this palette (.gpl, .hex, .pal, or an image's colours).",
        ),
        click.option(
            "--colors",
            type=click.IntRange(min=1),
            default=None,
            help="At most K colours per sprite. [default with --snap: the model's cap (its card), else the "
            "training set's 90th percentile]",
        ),
        click.option(
            "--snap/--no-snap",
            "snap_palette",
            default=True,
            show_default=True,
            help="Snap to the training set's palette when the model carries one.",
        ),
        click.option(
            "--cleanup/--no-cleanup",
            default=None,
            help="Merge isolated pixels into a neighbour of a near shade, and remove detached 1-2 pixel "
            "specks (high-contrast single pixels, like eyes, stay). [default: the model's; on "
            "unless its card says off]",
        ),
        click.option(
            "--init",
            type=click.Path(),
            default=None,
            help="Start from this sprite (a PNG the model's size): variations of it.",
        ),
        click.option(
            "--strength",
            type=float,
            default=None,
            help="With --init: 0 returns it, 1 ignores it. [default: 0.75; 1 with --mask]",
        ),
        click.option(
            "--mask",
            type=click.Path(),
            default=None,
            help="With --init: inpaint; white/opaque pixels are generated, black/transparent kept.",
        ),
        click.option("--tileable", is_flag=True, help="Opposite edges wrap seamlessly (terrain tiles)."),
        click.option(
            "--device",
            type=click.Choice(["cpu", "cuda"]),
            default=None,
            help="[default: cpu; onnx backend: CUDA when it loads, else CPU]",
        ),
        click.option(
            "--backend",
            type=click.Choice(["torch", "onnx"]),
            default=None,
            help="[default: onnx for a .onnx --model and for the bundled models (their export ships "
            "with them), else torch]",
        ),
        click.option(
            "--batch",
            type=click.IntRange(min=1),
            default=None,
            help="Sprites per sampled batch, rounded up to a multiple of 256 (same sprites at any "
            "value). [default: 256 on CPU, 8192 on CUDA]",
        ),
        click.option("--fp16", is_flag=True, help="Torch backend on CUDA: fp16 autocast."),
        click.option(
            "--compile",
            "compile",
            is_flag=True,
            help="Torch backend: torch.compile the network (about 20 s to compile on an H100; pays "
            "off from a few thousand sprites on a GPU).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


GENERATION_KEYS = (
    "model",
    "labels",
    "count",
    "seed",
    "sampler",
    "steps",
    "guidance",
    "eta",
    "alpha_threshold",
    "palette",
    "colors",
    "snap_palette",
    "cleanup",
    "init",
    "strength",
    "mask",
    "tileable",
    "device",
    "backend",
    "batch",
    "fp16",
    "compile",
)


def spec_from_params(params: dict[str, Any]) -> GenerationSpec:
    """Pop the generation options out of a command's click parameters into the library's typed spec;
    every value is checked there."""
    from scarlet_moon.backends import BackendOptions
    from scarlet_moon.generation.request import check_seed
    from scarlet_moon.generation.spec import GenerationSpec
    from scarlet_moon.options import EditOptions, PostOptions, SamplingOptions

    p = {k: params.pop(k) for k in GENERATION_KEYS}
    return GenerationSpec(
        p["model"],
        tuple(p["labels"]),
        p["count"],
        check_seed(p["seed"]),
        SamplingOptions(p["sampler"], p["steps"], p["guidance"], p["eta"]),
        PostOptions(p["alpha_threshold"], p["palette"], p["colors"], p["snap_palette"], p["cleanup"]),
        EditOptions(p["init"], p["mask"], p["strength"], bool(p["tileable"])),
        BackendOptions(p["backend"], p["device"], bool(p["fp16"]), bool(p["compile"])),
        p["batch"],
    )
