"""All-or-nothing writing of a set of files (a sheet, its pages and its atlases), journalled.

POSIX renames one file at a time, so a set of files cannot switch in one step. Instead:

1. every file is written to a temp file in its own folder and fsynced (nothing visible yet);
2. under a lock on the folder, a journal `.NAME.sm-journal` (NAME: the set's first file) records
   each target with its temp and a backup of what it replaces (a hard link, or a copy);
3. the temps are renamed over their targets, files the new set no longer has are removed;
4. deleting the journal is the commit; backups are then removed.

A failure in the process rolls the set back at once (old files restored from their backups, new
ones removed, temps deleted). A kill leaves the journal: the next write to that set, or any call
of `recover`, rolls it back the same way before doing anything else, so the folder holds the old
set again and no temp or backup stays behind. Leftovers of a killed writer (temps and backups
named after its process id) are removed once that process is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

try:  # POSIX: serialise the commits of concurrent writers to one folder
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
JOURNAL = ".{name}.sm-journal"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.sm-(?P<pid>\d+)-[0-9a-f]+\.(?:tmp|bak)$")


def write_files(files: Sequence[tuple[Path, bytes]], remove: Sequence[Path] = ()) -> None:
    """Write every (path, data) pair and remove the paths in `remove`, or do none of it (see above).
    Every path must be in one folder; the set is named after the first path."""
    if not files:
        return
    folder = files[0][0].parent
    if any(p.parent != folder for p, _ in files) or any(p.parent != folder for p in remove):
        raise ValueError("a file set is written into one folder")
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            temps.append((path, _write_temp(path, data)))
        with _locked(folder):
            _recover(files[0][0])
            _commit(folder, files[0][0].name, temps, [p for p in remove if p.exists() or p.is_symlink()])
    finally:
        for _, tmp in temps:
            tmp.unlink(missing_ok=True)


def write_file(path: str | Path, data: bytes) -> None:
    """One file, atomically: a temp file beside it (named after this process), fsynced, renamed over it."""
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def recover(anchor: Path) -> bool:
    """Roll back a write of the set named after `anchor` that a kill interrupted, and remove the
    leftovers of dead writers in its folder; True if there was anything to do."""
    if not anchor.parent.is_dir():
        return False
    with _locked(anchor.parent):
        return _recover(anchor)


def _recover(anchor: Path) -> bool:
    folder, journal = anchor.parent, anchor.parent / JOURNAL.format(name=anchor.name)
    found = False
    if journal.exists():
        try:
            entries = json.loads(journal.read_text(encoding="utf-8"))["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            entries = None  # a journal cut short by the kill: its renames never started
        if entries:
            _roll_back([(folder / e["target"], _opt(folder, e["temp"]), _opt(folder, e["backup"])) for e in entries])
        journal.unlink(missing_ok=True)
        _fsync_dir(folder)
        log.warning("%s: an earlier write of this sheet was interrupted; its files were rolled back", anchor)
        found = True
    return remove_dead_leftovers(folder) or found


def _commit(folder: Path, name: str, temps: list[tuple[Path, Path]], stale: list[Path]) -> None:
    # (target, temp or None, backup or None) per change; a stale file is a target with no temp
    changes: list[tuple[Path, Path | None, Path | None]] = [
        (path, tmp, _backup(path) if path.exists() or path.is_symlink() else None) for path, tmp in temps
    ]
    changes += [(path, None, _backup(path)) for path in stale]
    journal = folder / JOURNAL.format(name=name)
    entries = [
        {"target": p.name, "temp": t.name if t else None, "backup": b.name if b else None} for p, t, b in changes
    ]
    try:
        _write_journal(journal, entries)
        for path, tmp, _ in changes:
            if tmp is not None:
                os.replace(tmp, path)
            else:
                path.unlink(missing_ok=True)
        _fsync_dir(folder)
    except BaseException:
        _roll_back(changes)
        journal.unlink(missing_ok=True)
        for _, _, backup in changes:
            if backup is not None:
                backup.unlink(missing_ok=True)
        raise
    journal.unlink()  # the commit
    _fsync_dir(folder)
    for _, _, backup in changes:
        if backup is not None:
            backup.unlink(missing_ok=True)


def _roll_back(changes: Sequence[tuple[Path, Path | None, Path | None]]) -> None:
    """Each target back to its backup (or away, if it is new); best effort: the error being raised matters more."""
    for path, tmp, backup in reversed(changes):
        try:
            if backup is not None and backup.exists():
                os.replace(backup, path)
            elif backup is None and (tmp is None or not tmp.exists()):
                path.unlink(missing_ok=True)  # a new file that was renamed in: remove it
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _opt(folder: Path, name: object) -> Path | None:
    return folder / name if isinstance(name, str) and name and "/" not in name else None


def _leftover_name(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.sm-{os.getpid()}-{os.urandom(4).hex()}.{kind}"


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = _leftover_name(path, "tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as with open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _backup(path: Path) -> Path:
    backup = _leftover_name(path, "bak")
    try:
        os.link(path, backup)  # same inode: free, and os.replace leaves it untouched
    except OSError:
        import shutil  # only where a hard link fails: not on the start-up path of `sm sample`

        shutil.copy2(path, backup, follow_symlinks=False)
    return backup


def _write_journal(journal: Path, entries: list[dict[str, str | None]]) -> None:
    tmp = _leftover_name(journal, "tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "pid": os.getpid(), "entries": entries}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, journal)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(journal.parent)


def remove_dead_leftovers(folder: Path) -> bool:
    """Temps and backups of writers that no longer run (a live one's are left alone)."""
    removed = False
    for entry in os.scandir(folder):
        m = _LEFTOVER.match(entry.name)
        if m and not process_alive(int(m["pid"])):
            Path(entry.path).unlink(missing_ok=True)
            removed = True
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process of that id runs (this one always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder for the commit (flock on the folder itself: no lock file)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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
