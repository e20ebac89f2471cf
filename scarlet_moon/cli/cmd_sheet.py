"""`sm sheet`: generate sprites (or read a folder of PNGs) and pack them into a spritesheet plus engine
atlases. The work is scarlet_moon.pipelines.sheet's (make_sheet, pack_folder): this parses and prints."""

from __future__ import annotations

from typing import Any

import click

from scarlet_moon.cli.console import echo
from scarlet_moon.cli.generation_flags import GENERATION_KEYS, generation_options, spec_from_params
from scarlet_moon.cli.progress import CliReport
from scarlet_moon.exporters.sizes import MAX_SHEET_SIDE

OUT_DEFAULT = "sheet.png"


def refuse_generation_options(ctx: click.Context) -> None:
    """--from packs PNGs as they are: a generation option beside it would be silently ignored."""
    from scarlet_moon.errors import BadInput

    given = [k for k in GENERATION_KEYS if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE]
    if given:
        flag = next(p.opts[0] for p in ctx.command.params if p.name == given[0])
        raise BadInput(f"{flag} does not apply with --from (its PNGs are packed as they are); drop one of them")


def list_formats() -> None:
    """One tab-separated line per format: name, suffix, engine ("-" when a plugin names none), description."""
    from scarlet_moon.exporters import available_formats

    for name, fmt in available_formats().items():
        engine = str(getattr(fmt, "engine", "") or "-").replace("\t", " ")
        echo(f"{name}\t{fmt.suffix}\t{engine}\t{fmt.description}")


@click.command()
@click.option(
    "--from",
    "folder",
    default=None,
    metavar="DIR",
    help="Pack the PNGs of DIR (subfolders = animation labels) instead of generating.",
)
@generation_options
@click.option(
    "--out", default=OUT_DEFAULT, show_default=True, help="Sheet PNG; several pages become NAME-0.png, NAME-1.png..."
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("json-hash",),
    show_default=True,
    help="Atlas format; repeat or comma-separate for several (see --list-formats).",
)
@click.option(
    "--padding", type=click.IntRange(0, MAX_SHEET_SIDE), default=1, show_default=True, help="Pixels between frames."
)
@click.option(
    "--extrude",
    type=click.IntRange(0, MAX_SHEET_SIDE),
    default=0,
    show_default=True,
    help="Repeat edge pixels N times around each frame.",
)
@click.option(
    "--scale", type=click.IntRange(1, MAX_SHEET_SIDE), default=1, show_default=True, help="Nearest-neighbour factor."
)
@click.option("--pot", is_flag=True, help="Round sheet sizes up to powers of two.")
@click.option(
    "--max-size",
    type=click.IntRange(1, MAX_SHEET_SIDE),
    default=4096,
    show_default=True,
    help="Largest sheet side; more sprites go on further pages.",
)
@click.option("--trim/--no-trim", default=False, show_default=True, help="Crop transparent borders.")
@click.option("--dedupe/--no-dedupe", default=True, show_default=True, help="Store identical frames once.")
@click.option("--force", is_flag=True, help="Replace existing files.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes finishing the sprites (alpha, colours, clean-up) and encoding pages and atlases; "
    "the files are the same bytes  [default: 1 for a small sheet or on a CPU backend, else one per CPU]",
)
@click.option("--list-formats", "show_formats", is_flag=True, help="List atlas formats (plugins too) and exit.")
@click.pass_context
def sheet(
    ctx: click.Context,
    folder: str | None,
    out: str,
    formats: tuple[str, ...],
    force: bool,
    show_formats: bool,
    padding: int,
    extrude: int,
    scale: int,
    pot: bool,
    max_size: int,
    trim: bool,
    dedupe: bool,
    jobs: int | None,
    **params: Any,
) -> None:
    """Generate sprites (bundled model by default) and pack them into a spritesheet plus engine
    atlases; prints every written file."""
    from scarlet_moon.exporters import PackOptions
    from scarlet_moon.pipelines.sheet import make_sheet, pack_folder

    if show_formats:
        list_formats()
        return
    if folder is not None:
        refuse_generation_options(ctx)
    spec = spec_from_params(params)
    pack = PackOptions(padding, extrude, scale, pot, max_size, trim, dedupe)
    report = CliReport(bool(ctx.obj and ctx.obj.get("quiet")))
    if folder is not None:
        written = pack_folder(folder, out, formats=formats, pack=pack, force=force, report=report, jobs=jobs)
    else:
        written = make_sheet(spec, out, formats=formats, pack=pack, force=force, report=report, jobs=jobs)
    for path in written:
        echo(path)
