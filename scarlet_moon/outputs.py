"""The one output-path policy: every command and the studio ask here before they write a file.

1. An output never names an input of the same run: not the same file (a hard or symbolic link to it
   included), and not a file inside an input folder (the next run would read it as an input).
2. An existing path is replaced only when the user said so (`--force`), and only a regular file:
   never a device, a FIFO, a socket or a folder, whatever the flags.
3. Its folder exists and can be written.
4. Two runs cannot both claim one output: `claim()` holds an exclusive lock (flock on a file named by
   the output's real path in the cache, `<cache>/locks/`, so the user's folders never hold one, not
   even after a SIGKILL) until the run has written; the second run is refused at once, naming the
   output. The kernel drops the lock when a process dies, so a killed run blocks nobody.
All refusals are BadInput (one line, exit code 2), raised before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path
from typing import Iterable, Iterator

from scarlet_moon.errors import BadInput, arg

LOCK_SUFFIX = ".sm-lock"
log = logging.getLogger(__name__)


def check_output(
    path: str | Path,
    flag: str,
    *,
    inputs: Iterable[object] = (),
    force: bool = False,
    suffix: str | None = None,
) -> Path:
    """`path` as an output the policy allows (see the module docstring); BadInput naming `flag` otherwise."""
    p = Path(path)
    if suffix is not None and (p.suffix.lower() != suffix or p.stem in ("", ".")):
        raise BadInput(f"{flag} {str(path)!r} must be a {suffix} file name")
    clash = input_clash(p, inputs)
    if clash is not None:
        raise BadInput(f"{flag} {str(path)!r} {clash}; choose an output outside the run's inputs")
    _check_existing(p, flag, force)
    folder = p.parent
    if not folder.is_dir():
        raise BadInput(f"{flag} {str(path)!r}: its parent folder {str(folder)!r} does not exist")
    check_folder_writable(folder, flag, path)
    return p


def check_folder_writable(folder: Path, flag: str, path: str | Path) -> None:
    """A file can really be made in `folder` (a temp name, removed at once): os.access says yes for root
    on /proc or a read-only mount, and the write would fail only after the work."""
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"{flag} {str(path)!r}: its folder {str(folder)!r} is not writable")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sm-probe-"):
            pass
    except OSError as exc:
        raise BadInput(f"{flag} {str(path)!r}: its folder {str(folder)!r} cannot be written ({exc.strerror})") from None


def _check_existing(p: Path, flag: str, force: bool) -> None:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BadInput(f"{flag} {str(p)!r}: cannot be checked ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{flag} {str(p)!r} is a folder; expected a file path")
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(
            f"{flag} {str(p)!r} is not a regular file (a device, FIFO or socket); only regular files are ever replaced"
        )
    if not force:
        raise BadInput(f"{flag} {str(p)!r} already exists; pass {arg('force')} to replace it")
    if not os.access(p, os.W_OK) and not os.access(p.parent, os.W_OK | os.X_OK):
        raise BadInput(f"{flag} {str(p)!r} is not writable")


def writable_folder(path: str | Path, flag: str) -> Path:
    """`path` is a writable folder, or can be made one in a writable parent (the caller makes it once
    every other check has passed); BadInput naming `flag` otherwise."""
    p = Path(path)
    if not p.exists():
        if not p.parent.is_dir():
            raise BadInput(f"{flag} {str(path)!r}: its parent folder {str(p.parent)!r} does not exist")
        if not os.access(p.parent, os.W_OK | os.X_OK):
            raise BadInput(f"{flag} {str(path)!r}: its parent folder {str(p.parent)!r} is not writable")
        check_folder_writable(p.parent, flag, path)
    elif not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
        raise BadInput(f"{flag} {str(path)!r} is not a writable folder")
    else:
        check_folder_writable(p, flag, path)
    return p


def input_clash(out: Path, inputs: Iterable[object]) -> str | None:
    """Why `out` would write over one of `inputs` (files or folders), or None. An input that is not a
    path (the API's init as a PIL image or an array, None) has no file to clash with."""
    target = _real(out)
    for given in inputs:
        if not isinstance(given, (str, os.PathLike)):
            continue
        src = Path(given)
        real = _real(src)
        if real == target or _same_file(out, src):
            return f"is an input of this run ({str(given)!r})"
        if src.is_dir() and target.is_relative_to(real):
            return f"lies inside the input folder {str(given)!r}"
    return None


def _real(p: Path) -> Path:
    return Path(os.path.realpath(p))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _lock(out: Path, flag: str) -> int:
    """An fd holding the exclusive lock of `out`; retried when the lock file was replaced under us (a run
    that finished removed it between our open and our flock)."""
    import fcntl

    try:
        lock = lock_path(out)
    except OSError as exc:  # no writable cache: the run goes on unguarded rather than not at all
        log.warning("cannot lock %r (%s); two runs writing it at once would not be stopped", str(out), exc.strerror)
        return -1
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise BadInput(f"{flag} {str(out)!r}: cannot lock it ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BadInput(
                    f"{flag} {str(out)!r} is being written by another run; wait for it or choose another output"
                ) from None
            raise
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise BadInput(f"{flag} {str(out)!r}: its lock {str(lock)!r} keeps changing; another run is writing it")


def lock_path(out: Path) -> Path:
    """The lock file of an output: in the cache, named by a hash of its real path (made on demand)."""
    import hashlib

    from scarlet_moon.cache import default_cache_dir

    folder = default_cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(os.path.realpath(out).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return folder / f"{digest}{LOCK_SUFFIX}"


@contextlib.contextmanager
def claim(paths: Iterable[str | Path], flag: str) -> Iterator[list[Path]]:
    """Hold an exclusive lock on each output while the block writes them; BadInput when another run
    holds one. The lock files are removed on the way out."""
    outs = [Path(p) for p in paths]
    held: list[tuple[Path, int]] = []
    try:
        for out in outs:
            held.append((lock_path(out), _lock(out, flag)))
        yield outs
    finally:
        for lock, fd in reversed(held):
            if fd < 0:
                continue
            with contextlib.suppress(OSError):
                os.unlink(lock)
            os.close(fd)
