"""`sm anim`: walk cycles of new characters (an animation model), packed with one animation per character
and direction, plus a GIF preview. The work is scarlet_moon.pipelines.anim's: this parses and prints."""

from __future__ import annotations

import click

from scarlet_moon.cli.console import echo
from scarlet_moon.cli.progress import CliReport
from scarlet_moon.exporters.sizes import MAX_SHEET_SIDE


@click.command()
@click.option(
    "--model",
    required=True,
    metavar="MODEL",
    help="An animation model (.safetensors) from `sm train --data DIR --layout ...`; see docs/animation.md "
    "for the documented one.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    default=("0",),
    show_default=True,
    help="Label name or index; repeat for several.",
)
@click.option("--count", type=click.IntRange(min=1), default=8, show_default=True, help="Characters in all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same characters.")
@click.option("--steps", type=click.IntRange(1, 1000), default=25, show_default=True, help="DDIM steps per pass.")
@click.option(
    "--guidance", type=float, default=None, help="Classifier-free guidance on the label. [default: the model's]"
)
@click.option("--fps", type=click.IntRange(1, 60), default=8, show_default=True, help="Frame rate of every animation.")
@click.option(
    "--lock-palette/--no-lock-palette",
    default=True,
    show_default=True,
    help="Every frame in its character's palette: the anchor frame's colours (at most 16), plus up to 4 "
    "a direction needs that are far from all of them.",
)
@click.option("--alpha-threshold", type=click.IntRange(1, 255), default=128, show_default=True, help="Alpha cut.")
@click.option("--out", default="walkers.png", show_default=True, help="Sheet PNG; the GIF preview is OUT.gif.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("json-hash",),
    show_default=True,
    help="Atlas format; repeat or comma-separate (sm sheet --list-formats).",
)
@click.option(
    "--padding", type=click.IntRange(0, MAX_SHEET_SIDE), default=1, show_default=True, help="Pixels between frames."
)
@click.option("--scale", type=click.IntRange(1, 64), default=1, show_default=True, help="Nearest-neighbour factor.")
@click.option(
    "--preview/--no-preview", default=True, show_default=True, help="Write OUT.gif (the first 32 characters)."
)
@click.option("--keep", default=None, metavar="SHEET", help="Edit: a sheet `sm anim` wrote (with its .json atlas).")
@click.option(
    "--character", default=None, metavar="NAME", help="Edit: the character of --keep to change (e.g. player_3)."
)
@click.option(
    "--redraw", multiple=True, metavar="DIRECTION", help="Edit: draw this direction again; repeat for several."
)
@click.option("--force", is_flag=True, help="Replace existing files.")
@click.pass_context
def anim(
    ctx: click.Context,
    model: str,
    labels: tuple[str, ...],
    count: int,
    seed: int,
    steps: int,
    guidance: float | None,
    fps: int,
    lock_palette: bool,
    alpha_threshold: int,
    out: str,
    formats: tuple[str, ...],
    padding: int,
    scale: int,
    preview: bool,
    keep: str | None,
    character: str | None,
    redraw: tuple[str, ...],
    force: bool,
) -> None:
    """Draw COUNT characters of an animation model (every direction, every frame) and pack them; prints
    every written file. With --keep/--character/--redraw: that character again, the named directions redrawn."""
    from scarlet_moon.exporters import PackOptions
    from scarlet_moon.generation.anim import AnimOptions
    from scarlet_moon.pipelines.anim import AnimRequest, make_anim
    from scarlet_moon.pipelines.sheet import split_formats

    req = AnimRequest(model, labels, count, fps, preview, keep, character, redraw)
    opts = AnimOptions(steps, guidance, seed, lock_palette, alpha_threshold)
    pack = PackOptions(padding=padding, scale=scale, dedupe=False)
    report = CliReport(bool(ctx.obj and ctx.obj.get("quiet")))
    for path in make_anim(req, out, opts, formats=split_formats(formats), pack=pack, force=force, report=report):
        echo(path)
