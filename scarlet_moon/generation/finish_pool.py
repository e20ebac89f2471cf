"""Finishing chunks over worker processes while the device samples the next batch.

Finishing (crisp alpha, colour cap, palette snap, clean-up: generation.finish) is numpy on one CPU
core, ~0.27 ms a 16x16 sprite (bench/results/finish_workers.md): on a GPU, whose sampling is far
faster, a 100,000-sprite sheet spends most of its time there. Each chunk is finished on its own by the very function one process runs
(the same numpy calls on the same arrays), so the sprites are byte-identical whatever the number of
workers (tests/test_chunks.py). Workers are forked on Linux (nothing but numpy runs in them, none of
the threads torch or onnxruntime started), spawned elsewhere; they get the card and options once,
then one raw chunk per task, and ignore Ctrl-C (the parent shuts the pool down).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from scarlet_moon.errors import RunFailed, arg
from scarlet_moon.generation.finish import finish

if TYPE_CHECKING:
    from concurrent.futures import Future

    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.models.card import ModelCard
    from scarlet_moon.options import PostOptions

AUTO_MIN_CPUS = 4  # below this, the sampling needs the cores (a CPU backend samples on all of them)
AUTO_MIN_CHUNKS = 4  # fewer chunks: the pool's start (~10 ms forked, ~0.5 s spawned) saves nothing
AUTO_MAX_WORKERS = 16
_JOB: tuple[Any, Any, Any] | None = None  # (card, post, edit) in a worker


def auto_workers(device: str, chunks: int, cpus: int | None = None) -> int:
    """Worker processes for finishing when none is asked for: on CUDA, with at least AUTO_MIN_CHUNKS
    chunks and AUTO_MIN_CPUS CPUs, one per CPU but the sampling one's (at most one per chunk and
    AUTO_MAX_WORKERS); else 1 (finished here). On a CPU the sampling is the cost (~20 times the
    finishing of the same sprites), so finishing stays in the sampling process."""
    cpus = (os.cpu_count() or 1) if cpus is None else cpus
    if not str(device).startswith("cuda") or chunks < AUTO_MIN_CHUNKS or cpus < AUTO_MIN_CPUS:
        return 1
    return max(1, min(cpus - 1, chunks, AUTO_MAX_WORKERS))


def _init(card: "ModelCard", post: "PostOptions", edit: "Edit") -> None:
    global _JOB
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(
        signal.SIGTERM, signal.SIG_DFL
    )  # the parent's SIGTERM handler (scarlet_moon.cli.main) is not for workers
    _JOB = (card, post, edit)


def _finish(raw: np.ndarray) -> np.ndarray:
    assert _JOB is not None, "a finishing worker runs only in FinishPool"
    return finish(*_JOB, raw)


class FinishPool:
    """finish(card, post, edit, raw) over `workers` processes: `submit(raw)` returns a future whose
    result() is the finished chunk. A context manager: leaving it stops the workers."""

    def __init__(self, card: "ModelCard", post: "PostOptions", edit: "Edit", workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if sys.platform.startswith("linux") else "spawn"
        self.pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context(method), initializer=_init, initargs=(card, post, edit)
        )

    def __enter__(self) -> "FinishPool":
        return self

    def __exit__(self, *_: Any) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, raw: np.ndarray) -> "Future[np.ndarray]":
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.pool.submit(_finish, np.array(raw, copy=True))  # pickled later, by the pool's thread
        except BrokenProcessPool as exc:
            raise _stopped(exc) from None

    @staticmethod
    def result(future: "Future[np.ndarray]") -> np.ndarray:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise _stopped(exc) from None


def _stopped(exc: Exception) -> RunFailed:
    return RunFailed(
        f"a worker process finishing the sprites stopped ({exc}); the run stopped "
        f"({arg('jobs')} 1 finishes them in this process)"
    )
