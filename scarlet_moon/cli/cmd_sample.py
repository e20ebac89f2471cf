"""`sm sample`, `sm labels`, `sm info`: generate sprites and look at a model's card."""

from __future__ import annotations

import json
from typing import Any

import click

from scarlet_moon.cli.console import echo, text
from scarlet_moon.cli.generation_flags import generation_options, spec_from_params
from scarlet_moon.cli.progress import CliReport


@click.command()
@generation_options
@click.option("--out", "out", default="samples", show_default=True, help="Folder for label_NNN.png files.")
@click.option("--grid", type=click.Path(), default=None, help="Also write a preview grid PNG here.")
@click.option(
    "--scale",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Also write xN nearest-neighbour enlargements (label_NNN_xN.png).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the written files and their metadata as JSON.")
@click.option("--force", is_flag=True, help="Replace sprite files (and --grid) that exist already.")
@click.pass_context
def sample(
    ctx: click.Context, out: str, grid: str | None, scale: int, as_json: bool, force: bool, **params: Any
) -> None:
    """Generate sprites: one PNG per sprite (hero_000.png, ...) in --out."""
    from scarlet_moon.pipelines.samples import save_samples

    spec = spec_from_params(params)
    done = save_samples(spec, out, grid=grid, scale=scale, force=force, report=CliReport(ctx.obj.get("quiet", False)))
    if not as_json:
        for f in done.files:
            echo(f["path"])
        return
    click.echo(json.dumps({"files": done.files, "meta": done.meta, "grid": grid}))


@click.command()
@click.option(
    "--model",
    default=None,
    help="[default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]",
)
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
