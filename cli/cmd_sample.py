"""`sm sample`, `sm labels`, `sm info`: generate sprites and look at a model's card."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click

from cli.console import console

SAMPLERS = ["ddpm", "ddim", "dpmpp-2m"]


def safe_name(name: str) -> str:
    """A label as a file-name stem: no path separators, no leading dots."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip(".") or "label"


def generation_options(f):
    """Options shared by `sm sample` and `sm sheet`."""
    opts = [
        click.option("--model", "model_path", default=None, help="A .safetensors model. [default: the bundled model]"),
        click.option("--label", "labels", multiple=True, default=("0",), show_default=True,
                     help="Label name or index; repeat for several (the count is split)."),
        click.option("--count", type=click.IntRange(min=1), default=16, show_default=True, help="Sprites in all."),
        click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same sprites."),
        click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="[default: the model's]"),
        click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampler steps. [default: the model's]"),
        click.option("--guidance", type=float, default=None,
                     help="Classifier-free guidance scale (1 = off). [default: the model's]"),
        click.option("--eta", type=float, default=0.0, show_default=True, help="DDIM noise (0 = deterministic)."),
        click.option("--alpha-threshold", type=click.IntRange(0, 255), default=128, show_default=True,
                     help="Alpha at or above this becomes 255, below it 0."),
        click.option("--palette", type=click.Path(), default=None,
                     help="Snap colours to this palette (.gpl, .hex, .pal, or an image's colours)."),
        click.option("--colors", type=click.IntRange(min=1), default=None, help="At most K colours per sprite. [default with --snap: the training set's 90th percentile]"),
        click.option("--snap/--no-snap", "snap_palette", default=True, show_default=True,
                     help="Snap to the training set's palette when the model carries one."),
        click.option("--init", "init", type=click.Path(), default=None,
                     help="Start from this sprite (a PNG the model's size): variations of it."),
        click.option("--strength", type=float, default=None,
                     help="With --init: 0 returns it, 1 ignores it. [default: 0.75; 1 with --mask]"),
        click.option("--mask", "mask", type=click.Path(), default=None,
                     help="With --init: inpaint; white/opaque pixels are generated, black/transparent kept."),
        click.option("--tileable", is_flag=True, help="Opposite edges wrap seamlessly (terrain tiles)."),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
                     help="[default: cpu; onnx backend: CUDA when it loads, else CPU]"),
        click.option("--backend", type=click.Choice(["torch", "onnx"]), default=None,  # onnx hook
                     help="[default: onnx for a .onnx --model, else torch]"),
        click.option("--batch", type=click.IntRange(min=1), default=None,
                     help="Sprites per sampled batch, rounded up to a multiple of 256 (same sprites at any "
                          "value). [default: 256 on CPU, 8192 on CUDA]"),
        click.option("--fp16", is_flag=True, help="Torch backend on CUDA: fp16 autocast."),
        click.option("--compile", "compile_model", is_flag=True,
                     help="Torch backend: torch.compile the network (about 20 s to compile on an H100; pays "
                          "off from a few thousand sprites on a GPU)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_request(card, opts: dict[str, Any]):
    from cli.cmd_onnx import check_fast
    from scarlet_moon.diffusion.editing import edit_fields
    from scarlet_moon.generation.core import Request, plan_labels
    from scarlet_moon.data.pixels import load_palette

    check_fast(card, opts)
    return Request(plan_labels(card, list(opts["labels"]), opts["count"]), seed=opts["seed"],
                   sampler=opts["sampler"], steps=opts["steps"], guidance=opts["guidance"], eta=opts["eta"],
                   alpha_threshold=opts["alpha_threshold"], snap_palette=opts["snap_palette"],
                   colors=opts["colors"], palette=load_palette(opts["palette"]) if opts["palette"] else None,
                   **edit_fields(opts.get("init"), opts.get("mask"), opts.get("strength"), opts.get("tileable", False),
                                 card.size, card.channels))


def run_generation(card, req, opts: dict[str, Any], quiet: bool):
    """Sample in chunks (any --count, bounded memory) with one progress bar; returns
    post-processed uint8 N x H x W x C."""
    from cli.chunked import run_chunked

    return run_chunked(card, req, opts, quiet)


def out_dir(path: str) -> Path:
    from scarlet_moon.errors import BadInput

    p = Path(path)
    if not p.exists():
        if not p.parent.is_dir():
            raise BadInput(f"--out {path!r}: its parent folder {str(p.parent)!r} does not exist")
        p.mkdir()
    if not p.is_dir() or not os.access(p, os.W_OK):
        raise BadInput(f"--out {path!r} is not a writable folder")
    return p


@click.command()
@generation_options
@click.option("--out", "out", default="samples", show_default=True, help="Folder for label_NNN.png files.")
@click.option("--grid", type=click.Path(), default=None, help="Also write a preview grid PNG here.")
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also write xN nearest-neighbour enlargements (label_NNN_xN.png).")
@click.option("--json", "as_json", is_flag=True, help="Print the written files and their metadata as JSON.")
@click.pass_context
def sample(ctx: click.Context, **opts: Any) -> None:
    """Generate sprites: one PNG per sprite (hero_000.png, ...) in --out."""
    from cli.cmd_onnx import load_card
    from scarlet_moon.data.images import make_grid, save_png
    from scarlet_moon.data.pixels import upscale

    card = load_card(opts)  # onnx hook: a .onnx --model carries its own card
    req = build_request(card, opts)
    target = out_dir(opts["out"])
    images = run_generation(card, req, opts, ctx.obj.get("quiet", False))
    files, counters = [], {}
    for img, k in zip(images, req.labels):
        name = safe_name(card.label_names[k])
        n = counters[name] = counters.get(name, -1) + 1
        path = save_png(img, target / f"{name}_{n:03d}.png")
        entry = {"path": str(path), "label": card.label_names[k], "label_index": k, "index": n}
        if opts["scale"] > 1:
            entry["scaled"] = str(save_png(upscale(img[None], opts["scale"])[0],
                                           target / f"{name}_{n:03d}_x{opts['scale']}.png"))
        files.append(entry)
    if opts["grid"]:
        save_png(make_grid(images, ncols=min(8, len(images))), opts["grid"])
    _report(card, req, files, opts)


def _report(card, req, files: list[dict[str, Any]], opts: dict[str, Any]) -> None:
    if not opts["as_json"]:
        for f in files:
            click.echo(f["path"])
        return
    d = card.defaults()
    meta = {"model": str(card.path), "model_fingerprint": card.meta.get("data_fingerprint"), "seed": req.seed,
            "sampler": req.sampler or d["sampler"], "steps": req.steps or d["steps"],
            "guidance": d["guidance"] if req.guidance is None else req.guidance, "size": list(card.size)}
    from scarlet_moon.diffusion.editing import edit_meta

    meta.update(edit_meta(req, opts.get("init"), opts.get("mask")))  # init, mask, strength, tileable
    click.echo(json.dumps({"files": files, "meta": meta, "grid": opts["grid"]}))


@click.command()
@click.option("--model", "model_path", default=None, help="[default: the bundled model]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def labels(model_path: str | None, as_json: bool) -> None:
    """List a model's labels (index and name)."""
    from scarlet_moon.models.card import read_card

    names = read_card(model_path).label_names
    if as_json:
        click.echo(json.dumps([{"index": i, "name": n} for i, n in enumerate(names)]))
    else:
        for i, n in enumerate(names):
            click.echo(f"{i}\t{n}")


@click.command()
@click.argument("model_path", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def info(model_path: str | None, as_json: bool) -> None:
    """Print a model's card: labels, size, params, training steps, data fingerprint, metrics."""
    from rich.table import Table

    from scarlet_moon.models.card import read_card

    summary = read_card(model_path).summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    console.print(table)


COMMANDS = [sample, labels, info]
