"""Atomic file writes: a kill at any moment leaves the old file or the new one, never half of one.

The temp file is named after the writing process (exporters.atomic), so a later run can tell a
killed writer's leftover (`remove_dead_leftovers`) from a live writer's file in progress.
"""

from __future__ import annotations

from pathlib import Path

from exporters.atomic import remove_dead_leftovers, write_file, write_files

__all__ = ["atomic_write_bytes", "atomic_write_set", "remove_dead_leftovers"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, then rename over it."""
    write_file(Path(path), data)


def atomic_write_set(files: list[tuple[Path, bytes]], remove: list[Path] = []) -> None:  # noqa: B006 (not mutated)
    """Write every (path, data) pair and remove `remove`, all or none (exporters.atomic.write_files:
    journalled; a kill is rolled back by the next write of the set). One folder; named after the first path."""
    write_files(files, remove)
