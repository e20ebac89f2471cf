"""The one generation loop: any count in fixed chunks, on any backend, with memory that does not grow.

    den = open_denoiser(model)                     # scarlet_moon.backends
    images = generate_all(den, request)            # uint8 N x H x W x C, finished, any N

The API (scarlet_moon.generate), `sm sample`, `sm sheet`, `sm eval`, sharded sheets and the
training sample grids all call it, so the same model, seed and options give the same sprites.

Sprite i belongs to chunk i // CHUNK_SIZE. Each chunk's noise comes from chunk_seed(seed, k)
alone, so any subset of chunks can be produced on its own (by another process or machine, see
scarlet_moon.generation.shard) and gives the same pixels. Chunk 0 uses the seed itself, so a
count up to CHUNK_SIZE gives the very sprites an unchunked run gave; chunk k > 0 uses 53 bits of
numpy SeedSequence(seed, spawn_key=(k,)) (= SeedSequence(seed).spawn(k + 1)[k]).

Memory: the sampling state (noise, the network's activations) is that of one sampled batch,
whatever the count; finished sprites are kept as uint8 (H * W * C bytes each: 1 KiB at 16x16
RGBA). On a GPU one chunk is too small a batch: `batch` sprites (whole chunks) are sampled at
once, each chunk drawing its noise from its own seed, so the batch size changes no draw; results
can differ only where the device's kernels round differently at another batch size.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.generation.finish import finish
from scarlet_moon.generation.request import Request, check_seed
from scarlet_moon.options import whole

if TYPE_CHECKING:
    from scarlet_moon.backends.base import Denoiser

CHUNK_SIZE = 256  # sprites per chunk; part of the seed -> pixels contract, do not change lightly
CUDA_BATCH = 8192  # sprites per sampled batch on CUDA by default (bench/results/onnx_gpu.md)
ChunkProgress = Callable[[float, int], None]  # (sprites done, fractional within a batch; sprites in all)


def chunk_count(count: int, size: int = CHUNK_SIZE) -> int:
    return -(-count // size)


def chunk_span(index: int, count: int, size: int = CHUNK_SIZE) -> tuple[int, int]:
    """[start, stop) of chunk `index` among `count` sprites."""
    return index * size, min(count, (index + 1) * size)


def chunk_seed(seed: int, index: int) -> int:
    """The noise seed of chunk `index`: the seed itself for chunk 0, else 53 derived bits
    (exact in JSON for JavaScript readers too)."""
    seed = check_seed(seed)
    if index == 0:
        return seed
    state = np.random.SeedSequence(seed, spawn_key=(int(index),)).generate_state(1, np.uint64)
    return int(state[0]) >> 11


def chunks_per_batch(den: "Denoiser", req: Request, batch: int | None, size: int = CHUNK_SIZE) -> int:
    """Whole chunks per sampled batch: `batch` sprites rounded up, by default CUDA_BATCH on CUDA and
    one chunk elsewhere; one chunk for editing modes (they seed from the chunk's seed)."""
    if batch is not None and not (whole(batch) and batch >= 1):
        raise BadInput(f"{arg('batch')} {batch!r}: expected a whole number of sprites >= 1")
    if req.edit.active:
        return 1
    if batch is None:
        batch = CUDA_BATCH if str(den.device).startswith("cuda") else size
    return -(-int(batch) // size)


def batch_of(req: Request, ks: list[int], size: int = CHUNK_SIZE) -> tuple[list[int], list[tuple[int, int]]]:
    """(labels, noise parts) of chunks `ks` sampled as one batch: each part (sprites, seed) is a chunk."""
    n_all = len(req.labels)
    spans = [chunk_span(k, n_all, size) for k in ks]
    if any(a >= b for a, b in spans):
        raise ValueError(f"chunk indices {ks} reach past the end of {n_all} sprites")
    labels = [y for a, b in spans for y in req.labels[a:b]]
    return labels, [(b - a, chunk_seed(req.seed, k)) for k, (a, b) in zip(ks, spans)]


def generate_chunks(
    den: "Denoiser",
    req: Request,
    indices: Iterable[int],
    *,
    batch: int | None = None,
    progress: ChunkProgress | None = None,
    raw: bool = False,
    size: int = CHUNK_SIZE,
    workers: int | None = 1,
) -> Iterator[tuple[int, np.ndarray]]:
    """(chunk index, uint8 n x H x W x C) for each of `indices`, in that order: finished sprites, or
    the sampler's output with `raw`. `progress(done, total)` counts sprites of these chunks.
    `workers`: processes finishing chunks while the next batch samples (generation.finish_pool;
    the same bytes as 1, which finishes here; None: finish_pool.auto_workers)."""
    req.check_fits(den.card)
    indices = list(indices)
    group = chunks_per_batch(den, req, batch, size)
    workers = check_workers(workers, den, len(indices), raw)
    sampled = _sampled(den, req, indices, group, progress, size)
    if workers == 1:
        for k, images in sampled:
            yield k, images if raw else finish(den.card, req.post, req.edit, images)
        return
    from scarlet_moon.generation.finish_pool import FinishPool

    with FinishPool(den.card, req.post, req.edit, workers) as pool:
        pending: deque[tuple[int, Any]] = deque()  # (chunk, future) in chunk order
        for k, images in sampled:
            pending.append((k, pool.submit(images)))
            while len(pending) > max(2 * group, 2 * workers):  # the rest finish while the next batch samples
                k0, fut = pending.popleft()
                yield k0, pool.result(fut)
        while pending:
            k0, fut = pending.popleft()
            yield k0, pool.result(fut)


def _sampled(
    den: "Denoiser", req: Request, indices: list[int], group: int, progress: ChunkProgress | None, size: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(chunk index, the sampler's uint8 output) for each of `indices`, `group` chunks per sampled batch."""
    sampling = req.sampling.resolve(den.card)
    total = sum(len(range(*chunk_span(k, len(req.labels), size))) for k in indices)
    done = 0
    for g in range(0, len(indices), group):
        ks = indices[g : g + group]
        labels, parts = batch_of(req, ks, size)

        def step(i: int, steps: int, base: int = done, n: int = len(labels)) -> None:
            if progress is not None:
                progress(base + n * i / max(steps, 1), total)

        out = den.sample(labels, parts, sampling, req.edit, step)
        done += len(labels)
        if progress is not None:
            progress(done, total)
        start = 0
        for k, (n, _) in zip(ks, parts):
            yield k, out[start : start + n]
            start += n


def check_workers(workers: int | None, den: "Denoiser", chunks: int, raw: bool) -> int:
    """The finishing processes to use: 1 for raw output or a single chunk; None: auto_workers."""
    if workers is not None and (isinstance(workers, bool) or not whole(workers) or workers < 1):
        raise BadInput(f"{arg('jobs')} {workers!r}: expected a whole number of processes >= 1")
    if raw or chunks < 2:
        return 1
    if workers is None:
        from scarlet_moon.generation.finish_pool import auto_workers

        return auto_workers(str(den.device), chunks)
    return min(int(workers), chunks)


def generate_all(
    den: "Denoiser",
    req: Request,
    *,
    batch: int | None = None,
    progress: ChunkProgress | None = None,
    raw: bool = False,
    size: int = CHUNK_SIZE,
    workers: int | None = 1,
) -> np.ndarray:
    """Every sprite of `req`, chunk by chunk: uint8 N x H x W x C (the only thing that grows with N).
    `workers`: processes finishing chunks (generate_chunks)."""
    n = len(req.labels)
    out: np.ndarray | None = None
    for k, images in generate_chunks(
        den, req, range(chunk_count(n, size)), batch=batch, progress=progress, raw=raw, size=size, workers=workers
    ):
        if out is None:
            out = np.empty((n, *images.shape[1:]), np.uint8)
        start, stop = chunk_span(k, n, size)
        out[start:stop] = images
    assert out is not None
    return out
