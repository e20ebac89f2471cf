"""How many torch threads a training process uses.

Measured on this project's 2-core machine (default preset, batch 64, bench/results/threads.md):
quiet, 2 threads ran a step in 225 ms and 1 thread in 369 ms; with one other busy process,
2 threads took 2,035 ms (OpenMP threads spinning against it) and 1 thread 393 ms. So the default,
"auto", takes the cores nobody else is using: cores - the load of everyone else, at least 1, and
looks again every 30 s; `threads=N` fixes it.
"""

from __future__ import annotations

import os
import time

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.limits import MAX_THREADS

RECHECK_S = 30.0


def check_threads(threads: object) -> int:
    """0 (auto) or a thread count 1..MAX_THREADS."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS:
        raise BadInput(f"{arg('threads')} {threads!r}: expected a thread count 1..{MAX_THREADS} (0 = auto)")
    return threads


def free_cores(own: int = 0) -> int:
    """The cores others leave free: cores - (1-minute load - `own` threads of this process), at least 1."""
    cores = os.cpu_count() or 1
    try:
        others = max(0.0, os.getloadavg()[0] - own)
    except OSError:  # no load average (Windows)
        others = 0.0
    return max(1, min(cores, cores - round(others)))


class Threads:
    """torch's thread count for a run: fixed, or (0) following the free cores every RECHECK_S seconds."""

    def __init__(self, threads: int = 0):
        import torch  # here, not at the top: `sm train` checks its options before torch loads

        self.fixed = check_threads(threads)
        self.count = self.fixed or free_cores()
        self.checked = time.monotonic()
        torch.set_num_threads(self.count)

    def tick(self) -> None:
        """Called after each step: in auto mode, re-read the load now and then."""
        if self.fixed or time.monotonic() - self.checked < RECHECK_S:
            return
        self.checked = time.monotonic()
        want = free_cores(own=self.count)
        if want != self.count:
            import torch

            self.count = want
            torch.set_num_threads(want)
