"""onnxruntime's optimised graph of an .onnx, cached, so that a CPU session opens without optimising it
again: about half of what creating the bundled model's session costs (bench/results/startup.md).

The cache entry is keyed by the file (resolved path, inode, size, mtime), the onnxruntime version and
the CPU (model name and flags: the NCHWc layout onnxruntime chooses depends on them), so a changed
file, an upgraded onnxruntime or another machine sharing the home folder gets its own entry.
onnxruntime writes the graph while it creates the first session, to a temporary file that is then
copied into place by scarlet_moon.exporters.atomic: a killed process leaves no half-file for a later one to
load. An entry that does not load is removed and made again. Nothing here can fail a session that
would open without it: the cache only saves time. SM_ORT_CACHE=0 turns it off. At most KEEP entries
are kept (the newest).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

from scarlet_moon.errors import BadInput
from scarlet_moon.exporters.atomic import write_file

log = logging.getLogger(__name__)
KEEP = 8
SUFFIX = ".opt.onnx"


def cpu_identity() -> str:
    """The CPU as onnxruntime's kernels see it: model name and feature flags (Linux), else the platform's."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                lines = [ln for ln in f.read(1 << 16).splitlines() if ln.startswith(("model name", "flags"))]
            return "\n".join(sorted(set(lines)))
        except OSError:
            pass
    import platform

    return f"{platform.machine()} {platform.processor()}"


def entry_path(path: Path, ort_version: str, folder: Path) -> Path:
    """Where the optimised graph of `path` is kept."""
    st = path.stat()
    key = json.dumps([str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, ort_version, cpu_identity()])
    return folder / (hashlib.sha256(key.encode()).hexdigest()[:24] + SUFFIX)


def cached_session(path: Path, ort_version: str, open_: Callable[..., Any]) -> Any:
    """A CPU session on `path` through `open_(path, save_to=None, optimised=False)`: on the cached graph
    when there is one, else on `path` (writing the cache entry as it optimises). A file onnxruntime
    cannot load raises open_'s BadInput, as without the cache."""
    from scarlet_moon.cache import default_cache_dir

    if os.environ.get("SM_ORT_CACHE", "1") == "0":
        return open_(path)
    folder = default_cache_dir() / "ort"
    try:
        entry = entry_path(path, ort_version, folder)
    except OSError:
        return open_(path)
    if entry.is_file():
        try:
            return open_(entry, optimised=True)
        except BadInput:
            log.debug("cached graph %s does not load: made again", entry)
            _remove(entry)
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            return open_(path)
        sess = open_(path, save_to=tmp)
    except (OSError, BadInput):  # an unwritable cache, or a model that will not load: as without a cache
        _remove(tmp)
        return open_(path)
    try:
        if tmp.is_file() and tmp.stat().st_size > 0:
            write_file(entry, tmp.read_bytes())  # the house writer: temp name, fsync, rename
            prune(folder)
    except OSError as exc:
        log.debug("onnxruntime cache %s not kept: %s", entry, exc)
    finally:
        _remove(tmp)
    return sess


def prune(folder: Path, keep: int = KEEP) -> None:
    """Only the `keep` newest entries stay (each is a copy of a model's weights)."""
    entries = sorted(folder.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[keep:]:
        _remove(old)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # its folder is gone or is a file: nothing to remove
        pass
