"""Chunked generation (scarlet_moon.generation.chunks): per-chunk seeds, independent chunks, large counts
through `sm sample` / `sm sheet` with several pages in every atlas format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scarlet_moon.backends import open_denoiser, read_card
from scarlet_moon.cli.main import sm
from scarlet_moon.errors import BadInput
from scarlet_moon.generation.chunks import CHUNK_SIZE, batch_of, chunk_count, chunk_seed, generate_all, generate_chunks
from scarlet_moon.generation.finish import finish
from scarlet_moon.generation.request import Request
from scarlet_moon.options import SamplingOptions

COUNT = CHUNK_SIZE + 44  # two chunks, the second one short


def test_chunk_seeds_depend_on_seed_and_index_only():
    assert chunk_seed(7, 0) == 7  # one chunk: the seed itself, as before chunking
    seeds = [chunk_seed(7, k) for k in range(50)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2**53 for s in seeds)
    assert seeds == [chunk_seed(7, k) for k in range(50)]
    assert chunk_seed(8, 3) != chunk_seed(7, 3)
    assert chunk_seed(7, 3) == int(np.random.SeedSequence(7).spawn(4)[3].generate_state(1, np.uint64)[0]) >> 11
    with pytest.raises(BadInput, match="seed -1"):
        chunk_seed(-1, 0)
    assert chunk_count(1) == 1 and chunk_count(CHUNK_SIZE) == 1 and chunk_count(COUNT) == 2


def test_a_chunk_slices_labels_and_reseeds():
    req = Request(labels=tuple(range(10)), seed=3)
    labels, parts = batch_of(req, [2], size=4)
    assert labels == [8, 9] and parts == [(2, chunk_seed(3, 2))] and req.sampling.steps is None
    with pytest.raises(ValueError):
        batch_of(req, [3], size=4)


def test_any_chunk_alone_gives_the_same_sprites(tiny_model: Path):
    card = read_card(tiny_model)
    den = open_denoiser(card)
    req = Request.plan(card, ["red", "blue"], 10, seed=5, sampling=SamplingOptions(steps=3))
    calls = []
    everything = generate_all(den, req, size=4, progress=lambda done, total: calls.append((done, total)))
    assert everything.shape == (10, 8, 8, 4) and everything.dtype == np.uint8
    assert calls[-1] == (10, 10) and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    ((k, alone),) = generate_chunks(den, req, [1], size=4)
    assert k == 1 and np.array_equal(alone, everything[4:8])
    # up to one chunk: exactly one sampled batch with the user's seed
    small = dataclasses.replace(req, labels=req.labels[:4])
    raw = den.sample(small.labels, [(4, small.seed)], small.sampling.resolve(card))
    assert np.array_equal(generate_all(den, small, size=4), finish(card, small.post, small.edit, raw))


def test_sample_count_over_one_chunk(tiny_model: Path, tmp_path: Path):
    args = ["sample", "--model", str(tiny_model), "--label", "red", "--count", str(COUNT), "--steps", "2"]
    res = CliRunner().invoke(sm, [*args, "--seed", "4", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "a").glob("*.png"))
    assert len(files) == COUNT and files[-1].name == f"red_{COUNT - 1:03d}.png"
    again = CliRunner().invoke(sm, [*args, "--seed", "4", "--out", str(tmp_path / "b")])
    assert again.exit_code == 0
    assert all(f.read_bytes() == (tmp_path / "b" / f.name).read_bytes() for f in files[::37])


ALL_FORMATS = "json-hash,json-array,aseprite,godot3,godot4,libgdx"


def test_sheet_over_one_chunk_spreads_over_pages_in_every_format(tiny_model: Path, tmp_path: Path):
    out = tmp_path / "big.png"
    res = CliRunner().invoke(
        sm,
        [
            "sheet",
            "--model",
            str(tiny_model),
            "--label",
            "red",
            "--label",
            "green",
            "--count",
            str(COUNT),
            "--steps",
            "2",
            "--max-size",
            "128",
            "--no-dedupe",
            "--format",
            ALL_FORMATS,
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    pages = sorted(tmp_path.glob("big-*.png"))
    n_pages = len(pages)
    assert n_pages == -(-COUNT // (14 * 14))  # 8x8 sprites + 1 px padding: 14 x 14 per 128 px page
    assert not out.exists()
    names = set()
    for i in range(n_pages):  # per-page TexturePacker/Aseprite atlases, each naming its own page
        page = json.loads((tmp_path / f"big-{i}.json").read_text())
        assert page["meta"]["image"] == f"big-{i}.png" and len(page["meta"]["related_multi_packs"]) == n_pages - 1
        names |= set(page["frames"])
        assert (tmp_path / f"big-{i}.array.json").is_file() and (tmp_path / f"big-{i}.aseprite.json").is_file()
    assert len(names) == COUNT
    multi = json.loads((tmp_path / "big.multi.json").read_text())  # Phaser load.multiatlas
    assert [t["image"] for t in multi["textures"]] == [p.name for p in pages]
    assert sum(len(t["frames"]) for t in multi["textures"]) == COUNT
    assert len(multi["meta"]["animations"]["red"]) == COUNT // 2
    frame = multi["textures"][-1]["frames"][-1]["data"]["meta"]
    assert frame["batch_index"] == COUNT - 1 and frame["chunk_size"] == CHUNK_SIZE
    for atlas in ("big.tres", "big.godot4.tres", "big.atlas"):  # one file listing every page
        text = (tmp_path / atlas).read_text()
        assert all(p.name in text for p in pages), atlas
    assert (tmp_path / "big.tres").read_text().count("[sub_resource") == COUNT


def test_noise_parts_draw_what_each_chunk_draws_alone():
    from scarlet_moon.diffusion.noise import NoiseStream

    grouped = NoiseStream((7, 2, 3, 3), parts=((3, 11), (4, 12)))
    alone = [NoiseStream((3, 2, 3, 3), [(3, 11)]), NoiseStream((4, 2, 3, 3), [(4, 12)])]
    for i in range(3):  # the first draw and two later (DDPM) draws
        assert np.array_equal(grouped(i), np.concatenate([alone[0](i), alone[1](i)]))
    with pytest.raises(ValueError, match="do not add up"):
        NoiseStream((5, 1, 2, 2), parts=((3, 1), (3, 2)))


def test_grouped_chunks_give_the_same_sprites(tiny_model: Path):
    card = read_card(tiny_model)
    den = open_denoiser(card)
    req = Request.plan(card, ["red", "blue"], 10, seed=5, sampling=SamplingOptions(steps=3))
    one = generate_all(den, req, size=4)
    for group in (2, 3, 8):  # 3 chunks of 4, 4, 2 sprites: a partial group, one group, oversize
        assert np.array_equal(generate_all(den, req, size=4, batch=4 * group), one), group
    labels, parts = batch_of(req, [2, 0], size=4)  # any chunks, in any order, form a group
    assert tuple(labels) == req.labels[8:] + req.labels[:4]
    assert parts == [(2, chunk_seed(5, 2)), (4, chunk_seed(5, 0))]
    picked = dict(generate_chunks(den, req, [2, 0], size=4, batch=8))
    assert np.array_equal(picked[2], one[8:]) and np.array_equal(picked[0], one[:4])


def test_padded_compile_pads_small_batches_without_changing_rows(tiny_model: Path, monkeypatch):
    import torch

    from scarlet_moon.backends import BackendOptions, torch_fast
    from scarlet_moon.backends.torch_backend import load_torch_model

    seen = []

    class Recorder(torch.nn.Module):  # stands in for inductor: the padding logic is under test
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, t, y):
            seen.append(x.shape[0])
            return self.inner(x, t, y)

    monkeypatch.setattr(torch, "compile", lambda m, **kw: Recorder(m))
    net = load_torch_model(read_card(tiny_model))
    fast = torch_fast.accelerate(net, "cpu", compile=True)
    x, t, y = torch.randn(6, 4, 8, 8), torch.full((6,), 10.0), torch.tensor([0, 1, 2, 0, 1, 3])
    with torch.no_grad():
        full = fast(x, t, y)
        part = fast(x[:4], t[:4], y[:4])
    assert seen == [6, 6] and part.shape[0] == 4
    assert torch.allclose(part, full[:4], atol=1e-5)
    with pytest.raises(BadInput, match="fp16 needs device cuda"):
        BackendOptions(device="cpu", fp16=True).for_model(read_card(tiny_model))


def test_cli_batch_and_fast_flags(tiny_model: Path, tmp_path: Path):
    base = ["sample", "--model", str(tiny_model), "--label", "red", "--count", "300", "--steps", "2"]
    a = CliRunner().invoke(sm, [*base, "--out", str(tmp_path / "a")])
    b = CliRunner().invoke(sm, [*base, "--batch", "600", "--out", str(tmp_path / "b")])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    files = sorted((tmp_path / "a").glob("*.png"))
    assert len(files) == 300
    assert all(f.read_bytes() == (tmp_path / "b" / f.name).read_bytes() for f in files)
    res = CliRunner().invoke(sm, [*base, "--fp16", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "--fp16 needs --device cuda" in res.output
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------- finishing over worker processes
def _edited_request(card, count: int, **post):
    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.options import PostOptions

    init = np.zeros((8, 8, 4), np.uint8)
    init[2:6, 2:6] = (200, 40, 40, 255)
    mask = np.ones((8, 8), bool)
    mask[:2] = False  # the top rows are the init's, restored after finishing
    return Request.plan(
        card,
        ["red", "blue", "green"],
        count,
        seed=9,
        sampling=SamplingOptions(steps=2),
        post=PostOptions(**post),
        edit=Edit(init=init, mask=mask, strength=0.8),
    )


@pytest.mark.parametrize("post", [dict(), dict(colors=2, cleanup=True), dict(snap_palette=False, alpha_threshold=40)])
def test_finishing_in_worker_processes_gives_the_same_bytes(tiny_model: Path, post: dict):
    import multiprocessing

    from scarlet_moon.options import PostOptions

    card = read_card(tiny_model)
    den = open_denoiser(card)
    req = Request.plan(
        card, ["red", "blue", "green"], 23, seed=4, sampling=SamplingOptions(steps=2), post=PostOptions(**post)
    )
    one = generate_all(den, req, size=4)  # 6 chunks, finished here
    for workers in (2, 3, 99):  # more workers than chunks: one per chunk
        assert np.array_equal(generate_all(den, req, size=4, workers=workers), one), workers
    picked = list(generate_chunks(den, req, [5, 1, 3], size=4, batch=8, workers=2))
    assert [k for k, _ in picked] == [5, 1, 3]  # in the order asked, whatever finishes first
    assert all(np.array_equal(im, one[4 * k : 4 * k + len(im)]) for k, im in picked)
    edited = _edited_request(card, 10, **post)  # inpainting: kept pixels restored in the worker
    assert np.array_equal(generate_all(den, edited, size=4, workers=2), generate_all(den, edited, size=4))
    assert multiprocessing.active_children() == []  # every pool shut down


def test_a_generator_left_early_stops_its_workers(tiny_model: Path):
    import multiprocessing

    card = read_card(tiny_model)
    req = Request.plan(card, ["red"], 40, seed=1, sampling=SamplingOptions(steps=2))
    chunks = generate_chunks(open_denoiser(card), req, range(10), size=4, workers=2)
    k, first = next(chunks)
    assert k == 0 and first.shape == (4, 8, 8, 4) and multiprocessing.active_children()
    chunks.close()
    assert multiprocessing.active_children() == []


def test_a_finishing_worker_that_dies_is_one_error(tiny_model: Path, monkeypatch):
    import os

    from scarlet_moon.errors import RunFailed
    from scarlet_moon.generation import finish_pool

    if not __import__("sys").platform.startswith("linux"):
        pytest.skip("the dying finish is patched into this process: forked workers only")
    monkeypatch.setattr(finish_pool, "finish", lambda *a: os._exit(3))
    card = read_card(tiny_model)
    req = Request.plan(card, ["red"], 12, seed=1, sampling=SamplingOptions(steps=2))
    with pytest.raises(RunFailed, match="worker process finishing the sprites stopped"):
        generate_all(open_denoiser(card), req, size=4, workers=2)


def test_finishing_workers_are_checked_and_chosen(tiny_model: Path):
    from scarlet_moon.generation.finish_pool import auto_workers

    card = read_card(tiny_model)
    den = open_denoiser(card)
    req = Request.plan(card, ["red"], 8, seed=1, sampling=SamplingOptions(steps=2))
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(BadInput, match=r"jobs.*expected a whole number of processes >= 1"):
            generate_all(den, req, size=4, workers=bad)
    assert auto_workers("cpu", 400, cpus=16) == 1  # a CPU backend samples on every core
    assert auto_workers("cuda", 3, cpus=16) == 1  # too few chunks to pay for a pool
    assert auto_workers("cuda", 400, cpus=2) == 1
    assert auto_workers("cuda", 400, cpus=16) == 15  # one core left to the sampling process
    assert auto_workers("cuda:1", 400, cpus=64) == 16
    assert auto_workers("cuda", 6, cpus=16) == 6


def test_sm_sheet_jobs_finish_and_write_the_same_files(tiny_model: Path, tmp_path: Path):
    files = {}
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        out.mkdir()
        res = CliRunner().invoke(
            sm,
            [
                "sheet",
                "--model",
                str(tiny_model),
                "--label",
                "red",
                "--count",
                "600",
                "--steps",
                "2",
                "--colors",
                "3",
                "--out",
                str(out / "s.png"),
                "--jobs",
                jobs,
            ],
        )
        assert res.exit_code == 0, res.output
        files[jobs] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert files["1"] == files["2"] and len(files["1"]) >= 2
