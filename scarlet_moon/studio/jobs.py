"""Generation jobs: one runs at a time per model (its own worker thread), the others queue.

A job runs the library's one generation loop (scarlet_moon.generation.chunks.generate_chunks) on the
model's cached denoiser, as scarlet_moon.api.generate does; its sprites are published chunk by chunk,
its progress comes from the loop's ChunkProgress callback, and a cancel stops it at the next step.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from scarlet_moon.errors import ScarletError
from scarlet_moon.studio.models import ModelShelf
from scarlet_moon.studio.settings import GenerateSpec
from scarlet_moon.studio.store import new_id

log = logging.getLogger(__name__)
MAX_JOBS_HELD = 500
MAX_WAITING = 16  # queued jobs per model; more are refused (429) until some finish


class Busy(ScarletError):
    """Too many jobs wait for this model already."""


class Cancelled(Exception):
    """Raised from the progress callback: the job's sampling stops at the next step."""


@dataclass
class Job:
    id: str
    spec: GenerateSpec
    on_sprites: Callable[["Job", int, np.ndarray], list[dict[str, Any]]]  # (job, first index, images) -> JSON
    state: str = "queued"  # queued | running | done | cancelled | failed
    done: float = 0.0
    total: int = 0
    error: str | None = None
    sprites: list[dict[str, Any]] = field(default_factory=list)
    cancel_asked: threading.Event = field(default_factory=threading.Event)

    def view(self, since: int = 0) -> dict[str, Any]:
        """JSON of the job; sprites from index `since` on (the page asks for what it has not drawn yet)."""
        return {
            "id": self.id,
            "state": self.state,
            "done": self.done,
            "total": self.total or self.spec.count,
            "error": self.error,
            "model": self.spec.ref.id,
            "sprites": self.sprites[since:],
            "count": len(self.sprites),
        }


class JobQueue:
    """Jobs by id, and one worker thread (with its queue) per model id."""

    def __init__(self, shelf: ModelShelf) -> None:
        self.shelf = shelf
        self.jobs: dict[str, Job] = {}
        self._queues: dict[str, queue.Queue[Job | None]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, spec: GenerateSpec, on_sprites: Callable[[Job, int, np.ndarray], list[dict[str, Any]]]) -> Job:
        job = Job(new_id("j"), spec, on_sprites)
        with self._lock:
            if sum(j.state == "queued" and j.spec.ref.id == spec.ref.id for j in self.jobs.values()) >= MAX_WAITING:
                raise Busy(f"{MAX_WAITING} jobs already wait for model {spec.ref.id!r}; cancel one or wait")
            self.jobs[job.id] = job
            for old in [j for j in self.jobs.values() if j.state in ("done", "cancelled", "failed")]:
                if len(self.jobs) <= MAX_JOBS_HELD:
                    break
                del self.jobs[old.id]
            q = self._queues.get(spec.ref.id)
            if q is None:
                q = self._queues[spec.ref.id] = queue.Queue()
                t = threading.Thread(target=self._work, args=(q,), name=f"studio-{spec.ref.id}", daemon=True)
                self._threads.append(t)
                t.start()
        q.put(job)
        return job

    def ahead(self, job: Job) -> int:
        """Jobs of the same model that run or wait before `job` (dicts keep insertion order)."""
        with self._lock:
            order = [j for j in self.jobs.values() if j.spec.ref.id == job.spec.ref.id]
        return sum(j.state in ("queued", "running") for j in order[: order.index(job)]) if job in order else 0

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

    def cancel(self, job: Job) -> None:
        job.cancel_asked.set()
        if job.state == "queued":
            job.state = "cancelled"

    def close(self) -> None:
        """Stop the workers after their current job (each job is cancelled at its next step)."""
        with self._lock:
            for j in self.jobs.values():
                j.cancel_asked.set()
            for q in self._queues.values():
                q.put(None)
        for t in self._threads:
            t.join(timeout=60)

    def _work(self, q: "queue.Queue[Job | None]") -> None:
        while (job := q.get()) is not None:
            if job.cancel_asked.is_set():
                job.state = "cancelled"
                continue
            job.state = "running"
            try:
                self._run(job)
                job.state = "done"
            except Cancelled:
                job.state = "cancelled"
            except ScarletError as exc:
                job.error, job.state = str(exc).split("\n")[0], "failed"
            except Exception as exc:  # the worker must outlive any one job
                log.exception("studio job %s failed", job.id)
                job.error, job.state = f"generation failed: {type(exc).__name__}: {exc}".split("\n")[0], "failed"

    def _run(self, job: Job) -> None:
        from scarlet_moon.generation.chunks import chunk_count, chunk_span, generate_chunks

        den = self.shelf.denoiser(job.spec.ref)
        req = job.spec.req
        n = len(req.labels)

        def progress(done: float, total: int) -> None:
            if job.cancel_asked.is_set():
                raise Cancelled()
            job.done, job.total = done, total

        for k, images in generate_chunks(den, req, range(chunk_count(n)), progress=progress):
            start, _ = chunk_span(k, n)
            job.sprites.extend(job.on_sprites(job, start, images))
