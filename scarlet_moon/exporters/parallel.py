"""The bytes of a sheet's files (page PNGs, atlases) produced over worker processes.

Every file of a set is independent of the others: a page's PNG needs only its pixels, an atlas only
its format and target. `produce` runs them in a pool of `workers` processes (forked on Linux, spawned
elsewhere: see start_method) and returns the bytes in the order given, exactly those one process
makes (the same Pillow and zlib run the same calls). Results are taken in job order and the first
failing job's own exception is raised, so the error is the one a single process gives. Nothing is written here: the writer commits
the whole set afterwards (scarlet_moon.exporters.atomic), so a failure or kill in a worker leaves no file.

Spawned workers get their inputs pickled: formats whose `reads_pixels` is False get pages that carry
only their size (no pixel copy); the others are rendered in the parent while the pool works.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget

if TYPE_CHECKING:
    from concurrent.futures import Future

AUTO_MIN_PIXELS = 2048 * 2048  # below this many page pixels in all, one process is faster (spawn costs ~0.5 s)
AUTO_MAX_WORKERS = 8
AUTO_MIN_CPUS = 4


@dataclass(frozen=True)
class PageSize:
    """Stands in for a page image in a worker: the size is all a size-only format reads."""

    size: tuple[int, int]
    mode: str = "RGBA"

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]


Job = tuple[Callable[..., bytes], tuple[Any, ...]]  # (module-level function, its arguments)
_INHERITED: Sequence[Job] = ()  # the jobs of the running `produce`, for workers forked from it
_LOCK = threading.Lock()


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG bytes (Pillow's defaults, as the one-process writer always used)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def atlas_bytes(fmt: AtlasFormat, target: AtlasTarget) -> bytes:
    """One atlas file's bytes (a str render is UTF-8)."""
    data = fmt.render(target)
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def check_workers(workers: int | None) -> None:
    """None (automatic) or an int >= 1; ValueError otherwise."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r} must be a whole number >= 1 (or None: chosen from the sheet)")


def auto_workers(page_pixels: int, jobs: int, cpus: int | None = None) -> int:
    """One process for small sets (the pool's start costs more than it saves) and on machines of fewer
    than AUTO_MIN_CPUS CPUs (2 cores, busy: 2 workers took 24 s against 19 s and 0.6 GiB more,
    bench/results/parallel_write.md); else one per CPU, at most one per job and AUTO_MAX_WORKERS."""
    cpus = (os.cpu_count() or 1) if cpus is None else cpus
    if jobs < 2 or page_pixels < AUTO_MIN_PIXELS or cpus < AUTO_MIN_CPUS:
        return 1
    return min(cpus, jobs, AUTO_MAX_WORKERS)


def size_only(target: AtlasTarget) -> AtlasTarget:
    """`target` with page images replaced by their sizes (what a worker needs of a size-only format)."""
    pages = [replace(p, image=PageSize((p.size[0], p.size[1]))) for p in target.pages]  # type: ignore[arg-type]
    return replace(target, pages=pages)


def produce(jobs: Sequence[Job], workers: int) -> list[bytes]:
    """Each job's bytes, in order; workers == 1 runs them here, one after another."""
    global _INHERITED
    method = start_method()
    remote = [i for i, (fn, args) in enumerate(jobs) if method == "fork" or _shippable(fn, args)]
    if workers <= 1 or len(jobs) <= 1 or not remote:
        return [fn(*args) for fn, args in jobs]
    import multiprocessing  # with concurrent.futures ~20 ms of imports: only when a pool is used
    from concurrent.futures import ProcessPoolExecutor

    out: list[bytes | None] = [None] * len(jobs)
    with _LOCK:  # one pool at a time per process: _INHERITED holds one set of jobs
        _INHERITED = jobs  # a forked worker reads its job from here: nothing is pickled but the index
        pool = ProcessPoolExecutor(
            min(workers, len(remote)), mp_context=multiprocessing.get_context(method), initializer=_ignore_sigint
        )
        try:
            futures: dict[int, Future[bytes]] = {}
            for i in sorted(remote, key=lambda i: -_weight(jobs[i])):  # largest first: the last to start is short
                futures[i] = (
                    pool.submit(_inherited, i) if method == "fork" else pool.submit(jobs[i][0], *_shipped(jobs[i]))
                )
            for i, (fn, args) in enumerate(jobs):
                out[i] = _result(futures[i]) if i in futures else fn(*args)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _INHERITED = ()
    return out  # type: ignore[return-value]


def start_method() -> str:
    """ "fork" on Linux: the pages and frames are shared copy-on-write instead of pickled (pickling 100,000
    frames costs more than most atlases take to render); a worker runs only Pillow and pure-Python
    formats, none of the threads torch or onnxruntime started. "spawn" elsewhere (macOS, Windows)."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _inherited(i: int) -> bytes:
    fn, args = _INHERITED[i]
    return fn(*args)


def _shippable(fn: Callable[..., bytes], args: tuple[Any, ...]) -> bool:
    return fn is png_bytes or (fn is atlas_bytes and not getattr(args[0], "reads_pixels", True))


def _shipped(job: Job) -> tuple[Any, ...]:
    fn, args = job
    return (args[0], size_only(args[1])) if fn is atlas_bytes else args


def _weight(job: Job) -> int:
    fn, args = job
    if fn is png_bytes:
        return args[0].size[0] * args[0].size[1]
    return 256 * sum(len(p.frames) for p in args[1].pages)  # measured: an atlas frame costs ~ 256 PNG pixels


def _result(future: Future[bytes]) -> bytes:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise OSError(
            f"a worker process producing the sheet's files stopped ({exc}); "
            "nothing was written (workers=1 runs in this process)"
        ) from None


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and shuts the pool down
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(
        signal.SIGTERM, signal.SIG_DFL
    )  # the parent's SIGTERM handler (scarlet_moon.cli.main) is not for workers
