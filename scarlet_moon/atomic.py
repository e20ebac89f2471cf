"""Atomic file writes: a kill at any moment leaves the old file or the new one, never half of one.

The temp file is named after the writing process (exporters.atomic), so a later run can tell a
killed writer's leftover (`remove_dead_leftovers`) from a live writer's file in progress.
"""

from __future__ import annotations

from pathlib import Path

from exporters.atomic import remove_dead_leftovers, write_file

__all__ = ["atomic_write_bytes", "remove_dead_leftovers"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, then rename over it."""
    write_file(Path(path), data)
