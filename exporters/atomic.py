"""All-or-nothing writing of a set of files (a sheet, its pages and its atlases).

1. every file is written to a temp file in its own folder and fsynced (nothing visible yet);
2. existing targets are backed up (hard link, or a copy where links are not supported);
3. temps are renamed over the targets with os.replace (atomic per file);
4. on any failure, renamed targets are restored from their backups, new ones removed, and
   every temp file is deleted. A kill -9 during step 3 can still leave a mix of old and new
   files, but never a half-written one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path


def write_files(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write every (path, data) pair, or none of them (see the module doc)."""
    temps: list[tuple[Path, str]] = []
    backups: dict[Path, str] = {}
    done: list[Path] = []
    try:
        for path, data in files:
            temps.append((path, _write_temp(path, data)))
        for path, _ in temps:
            if path.exists():
                backups[path] = _backup(path)
        for path, tmp in temps:
            os.replace(tmp, path)
            done.append(path)
        for folder in {p.parent for p, _ in files}:
            _fsync_dir(folder)
    except BaseException:
        _roll_back(done, backups)
        for _, tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        for b in backups.values():
            Path(b).unlink(missing_ok=True)


def _write_temp(path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, _file_mode())  # mkstemp makes 0600; a written file gets the usual mode
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _backup(path: Path) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".bak", dir=path.parent)
    os.close(fd)
    try:
        os.unlink(tmp)
        os.link(path, tmp)  # same inode: free, and os.replace leaves it untouched
    except OSError:
        shutil.copy2(path, tmp)
    return tmp


def _roll_back(done: list[Path], backups: dict[Path, str]) -> None:
    for path in reversed(done):
        try:
            if path in backups:
                os.replace(backups.pop(path), path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass  # best effort: the error being raised matters more


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open folders; the renames are still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode() -> int:
    """0666 less the process umask, as open() would give."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
