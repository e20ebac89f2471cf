"""Sharded generation over torchrun ranks, through files (no torch.distributed needed).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from scarlet_moon.atomic import atomic_write_bytes
from scarlet_moon.generation.chunks import CHUNK_SIZE, chunk_count, chunk_span
from scarlet_moon.errors import BadInput, RunFailed

DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    run_id: str = "none"

    def chunks(self, n_chunks: int) -> list[int]:
        """This rank's chunks: k % size == rank."""
        return list(range(self.rank, n_chunks, self.size))


def world_from_env(env: Mapping[str, str] | None = None) -> World | None:
    """The torchrun world when WORLD_SIZE > 1, else None (a plain single-process run)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return None
    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        raw = env.get(name, "0")
        try:
            values[name] = int(raw)
        except ValueError:
            raise BadInput(f"environment {name}={raw!r}: expected an integer (set by torchrun)") from None
    size, rank = values["WORLD_SIZE"], values["RANK"]
    if size < 1 or not 0 <= rank < size:
        raise BadInput(f"environment WORLD_SIZE={size}, RANK={rank}: expected 0 <= RANK < WORLD_SIZE")
    if size == 1:
        return None
    return World(rank, size, values["LOCAL_RANK"], env.get("TORCHELASTIC_RUN_ID", "none"))


def _digest(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}{value.dtype}:{hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}"
    return repr(value)


def run_key(req: Any, model_fingerprint: str, backend: str, size: int = CHUNK_SIZE) -> str:
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
    atomic_write_bytes(path, buf.getvalue())
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
        atomic_write_bytes(folder / f"failed-{world.run_id}-rank{world.rank}.txt", message.encode())
    except OSError:
        pass


def _failure(folder: Path, world: World) -> str | None:
    for note in sorted(folder.glob(f"failed-{world.run_id}-rank*.txt")):
        rank = note.stem.rpartition("rank")[2]
        return f"rank {rank} failed: {note.read_text(errors='replace').strip()}"
    return None


def gather(folder: Path, count: int, sprite_shape: tuple[int, ...], world: World, *,
           timeout: float | None = None, poll: float = 0.5, size: int = CHUNK_SIZE,
           on_wait: Callable[[int, int], None] | None = None) -> np.ndarray:
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
            raise RunFailed(f"no new chunk for {timeout:g}s; {len(missing)} of {n_chunks} chunks missing in "
                            f"{str(folder)!r} (first: {min(missing)}); is every rank running? "
                            f"(SM_SHARD_TIMEOUT sets the wait)")
        time.sleep(poll)
    return out
