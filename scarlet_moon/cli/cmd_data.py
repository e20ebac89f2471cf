"""`sm data inspect [PATH]`: what a sprite set holds (counts per label, size, channels, alpha,
colours per sprite) as a table on stderr, plus a preview grid PNG whose path goes to stdout.

numpy / scarlet_moon.data.sprites are imported inside the command so that `sm --help` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from scarlet_moon.cli.console import console, echo, text

if TYPE_CHECKING:
    import numpy as np

    from scarlet_moon.data.sprites import SpriteSet

PREVIEW_SCALE = 4  # nearest-neighbour, so pixels stay square
ANIM_LAYOUTS = ("rows", "columns", "rpgmaker", "strips", "frames")  # data.anim.LAYOUTS (a test keeps them equal)


@click.group()
def data() -> None:
    """Inspect sprite data sets."""


@data.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--tile", type=int, default=None, help="Cell size of a tileset sheet.  [default: 16]")
@click.option(
    "--background-key",
    default=None,
    metavar="RRGGBB|auto",
    help="This colour becomes transparent; 'auto' = the most common opaque top-left pixel.",
)
@click.option("--size", type=int, default=None, help="Required sprite size (PNG folders: else the first PNG's).")
@click.option(
    "--preview",
    type=click.Path(path_type=Path),
    default=None,
    help="Preview grid PNG to write.  [default: <name>-preview.png in the current folder]",
)
@click.option(
    "--per-label",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Sprites per label (one row per label) in the preview.",
)
@click.option("--force", is_flag=True, help="Replace the preview if it exists.")
@click.option(
    "--layout",
    type=click.Choice(ANIM_LAYOUTS),
    default=None,
    help="Read an animated set: rows/columns (a sheet per character, a row/column per direction), "
    "rpgmaker (3x4 blocks, 8 per sheet or 1 with a $ name), strips (a folder per character, a PNG per "
    "direction), frames (a folder per character, a subfolder per direction).",
)
@click.option(
    "--directions", default=None, help="With --layout: direction names in sheet order.  [default: down,left,right,up]"
)
@click.option(
    "--frame", default=None, metavar="N|WxH", help="With --layout rows/columns: the frame size.  [default: square]"
)
@click.option("--frames", type=int, default=None, help="With --layout: take the first N frames of each direction.")
def inspect(
    path: Path | None,
    tile: int | None,
    background_key: str | None,
    size: int | None,
    preview: Path | None,
    per_label: int,
    force: bool,
    layout: str | None,
    directions: str | None,
    frame: str | None,
    frames: int | None,
) -> None:
    """Show what a sprite set holds (no PATH: the bundled angband16 set) and write a preview grid.
    With --layout, an animated set: characters per label, directions and frames, and a preview of
    --per-label characters per label, a row per direction."""
    from scarlet_moon.data.sprites import load_sprites

    anim = {"directions": directions, "frame": frame, "frames": frames}
    _check_anim_options(path, layout, anim, tile, size)
    out = _check_preview(preview if preview is not None else Path(f"{_set_name(path)}-preview.png"), path, force)
    if layout is not None and path is not None:
        from scarlet_moon.cli.anim_data import inspect_anim

        echo(inspect_anim(path, layout, anim, background_key, out, per_label))
        return
    ds = load_sprites(path, tile=tile, background_key=background_key, size=size)
    for table in summary_tables(ds, describe(ds)):
        console.print(table)
    written = write_preview(ds, out, per_label)
    echo(written)


def _check_anim_options(
    path: Path | None, layout: str | None, anim: dict[str, Any], tile: int | None, size: int | None
) -> None:
    from scarlet_moon.errors import BadInput

    given = [f"--{k}" for k, v in anim.items() if v is not None]
    if layout is None and given:
        raise BadInput(f"{', '.join(given)} describe an animated set: give --layout too")
    if layout is not None and path is None:
        raise BadInput("--layout reads an animated set from PATH; the bundled set has no animations")
    if layout is not None and (tile is not None or size is not None):
        raise BadInput("--tile and --size are for still sprite sets; with --layout give --frame")


def _set_name(path: Path | None) -> str:
    """angband16 for the bundled set, the folder name, or the CSV's stem."""
    if path is None:
        return "angband16"
    p = Path(path).resolve()  # "." -> the current folder's name
    if p.name == "sprites.npy":
        p = p.parent
    return (p.stem if p.suffix.lower() == ".csv" else p.name) or "data"


def _check_preview(path: Path, data: Path | None, force: bool) -> Path:
    """Fail before loading when the preview cannot be written (the one output policy): a .png name in a
    writable folder, not the data nor inside it (a tileset CSV's folder holds its sheet), claimed."""
    from scarlet_moon.cli.paths import output_file

    inputs = [] if data is None else [data, data.parent] if data.suffix.lower() == ".csv" else [data]
    return output_file(path, "--preview", inputs=inputs, force=force, suffix=".png")


def describe(ds: SpriteSet) -> dict[str, float]:
    """alpha_crisp: share of alpha values that are 0 or 255; colors_*: distinct opaque (alpha > 0)
    RGB colours per sprite."""
    import numpy as np

    from scarlet_moon.data.pixels import alpha_crispness, colors_per_sprite

    distinct = colors_per_sprite(ds.images)  # N
    return {
        "alpha_crisp": alpha_crispness(ds.images),
        "colors_mean": float(distinct.mean()),
        "colors_median": float(np.median(distinct)),
        "colors_max": int(distinct.max()),
    }


def summary_tables(ds: SpriteSet, stats: dict[str, Any]) -> tuple[Table, Table]:
    """(sprites per label, set-wide properties) as two rich tables."""
    counts = Table(title=text(ds.source), title_justify="left")
    for name, justify in (("#", "right"), ("label", "left"), ("sprites", "right")):
        counts.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, (name, n) in enumerate(ds.counts().items()):
        counts.add_row(str(i), text(name), str(n))
    counts.add_row("", "total", str(len(ds.labels)), style="bold")
    h, w = ds.size
    props = Table(show_header=False)
    props.add_column(style="bold")
    props.add_column()
    for key, value in (
        ("sprite size", f"{w}x{h}"),
        ("channels", "RGB input (alpha set to 255)" if ds.input_channels == 3 else "RGBA input"),
        ("alpha crispness", f"{stats['alpha_crisp']:.1%} of alpha values are 0 or 255"),
        (
            "colours per sprite",
            f"mean {stats['colors_mean']:.1f}, median {stats['colors_median']:g}, "
            f"max {stats['colors_max']} (distinct opaque)",
        ),
        ("fingerprint", ds.fingerprint()),
    ):
        props.add_row(key, value)
    return counts, props


def preview_rows(ds: SpriteSet, per_label: int) -> np.ndarray:
    """uint8 (L * per_label) x H x W x 4: the first `per_label` sprites of each label, label after
    label, blank (transparent) where a label has fewer, for a grid of `per_label` columns."""
    import numpy as np

    h, w = ds.size
    out = np.zeros((len(ds.label_names), per_label, h, w, 4), np.uint8)
    for k in range(len(ds.label_names)):
        idx = np.nonzero(ds.labels == k)[0][:per_label]
        out[k, : len(idx)] = ds.images[idx]
    return out.reshape(-1, h, w, 4)


def write_preview(ds: SpriteSet, path: Path, per_label: int) -> Path:
    """Write the grid atomically (temp file + os.replace); a failed write is BadInput naming it."""
    from scarlet_moon.data.pixels import make_grid
    from scarlet_moon.data.png import save_png
    from scarlet_moon.errors import BadInput

    grid = make_grid(preview_rows(ds, per_label), ncols=per_label, scale=PREVIEW_SCALE)
    try:
        return save_png(grid, path)
    except OSError as exc:
        raise BadInput(f"--preview {str(path)!r} cannot be written ({exc.strerror or exc})") from None
