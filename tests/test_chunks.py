"""Chunked generation (scarlet_moon.chunks): per-chunk seeds, independent chunks, large counts
through `sm sample` / `sm sheet` with several pages in every atlas format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import sm
from scarlet_moon.card import read_card
from scarlet_moon.chunks import CHUNK_SIZE, chunk_count, chunk_request, chunk_seed, generate_all, generate_chunks
from scarlet_moon.errors import BadInput
from scarlet_moon.generation import Request, finish, plan_labels, sample_array

COUNT = CHUNK_SIZE + 44  # two chunks, the second one short


def test_chunk_seeds_depend_on_seed_and_index_only():
    assert chunk_seed(7, 0) == 7  # one chunk: the seed itself, as before chunking
    seeds = [chunk_seed(7, k) for k in range(50)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2 ** 53 for s in seeds)
    assert seeds == [chunk_seed(7, k) for k in range(50)]
    assert chunk_seed(8, 3) != chunk_seed(7, 3)
    assert chunk_seed(7, 3) == int(np.random.SeedSequence(7).spawn(4)[3].generate_state(1, np.uint64)[0]) >> 11
    with pytest.raises(BadInput, match="--seed -1"):
        chunk_seed(-1, 0)
    assert chunk_count(1) == 1 and chunk_count(CHUNK_SIZE) == 1 and chunk_count(COUNT) == 2


def test_chunk_request_slices_labels_and_reseeds():
    req = Request(labels=tuple(range(10)), seed=3)
    sub = chunk_request(req, 2, size=4)
    assert sub.labels == (8, 9) and sub.seed == chunk_seed(3, 2) and sub.steps is None
    with pytest.raises(ValueError):
        chunk_request(req, 3, size=4)


def test_any_chunk_alone_gives_the_same_sprites(tiny_model: Path):
    card = read_card(tiny_model)
    req = Request(plan_labels(card, ["red", "blue"], 10), seed=5, steps=3)
    calls = []
    everything = generate_all(card, req, size=4, progress=lambda done, total: calls.append((done, total)))
    assert everything.shape == (10, 8, 8, 4) and everything.dtype == np.uint8
    assert calls[-1] == (10, 10) and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    (k, alone), = generate_chunks(card, req, [1], size=4)
    assert k == 1 and np.array_equal(alone, everything[4:8])
    # up to one chunk: exactly the unchunked sampling with the user's seed
    small = dataclasses.replace(req, labels=req.labels[:4])
    assert np.array_equal(generate_all(card, small, size=4), finish(card, small, sample_array(card, small)))


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
