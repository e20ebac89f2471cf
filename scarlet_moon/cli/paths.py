"""Output paths, checked before any work starts (files through scarlet_moon.outputs, the one policy); a folder that
exists (or whose parent does) and can be written. One-line BadInput naming the flag otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def output_file(
    path: str | Path, flag: str, *, inputs: "tuple | list" = (), force: bool = False, suffix: str | None = None
) -> Path:
    """`path` checked by the one output-path policy (scarlet_moon.outputs: not an input, replaced only
    with --force and only if a regular file, a writable folder) and claimed for the rest of the command
    (a second run writing it is refused)."""
    import click

    from scarlet_moon.outputs import check_output, claim

    p = check_output(path, flag, inputs=inputs, force=force, suffix=suffix)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.with_resource(claim([p], flag))
    return p


def finite(ctx: object, param: object, value: float | None) -> float | None:
    """A click callback: a float flag must be a finite number (FloatRange lets nan through)."""
    import math

    import click

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number")
    return value


def model_input(model: str | None) -> Path:
    """The file a --model argument reads (bundled names resolved), as an input of the run."""
    from scarlet_moon.models.card import model_path

    return model_path(model)


def creatable_dir(path: str | Path, flag: str) -> Path:
    """`path` is a writable folder, or can be made one: its nearest existing ancestor is a writable folder."""
    from scarlet_moon.errors import BadInput

    p = Path(path)
    first = next((a for a in (p, *p.parents) if a.exists()), Path("."))
    if not first.is_dir() or not os.access(first, os.W_OK | os.X_OK):
        raise BadInput(f"{flag} {str(path)!r}: {str(first)!r} is not a writable folder")
    from scarlet_moon.outputs import check_folder_writable

    check_folder_writable(first, flag, path)  # root passes os.access on /proc and read-only mounts
    return p
