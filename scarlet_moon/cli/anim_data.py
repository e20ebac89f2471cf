"""`sm data inspect PATH --layout L`: what an animated set holds, and a preview of its characters
(per label a row per direction, characters side by side, each one's frames left to right)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from scarlet_moon.cli.console import console, text

if TYPE_CHECKING:
    import numpy as np

    from scarlet_moon.data.anim import AnimSet

PREVIEW_SCALE = 4


def inspect_anim(
    path: Path, layout: str, anim: dict[str, Any], background_key: str | None, out: Path, per_label: int
) -> Path:
    """Print the set's tables; write the preview to `out` (checked by the caller); its path."""
    from scarlet_moon.data.anim import load_anim

    a = load_anim(path, layout, background_key=background_key, **anim)
    for table in anim_tables(a):
        console.print(table)
    return write_anim_preview(a, out, per_label)


def anim_tables(a: AnimSet) -> tuple[Table, Table]:
    """(characters per label, the set's shape) as two rich tables."""
    counts = Table(title=text(a.source), title_justify="left")
    for name, justify in (("#", "right"), ("label", "left"), ("characters", "right")):
        counts.add_column(name, justify=justify)  # type: ignore[arg-type]
    for k, name in enumerate(a.label_names):
        counts.add_row(str(k), text(name), str(int((a.labels == k).sum())))
    n, d, f, h, w = a.shape
    counts.add_row("", "total", str(n), style="bold")
    props = Table(show_header=False)
    props.add_column(style="bold")
    props.add_column()
    for key, value in (
        ("layout", a.layout),
        ("directions", f"{d}: {', '.join(a.directions)}"),
        ("frames per direction", str(f)),
        ("frame size", f"{w}x{h}"),
        ("frames in all", f"{n * d * f:,}"),
    ):
        props.add_row(key, text(value))
    return counts, props


def preview_frames(a: AnimSet, per_label: int) -> np.ndarray:
    """uint8 (L * D * per_label * F) x H x W x 4 for a grid of per_label * F columns: per label, D rows
    (one per direction), each holding the first `per_label` characters' F frames side by side; blank
    (transparent) where a label has fewer characters."""
    import numpy as np

    n, d, f, h, w = a.shape
    out = np.zeros((len(a.label_names), d, per_label, f, h, w, 4), np.uint8)
    for k in range(len(a.label_names)):
        idx = np.flatnonzero(a.labels == k)[:per_label]
        out[k, :, : len(idx)] = a.frames[idx].transpose(1, 0, 2, 3, 4, 5)  # D x chars x F x h x w x 4
    return out.reshape(-1, h, w, 4)


def write_anim_preview(a: AnimSet, path: Path, per_label: int) -> Path:
    from scarlet_moon.data.pixels import make_grid
    from scarlet_moon.data.png import save_png
    from scarlet_moon.errors import BadInput

    grid = make_grid(preview_frames(a, per_label), ncols=per_label * a.shape[2], scale=PREVIEW_SCALE)
    try:
        return save_png(grid, path)
    except OSError as exc:
        raise BadInput(f"--preview {str(path)!r} cannot be written ({exc.strerror or exc})") from None
