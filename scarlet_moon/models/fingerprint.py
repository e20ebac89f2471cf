"""A file's fingerprint: sha256 of its bytes, first 16 hex chars. It names a checkpoint in ONNX exports,
parent/teacher records and sprite metadata, and ties the bundled model to its shipped export.

Hashing the bundled model (12 MB) took ~14 ms of every `sm sample` (about 3% of it), so fingerprints of
files of 1 MiB and more are remembered in <cache>/fingerprints/, one 16-byte file each, keyed by the
file's resolved path, device, inode, size, mtime and ctime. Any write to the file or any replacement of
it changes its ctime (which, unlike mtime, no tool can set back), so a changed file is hashed again. A
file that changes while it is hashed is not remembered. The limit is the file system's clock: a
rewrite with the same size and a restored mtime within the same clock tick as the state remembered
(a few ms on Linux before 6.13; 6.13+ hands out fine-grained times once a file's times were read) or
on a file system with coarse times goes unseen, as for the onnxruntime graph cache. The cache only saves time: an unreadable,
unwritable or corrupt one is as if there were none. At most KEEP entries are kept, the last used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from scarlet_moon.exporters.atomic import write_file

MIN_SIZE = 1 << 20  # smaller files hash in well under a millisecond
KEEP = 64
_HEX16 = re.compile(r"[0-9a-f]{16}")


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _identity(path: Path, st: os.stat_result) -> str:
    return f"{path.resolve()}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"


def _entry(path: Path, st: os.stat_result) -> Path:
    from scarlet_moon.cache import default_cache_dir

    return default_cache_dir() / "fingerprints" / hashlib.sha256(_identity(path, st).encode()).hexdigest()[:24]


def file_fingerprint(path: str | Path) -> str:
    """sha256 of the file's bytes, first 16 hex chars (remembered for large files: see the module)."""
    p = Path(path)
    st = p.stat()
    if st.st_size < MIN_SIZE or os.environ.get("SM_FINGERPRINT_CACHE", "1") == "0":
        return _hash(p)
    entry = _entry(p, st)
    try:
        with entry.open("rb") as f:
            known = f.read(17).decode("ascii")  # 16 hex digits; anything longer is not an entry
        if _HEX16.fullmatch(known):
            with contextlib.suppress(OSError):  # a read-only cache still serves
                os.utime(entry)  # the KEEP kept are the last used, not the last made
            return known
    except (OSError, UnicodeDecodeError):
        pass
    fingerprint = _hash(p)
    if _identity(p, p.stat()) == _identity(p, st):  # unchanged while it was read
        _remember(entry, fingerprint)
    return fingerprint


def _remember(entry: Path, fingerprint: str) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_file(entry, fingerprint.encode("ascii"))
        entries = sorted(
            (q for q in entry.parent.iterdir() if len(q.name) == len(entry.name)),
            key=lambda q: q.stat().st_mtime_ns,
            reverse=True,
        )
        for old in entries[KEEP:]:
            old.unlink()
    except OSError:
        pass  # an unwritable cache, or another process pruning it: the next command hashes again
