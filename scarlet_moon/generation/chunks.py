"""Chunked generation: any --count in fixed chunks, with memory that does not grow with it.

    images = generate_all(card, req)        # uint8 N x H x W x C, post-processed, any N

Sprite i belongs to chunk i // CHUNK_SIZE. Each chunk is sampled as one batch whose noise comes
from chunk_seed(seed, k) alone, so any subset of chunks can be produced on its own (by another
process or machine, see scarlet_moon.generation.shard) and gives the same pixels. Chunk 0 uses the seed
itself, so a count up to CHUNK_SIZE gives the very sprites an unchunked run gave; chunk k > 0
uses 53 bits of numpy SeedSequence(seed, spawn_key=(k,)) (= SeedSequence(seed).spawn(k + 1)[k]).

Memory: the sampling state (noise, the network's activations) is that of one chunk, whatever
the count; finished sprites are kept as uint8 (H * W * C bytes each: 1 KiB for 16x16 RGBA).
On a GPU one chunk is too small a batch: `group` chunks are sampled as one batch, each drawing
its noise from its own seed (Request.parts), so grouping changes no draw; results can differ
from ungrouped ones only where the device's kernels round differently at another batch size.
Backend-free: the torch or onnxruntime model is loaded once and handed to sample_array.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from scarlet_moon.models.card import ModelCard
from scarlet_moon.errors import BadInput

CHUNK_SIZE = 256  # sprites per sampled batch; part of the seed -> pixels contract, do not change lightly
ChunkProgress = Callable[[float, int], None]  # (sprites done, fractional within a chunk; sprites in all)


def chunk_count(count: int, size: int = CHUNK_SIZE) -> int:
    return -(-count // size)


def chunk_span(index: int, count: int, size: int = CHUNK_SIZE) -> tuple[int, int]:
    """[start, stop) of chunk `index` among `count` sprites."""
    return index * size, min(count, (index + 1) * size)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BadInput(f"--seed {seed!r}: must be an integer >= 0")
    return int(seed)


def chunk_seed(seed: int, index: int) -> int:
    """The noise seed of chunk `index`: the seed itself for chunk 0, else 53 derived bits
    (exact in JSON for JavaScript readers too)."""
    seed = check_seed(seed)
    if index == 0:
        return seed
    state = np.random.SeedSequence(seed, spawn_key=(int(index),)).generate_state(1, np.uint64)
    return int(state[0]) >> 11


def chunk_request(req: Any, index: int, size: int = CHUNK_SIZE) -> Any:
    """The Request for chunk `index` of `req`: its slice of the labels and its own seed."""
    start, stop = chunk_span(index, len(req.labels), size)
    if start >= stop:
        raise ValueError(f"chunk {index} is past the end of {len(req.labels)} sprites")
    return dataclasses.replace(req, labels=tuple(req.labels[start:stop]), seed=chunk_seed(req.seed, index))


def load_model(card: ModelCard, model: Any = None, device: str | None = None) -> Any:
    """The model once for every chunk: an OnnxDenoiserSession for a .onnx card, else a torch module."""
    if model is not None:
        return model
    if card.path.suffix.lower() == ".onnx":
        from scarlet_moon.backends.onnx_backend import OnnxDenoiserSession

        return OnnxDenoiserSession(card.path, device)
    from scarlet_moon.generation.core import load_torch_model

    return load_torch_model(card, device or "cpu")


def group_request(req: Any, indices: list[int], size: int = CHUNK_SIZE) -> Any:
    """One Request for the chunks `indices` sampled as a single batch, each with its own noise seed."""
    subs = [chunk_request(req, k, size) for k in indices]
    if len(subs) == 1:
        return subs[0]
    return dataclasses.replace(req, labels=tuple(y for s in subs for y in s.labels), seed=subs[0].seed,
                               parts=tuple((len(s.labels), s.seed) for s in subs))


def generate_chunks(card: ModelCard, req: Any, indices: Iterable[int], *, device: str | None = None,
                    model: Any = None, progress: ChunkProgress | None = None,
                    size: int = CHUNK_SIZE, group: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(chunk index, post-processed uint8 n x H x W x C) for each of `indices`, in that order;
    `group` chunks per sampled batch (editing modes: one, as they seed from the chunk's seed).

    `progress(done, total)` counts sprites of these chunks, fractional while a batch samples."""
    from scarlet_moon.diffusion.editing import has_edits
    from scarlet_moon.generation.core import finish, sample_array

    check_seed(req.seed)
    indices = list(indices)
    group = 1 if has_edits(req) else max(1, int(group))
    total = sum(len(range(*chunk_span(k, len(req.labels), size))) for k in indices)
    model = load_model(card, model, device)
    done = 0
    for g in range(0, len(indices), group):
        ks = indices[g:g + group]
        batch = group_request(req, ks, size)
        n = len(batch.labels)

        def step(i: int, steps: int, base: int = done, n: int = n) -> None:
            if progress is not None:
                progress(base + n * i / max(steps, 1), total)

        raw = sample_array(card, batch, device=device or "cpu", model=model, progress=step)
        done += n
        if progress is not None:
            progress(done, total)
        start = 0
        for k in ks:
            sub = chunk_request(req, k, size)
            yield k, finish(card, sub, raw[start:start + len(sub.labels)])
            start += len(sub.labels)


def generate_all(card: ModelCard, req: Any, *, device: str | None = None, model: Any = None,
                 progress: ChunkProgress | None = None, size: int = CHUNK_SIZE, group: int = 1) -> np.ndarray:
    """Every sprite of `req`, chunk by chunk: uint8 N x H x W x C (the only thing that grows with N)."""
    n = len(req.labels)
    out: np.ndarray | None = None
    for k, images in generate_chunks(card, req, range(chunk_count(n, size)), device=device, model=model,
                                     progress=progress, size=size, group=group):
        if out is None:
            out = np.empty((n, *images.shape[1:]), np.uint8)
        start, stop = chunk_span(k, n, size)
        out[start:stop] = images
    assert out is not None
    return out
