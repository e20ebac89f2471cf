"""Sharded generation over torchrun ranks, through files (no torch.distributed needed).

    images = run_shard(den, req, out, world)   # this rank's chunks; on rank 0 every sprite, else None

Under torchrun (WORLD_SIZE > 1, RANK, LOCAL_RANK set) chunk k goes to rank k % WORLD_SIZE.
Each rank writes each finished chunk as CHUNK.npy (uint8, allow_pickle=False, atomic) into a
shard folder next to the output, named after a key of everything that decides the pixels, so
a leftover folder from other options is never read; a chunk already there is not sampled again
(a crashed run resumes). Rank 0 samples its own chunks, then waits until every chunk is there
(timeout: no new chunk for SM_SHARD_TIMEOUT seconds, default 1800), assembles them in order
and writes the outputs; the caller then removes the folder. A rank that fails leaves a
failed-<run id>-rank<r>.txt note, so rank 0 stops at once instead of waiting.
Polling files keeps the onnx backend free of torch; every rank must see the same folder
(one machine, or a shared filesystem across machines).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from scarlet_moon.errors import BadInput, RunFailed
from scarlet_moon.exporters.atomic import write_file
from scarlet_moon.generation.chunks import CHUNK_SIZE, ChunkProgress, chunk_count, chunk_span, generate_chunks
from scarlet_moon.generation.request import Request
from scarlet_moon.models.card import file_fingerprint
from scarlet_moon.world import World

if TYPE_CHECKING:
    from scarlet_moon.backends.base import Denoiser

DEFAULT_TIMEOUT_S = 1800.0


def _digest(value: Any) -> str:
    """A stable text for a request field: arrays by their bytes, dataclasses field by field."""
    if isinstance(value, np.ndarray):
        return f"array{value.shape}{value.dtype}:{hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = ",".join(f"{f.name}={_digest(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{type(value).__name__}({inner})"
    return repr(value)


def run_key(req: Request, model_fingerprint: str, backend: str, size: int = CHUNK_SIZE) -> str:
    """16 hex chars naming everything that decides the pixels: every Request field, the model
    file, the backend and the chunk size."""
    parts = [f"{f.name}={_digest(getattr(req, f.name))}" for f in dataclasses.fields(req)]
    parts += [f"model={model_fingerprint}", f"backend={backend}", f"chunk={size}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def shard_dir(out: str | Path, key: str) -> Path:
    """The shard folder beside the output: .NAME.shards-KEY (hidden, removed after the sheet)."""
    out = Path(out)
    return out.parent / f".{out.name}.shards-{key}"


def chunk_path(folder: Path, index: int) -> Path:
    return folder / f"chunk-{index:06d}.npy"


def write_chunk(folder: Path, index: int, images: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(images, np.uint8), allow_pickle=False)
    path = chunk_path(folder, index)
    write_file(path, buf.getvalue())
    return path


def read_chunk(folder: Path, index: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """The chunk's sprites when its file is there and has the expected shape, else None."""
    path = chunk_path(folder, index)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return arr if arr.dtype == np.uint8 and arr.shape == shape else None


def chunk_shape(index: int, count: int, sprite_shape: tuple[int, ...], size: int = CHUNK_SIZE) -> tuple[int, ...]:
    start, stop = chunk_span(index, count, size)
    return (stop - start, *sprite_shape)


def mark_failed(folder: Path, world: World, message: str) -> None:
    """Leave a note for rank 0 (best effort: the error being raised matters more)."""
    try:
        write_file(folder / f"failed-{world.run_id}-rank{world.rank}.txt", message.encode())
    except OSError:
        pass


def _failure(folder: Path, world: World) -> str | None:
    for note in sorted(folder.glob(f"failed-{world.run_id}-rank*.txt")):
        rank = note.stem.rpartition("rank")[2]
        return f"rank {rank} failed: {note.read_text(errors='replace').strip()}"
    return None


def gather(
    folder: Path,
    count: int,
    sprite_shape: tuple[int, ...],
    world: World,
    *,
    timeout: float | None = None,
    poll: float = 0.5,
    size: int = CHUNK_SIZE,
    on_wait: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Rank 0: wait for every chunk file, then all sprites in order (uint8 N x H x W x C)."""
    if timeout is None:
        raw = os.environ.get("SM_SHARD_TIMEOUT", str(DEFAULT_TIMEOUT_S))
        try:
            timeout = float(raw)
        except ValueError:
            raise BadInput(f"environment SM_SHARD_TIMEOUT={raw!r}: expected seconds") from None
    n_chunks = chunk_count(count, size)
    out = np.empty((count, *sprite_shape), np.uint8)
    missing = set(range(n_chunks))
    last_new = time.monotonic()
    while missing:
        for k in sorted(missing):
            arr = read_chunk(folder, k, chunk_shape(k, count, sprite_shape, size))
            if arr is not None:
                start, stop = chunk_span(k, count, size)
                out[start:stop] = arr
                missing.discard(k)
                last_new = time.monotonic()
        if on_wait is not None:
            on_wait(n_chunks - len(missing), n_chunks)
        if not missing:
            break
        failed = _failure(folder, world)
        if failed:
            raise RunFailed(f"{failed}; finished chunks stay in {str(folder)!r}, a rerun resumes from them")
        if time.monotonic() - last_new > timeout:
            raise RunFailed(
                f"no new chunk for {timeout:g}s; {len(missing)} of {n_chunks} chunks missing in "
                f"{str(folder)!r} (first: {min(missing)}); is every rank running? "
                f"(SM_SHARD_TIMEOUT sets the wait)"
            )
        time.sleep(poll)
    return out


def run_shard(
    den: "Denoiser",
    req: Request,
    out: str | Path,
    world: World,
    *,
    batch: int | None = None,
    progress: ChunkProgress | None = None,
    on_wait: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray | None, Path]:
    """This rank's chunks to shard files beside `out`; on rank 0 also every sprite, gathered (else
    None), and the shard folder (rank 0 removes it once the outputs are written)."""
    folder = shard_dir(out, run_key(req, file_fingerprint(den.card.path), den.backend))
    folder.mkdir(exist_ok=True)
    count, sprite = len(req.labels), (*den.card.size, den.card.channels)
    todo = [k for k in world.chunks(chunk_count(count)) if read_chunk(folder, k, chunk_shape(k, count, sprite)) is None]
    try:
        for k, images in generate_chunks(den, req, todo, batch=batch, progress=progress):
            write_chunk(folder, k, images)
    except BaseException as exc:
        mark_failed(folder, world, str(exc) or type(exc).__name__)
        raise
    if not world.main:
        return None, folder
    return gather(folder, count, sprite, world, on_wait=on_wait), folder
