"""Sharded `sm sheet` (scarlet_moon.generation.shard): chunks shared out by torchrun rank, rank 0 packs,
and the files are byte-identical to a single-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HANG, ROOT, sm_cmd

from scarlet_moon.errors import BadInput, RunFailed
from scarlet_moon.generation.chunks import CHUNK_SIZE
from scarlet_moon.generation.shard import chunk_path, gather, read_chunk, write_chunk
from scarlet_moon.world import World, world_from_env

COUNT = 2 * CHUNK_SIZE + 88  # three chunks: rank 0 samples 0 and 2, rank 1 samples 1
FORMATS = "json-hash,json-array,aseprite,godot3,godot4,libgdx"


def test_world_from_env():
    assert world_from_env({}) is None and world_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    w = world_from_env({"WORLD_SIZE": "3", "RANK": "1", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "x"})
    assert w == World(1, 3, 1, "x") and w.chunks(8) == [1, 4, 7]
    with pytest.raises(BadInput, match="RANK=2"):
        world_from_env({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(BadInput, match="'two'"):
        world_from_env({"WORLD_SIZE": "two"})


def test_gather_assembles_in_order_and_reads_only_good_chunks(tmp_path: Path):
    world = World(0, 2, 0, "r1")
    chunks = [np.full((CHUNK_SIZE if k < 2 else 10, 2, 2, 4), k, np.uint8) for k in range(3)]
    for k in (2, 0, 1):
        write_chunk(tmp_path, k, chunks[k])
    assert read_chunk(tmp_path, 2, (11, 2, 2, 4)) is None  # wrong shape: sampled again, never used
    chunk_path(tmp_path, 1).with_suffix(".tmp").write_bytes(b"junk")  # a temp file is not a chunk
    out = gather(tmp_path, 2 * CHUNK_SIZE + 10, (2, 2, 4), world, timeout=5, poll=0.01)
    assert np.array_equal(out, np.concatenate(chunks))


def test_gather_stops_on_a_failed_rank_or_a_timeout(tmp_path: Path):
    world = World(0, 2, 0, "r2")
    write_chunk(tmp_path, 0, np.zeros((CHUNK_SIZE, 2, 2, 4), np.uint8))
    with pytest.raises(RunFailed, match=r"1 of 2 chunks missing .*first: 1"):
        gather(tmp_path, CHUNK_SIZE + 1, (2, 2, 4), world, timeout=0.05, poll=0.01)
    (tmp_path / "failed-old-rank1.txt").write_text("from an earlier launch")  # another run id: ignored
    (tmp_path / "failed-r2-rank1.txt").write_text("sampling produced NaN")
    with pytest.raises(RunFailed, match="rank 1 failed: sampling produced NaN"):
        gather(tmp_path, CHUNK_SIZE + 1, (2, 2, 4), world, timeout=60, poll=0.01)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "TORCHELASTIC_RUN_ID")}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def _same_files(a: Path, b: Path) -> list[str]:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert not [n for n in names if ".shards-" in n], names  # shard folder removed after the sheet
    return [n for n in names if (a / n).read_bytes() != (b / n).read_bytes()]


NO_TORCH = (
    "import json, sys\nfrom scarlet_moon.cli.main import sm\ntry:\n"
    "    sm.main(sys.argv[1:], prog_name='sm', standalone_mode=False)\nfinally:\n"
    "    print(json.dumps('torch' in sys.modules), file=sys.stderr)\n"
)


def test_ranks_by_hand_onnx_backend_without_torch(tiny_model: Path, tmp_path: Path):
    """Two ranks run one after the other (rank 1 first, then rank 0 gathers): same bytes as one process."""
    from scarlet_moon.onnx.export import export_onnx

    model = tmp_path / "m.onnx"
    export_onnx(tiny_model, model)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    args = [
        "sheet",
        "--model",
        str(model),
        "--label",
        "red",
        "--label",
        "green",
        "--count",
        str(CHUNK_SIZE + 20),
        "--steps",
        "2",
        "--seed",
        "6",
        "--max-size",
        "128",
        "--format",
        FORMATS,
    ]
    single = subprocess.run(
        sm_cmd(*args, "--out", str(tmp_path / "one" / "s.png")),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert single.returncode == 0, single.stderr
    for rank in ("1", "0"):
        proc = subprocess.run(
            [sys.executable, "-c", NO_TORCH, *args, "--out", str(tmp_path / "two" / "s.png")],
            cwd=ROOT,
            env=_env(WORLD_SIZE="2", RANK=rank, LOCAL_RANK=rank, MASTER_ADDR="127.0.0.1"),
            capture_output=True,
            text=True,
            timeout=HANG,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stderr.strip().splitlines()[-1]) is False  # no torch on either rank
        assert bool(proc.stdout.strip()) == (rank == "0")  # only rank 0 writes (and lists) files
    assert _same_files(tmp_path / "one", tmp_path / "two") == []


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one_process(tiny_model: Path, tmp_path: Path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    args = [
        "sheet",
        "--model",
        str(tiny_model),
        "--label",
        "red",
        "--label",
        "blue",
        "--count",
        str(COUNT),
        "--steps",
        "2",
        "--seed",
        "11",
        "--max-size",
        "160",
        "--format",
        FORMATS,
    ]
    single = subprocess.run(
        sm_cmd(*args, "--out", str(tmp_path / "one" / "s.png")),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert single.returncode == 0, single.stderr
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        "-m",
        "scarlet_moon.cli.main",
        *args,
        "--out",
        str(tmp_path / "two" / "s.png"),
    ]
    proc = subprocess.run(launch, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=HANG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(list((tmp_path / "two").glob("s-*.png"))) > 1  # a multi-page sheet
    assert _same_files(tmp_path / "one", tmp_path / "two") == []
