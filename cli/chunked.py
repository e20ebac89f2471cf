"""Chunked sampling for `sm sample` / `sm sheet`: one progress bar (with ETA) over every chunk,
and the torchrun-sharded variant for `sm sheet` (scarlet_moon.generation.shard)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from cli.console import console, progress_disabled


@contextmanager
def _bar(quiet: bool, what: str = "sampling") -> Iterator[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=progress_disabled(quiet)) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def run_chunked(card: Any, req: Any, opts: dict[str, Any], quiet: bool) -> Any:
    """Every sprite of `req`, chunk by chunk (scarlet_moon.generation.chunks): uint8 N x H x W x C."""
    from cli.cmd_onnx import batch_group, resolve_backend, torch_device
    from scarlet_moon.generation.chunks import generate_all

    with _bar(quiet) as update:
        card, model = resolve_backend(card, opts)
        return generate_all(card, req, device=torch_device(opts), model=model, progress=update,
                            group=batch_group(opts, model))


def pin_local_gpu(opts: dict[str, Any], local_rank: int) -> None:
    """One GPU per rank on a node: CUDA_VISIBLE_DEVICES narrowed to this rank's device (before any
    CUDA initialisation; a no-op on CPU)."""
    if opts.get("device") == "cpu" or (opts.get("device") is None and opts.get("backend") == "torch"):
        return
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[local_rank % len(visible)] if visible else str(local_rank)


def run_sharded(card: Any, req: Any, opts: dict[str, Any], quiet: bool, out: str | Path,
                world: Any) -> tuple[Any, Path]:
    """This rank's chunks to shard files; on rank 0 also every sprite, gathered (else None),
    and the shard folder (rank 0 removes it once the sheet is written)."""
    from cli.cmd_onnx import batch_group, resolve_backend, torch_device
    from scarlet_moon.generation import shard
    from scarlet_moon.models.card import file_fingerprint
    from scarlet_moon.generation.chunks import chunk_count, generate_chunks

    quiet = quiet or world.rank != 0
    pin_local_gpu(opts, world.local_rank)
    card, model = resolve_backend(card, opts)
    backend = "onnx" if card.path.suffix.lower() == ".onnx" else "torch"
    folder = shard.shard_dir(out, shard.run_key(req, file_fingerprint(card.path), backend))
    folder.mkdir(exist_ok=True)
    count, sprite = len(req.labels), (*card.size, card.channels)
    todo = [k for k in world.chunks(chunk_count(count))
            if shard.read_chunk(folder, k, shard.chunk_shape(k, count, sprite)) is None]
    try:
        with _bar(quiet, f"sampling (rank {world.rank}/{world.size})") as update:
            for k, images in generate_chunks(card, req, todo, device=torch_device(opts), model=model,
                                             progress=update, group=batch_group(opts, model)):
                shard.write_chunk(folder, k, images)
    except BaseException as exc:
        shard.mark_failed(folder, world, str(exc) or type(exc).__name__)
        raise
    if world.rank != 0:
        return None, folder
    with _bar(quiet, "gathering chunks") as update:
        return shard.gather(folder, count, sprite, world, on_wait=update), folder
