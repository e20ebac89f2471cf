"""Chunked generation (scarlet_moon.generation.chunks): per-chunk seeds, independent chunks, large counts
through `sm sample` / `sm sheet` with several pages in every atlas format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import sm
from scarlet_moon.backends import open_denoiser, read_card
from scarlet_moon.errors import BadInput
from scarlet_moon.generation.chunks import (CHUNK_SIZE, batch_of, chunk_count, chunk_seed, generate_all,
                                            generate_chunks)
from scarlet_moon.generation.finish import finish
from scarlet_moon.generation.request import Request
from scarlet_moon.options import SamplingOptions

COUNT = CHUNK_SIZE + 44  # two chunks, the second one short


def test_chunk_seeds_depend_on_seed_and_index_only():
    assert chunk_seed(7, 0) == 7  # one chunk: the seed itself, as before chunking
    seeds = [chunk_seed(7, k) for k in range(50)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2 ** 53 for s in seeds)
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
    (k, alone), = generate_chunks(den, req, [1], size=4)
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
    res = CliRunner().invoke(sm, ["sheet", "--model", str(tiny_model), "--label", "red", "--label", "green",
                                  "--count", str(COUNT), "--steps", "2", "--max-size", "128", "--no-dedupe",
                                  "--format", ALL_FORMATS, "--out", str(out)])
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
