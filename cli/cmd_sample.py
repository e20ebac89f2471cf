"""`sm sample`, `sm labels`, `sm info`: generate sprites and look at a model's card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.console import echo, text
from cli.paths import model_input, output_file, writable_dir
from scarlet_moon.errors import BadInput
from scarlet_moon.outputs import check_output, claim, input_clash
from cli.sampling import GenerationArgs, generation_options, run_generation
from scarlet_moon.generation.names import file_names

if TYPE_CHECKING:
    from scarlet_moon.generation.request import Request
    from scarlet_moon.models.card import ModelCard


@click.command()
@generation_options
@click.option("--out", "out", default="samples", show_default=True, help="Folder for label_NNN.png files.")
@click.option("--grid", type=click.Path(), default=None, help="Also write a preview grid PNG here.")
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also write xN nearest-neighbour enlargements (label_NNN_xN.png).")
@click.option("--json", "as_json", is_flag=True, help="Print the written files and their metadata as JSON.")
@click.option("--force", is_flag=True, help="Replace sprite files (and --grid) that exist already.")
@click.pass_context
def sample(ctx: click.Context, out: str, grid: str | None, scale: int, as_json: bool, force: bool,
           **params: Any) -> None:
    """Generate sprites: one PNG per sprite (hero_000.png, ...) in --out."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.data.pixels import make_grid, upscale
    from scarlet_moon.data.png import save_png

    args = GenerationArgs.take(params)
    card = read_card(args.model)  # a .onnx model carries its own card: no torch
    req = args.request(card)
    inputs = [model_input(args.model), args.init, args.mask]
    target = writable_dir(out, "--out", create=False)  # made below, once every check has passed
    names = file_names(card.label_names, req.labels)
    suffixes = [""] + ([f"_x{scale}"] if scale > 1 else [])
    sprite_files = [target / f"{stem}{x}.png" for stem, _ in names for x in suffixes]
    if grid:
        if input_clash(Path(grid), sprite_files):
            raise BadInput(f"--grid {grid!r} is one of the sprite files this run writes; choose another name")
        output_file(grid, "--grid", inputs=inputs, force=force, suffix=".png")
    if target.exists():
        check_no_folders(target, [p.name for p in sprite_files])
        for path in sprite_files:  # the one output policy, file by file (inputs, --force, regular files)
            check_output(path, "--out", inputs=inputs, force=force)
    target.mkdir(exist_ok=True)
    ctx.with_resource(claim([target], "--out"))  # the folder: one lock however many sprites
    images = run_generation(card, req, args, ctx.obj.get("quiet", False))
    files = []
    for img, k, (stem, n) in zip(images, req.labels, names):
        path = save_png(img, target / f"{stem}.png")
        entry = {"path": str(path), "label": card.label_names[k], "label_index": k, "index": n}
        if scale > 1:
            entry["scaled"] = str(save_png(upscale(img[None], scale)[0], target / f"{stem}_x{scale}.png"))
        files.append(entry)
    if grid:
        save_png(make_grid(images, ncols=min(8, len(images))), grid)
    if not as_json:
        for f in files:
            echo(f["path"])
        return
    click.echo(json.dumps({"files": files, "meta": generation_meta(card, req, args), "grid": grid}))


def check_no_folders(target: "Path", names: list[str]) -> None:
    """A folder where a sprite's file goes is the user's path in the way: one line, exit 2, before sampling."""
    from scarlet_moon.errors import BadInput

    for name in names:
        if (target / name).is_dir():
            raise BadInput(f"--out {str(target)!r}: {name!r} there is a folder; expected a file name free for a PNG")


def generation_meta(card: ModelCard, req: Request, args: GenerationArgs) -> dict[str, Any]:
    """What regenerates these sprites: model, seed, sampler, steps, guidance, size and the edit."""
    from scarlet_moon.generation.edits import edit_meta

    s = req.sampling.resolve(card)
    meta = {"model": str(card.path), "model_fingerprint": card.fingerprint(),
            "data_fingerprint": card.meta.get("data_fingerprint"), "seed": req.seed,
            "sampler": s.sampler, "steps": s.steps, "guidance": s.guidance, "size": list(card.size)}
    return {**meta, **edit_meta(req.edit, args.init, args.mask)}


@click.command()
@click.option("--model", default=None, help="[default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def labels(model: str | None, as_json: bool) -> None:
    """List a model's labels (index and name)."""
    from scarlet_moon.backends import read_card

    names = read_card(model).label_names
    if as_json:
        click.echo(json.dumps([{"index": i, "name": n} for i, n in enumerate(names)]))
    else:
        for i, n in enumerate(names):
            echo(f"{i}\t{n}")


@click.command()
@click.argument("model_path", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def info(model_path: str | None, as_json: bool) -> None:
    """Print a model's card: labels, size, params, training steps, data fingerprint, metrics. On stdout:
    a table in a terminal, `key<TAB>value` lines (values as JSON) when redirected."""
    import sys

    from scarlet_moon.backends import read_card

    summary = read_card(model_path).summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    rows = [(key, value if isinstance(value, str) else json.dumps(value)) for key, value in summary.items()]
    if not sys.stdout.isatty():
        for key, value in rows:
            echo(f"{key}\t{value}")
        return
    from rich.console import Console
    from rich.table import Table

    out = Console()
    if out.width < 40:  # COLUMNS=0 or a tiny window: a table would wrap to nothing
        out = Console(width=80)
    table = Table(show_header=False, box=None)
    for key, value in rows:
        table.add_row(key, text(value))
    out.print(table)

