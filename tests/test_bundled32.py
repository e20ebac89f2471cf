"""The bundled 32x32 set (angband32) and model (`bundled-32`): loaded by name everywhere a set or a
model is taken, credited in every sheet it makes, and its ONNX export kept in the cache."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scarlet_moon.cli.main import sm
from scarlet_moon.data.sprites import ATTRIBUTION, BUNDLED_SETS, load_sprites
from scarlet_moon.models.card import BUNDLED_MODELS, bundled_onnx_path, read_checkpoint_card

SET32 = BUNDLED_SETS["bundled:angband32"][0]
MODEL32 = BUNDLED_MODELS["bundled-32"]
LABELS = ["creature", "item", "consumable", "spell", "terrain", "hero"]


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(sm, list(args), env=env)


def one_line(res) -> str:
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    """A private cache: where `sm export-onnx --model bundled-32` writes and the onnx backend looks."""
    d = tmp_path / "cache"
    monkeypatch.setenv("SCARLET_MOON_CACHE", str(d))
    return d


def test_the_32x32_set_loads_by_name_with_its_labels_and_crisp_alpha():
    ds = load_sprites("bundled-32")
    assert ds.source == "bundled:angband32" and ds.size == (32, 32)
    assert list(ds.label_names) == LABELS
    counts = ds.counts()
    assert len(ds.images) == sum(counts.values()) >= 1000 and min(counts.values()) >= 50, counts
    assert set(np.unique(ds.images[..., 3])) == {0, 255}  # real, crisp transparency
    assert not ds.images[ds.images[..., 3] == 0][:, :3].any()  # transparent pixels are RGBA 0
    assert load_sprites("bundled:angband32").fingerprint() == ds.fingerprint()
    assert load_sprites(SET32 / "labels.csv", tile=32).fingerprint() == ds.fingerprint()  # a plain tileset+CSV
    rows = list(csv.DictReader((SET32 / "labels.csv").open()))
    assert len(rows) == len(ds.images) and {"src_row", "src_col", "name"} <= set(rows[0])


def test_the_set_ships_its_licence_and_attribution():
    readme = (SET32 / "README.md").read_text()
    for needle in (
        "David Gervais",
        "CC BY 3.0",
        "creativecommons.org/licenses/by/3.0",
        "angband-data",
        "tools/make_angband32.py",
    ):
        assert needle in readme, needle
    assert "Gervais" in Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    assert "CC BY 3.0" in ATTRIBUTION["bundled:angband32"] and "Gervais" in ATTRIBUTION["bundled:angband32"]
    assert (SET32 / "tiles.png").stat().st_size < 1_000_000  # only the labelled cells, packed


def test_a_folder_called_bundled_32_is_the_users_data(tmp_path: Path, monkeypatch):
    (tmp_path / "bundled-32" / "a").mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 4), 255, np.uint8), "RGBA").save(tmp_path / "bundled-32" / "a" / "x.png")
    monkeypatch.chdir(tmp_path)
    ds = load_sprites("bundled-32")
    assert ds.size == (8, 8) and ds.source == "bundled-32"


def test_the_32x32_model_is_named_bundled_32_everywhere():
    card = read_checkpoint_card("bundled-32")
    assert card.path == MODEL32 and card.size == (32, 32) and card.label_names == LABELS
    assert card.meta["data_source"] == "bundled:angband32"
    assert card.config["channel_mult"] == [1, 2, 4, 4]  # one level deeper than 16x16
    res = invoke("labels", "--model", "bundled-32")
    assert res.exit_code == 0 and res.output.split() == [t for i, n in enumerate(LABELS) for t in (str(i), n)]
    info = invoke("info", "bundled-32", "--json")
    assert info.exit_code == 0 and json.loads(info.output)["size"] == "32x32"
    import scarlet_moon

    sprites = scarlet_moon.generate(
        "bundled-32", label="hero", count=2, seed=3, sampling=scarlet_moon.SamplingOptions(steps=2)
    )
    assert [np.asarray(s).shape for s in sprites] == [(32, 32, 4)] * 2
    # its post-processing defaults: bench/results/fidelity32.md (cleanup raised FD on every seed, cap 12 lowest)
    assert card.post_defaults() == {"cleanup": False, "colors": 12}
    chosen = scarlet_moon.generate(
        "bundled-32",
        label="hero",
        count=2,
        seed=3,
        sampling=scarlet_moon.SamplingOptions(steps=2),
        post=scarlet_moon.PostOptions(cleanup=False, colors=12),
    )
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(sprites, chosen))


def test_sheet_of_bundled_32_has_32x32_frames_and_credits_the_artist(tmp_path: Path):
    out = tmp_path / "hero32.png"
    res = invoke(
        "sheet",
        "--model",
        "bundled-32",
        "--label",
        "hero",
        "--count",
        "6",
        "--steps",
        "3",
        "--out",
        str(out),
        "--format",
        "json-hash,godot3,aseprite",
    )
    assert res.exit_code == 0, res.output
    atlas = json.loads(out.with_suffix(".json").read_text())
    assert len(atlas["frames"]) == 6 and {(f["frame"]["w"], f["frame"]["h"]) for f in atlas["frames"].values()} == {
        (32, 32)
    }
    assert atlas["meta"]["attribution"] == ATTRIBUTION["bundled:angband32"]
    ase = json.loads(out.with_name("hero32.aseprite.json").read_text())
    assert ase["meta"]["attribution"] == ATTRIBUTION["bundled:angband32"]


def test_a_sheet_from_the_users_own_model_or_folder_owes_no_credit(tmp_path: Path, tiny_model: Path):
    out = tmp_path / "mine.png"
    res = invoke("sheet", "--model", str(tiny_model), "--count", "2", "--steps", "2", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "attribution" not in json.loads(out.with_suffix(".json").read_text())["meta"]


def test_backend_onnx_with_bundled_32_names_the_export_step_then_uses_the_cache(tmp_path: Path, cache: Path):
    args = [
        "sheet",
        "--model",
        "bundled-32",
        "--backend",
        "onnx",
        "--label",
        "hero",
        "--count",
        "4",
        "--steps",
        "3",
        "--seed",
        "5",
    ]
    env = {"SCARLET_MOON_CACHE": str(cache)}
    res = invoke(*args, "--out", str(tmp_path / "a.png"), env=env)
    assert res.exit_code == 2 and "sm export-onnx --model bundled-32" in one_line(res)
    assert not (tmp_path / "a.png").exists()
    exp = invoke("export-onnx", "--model", "bundled-32", env=env)
    assert exp.exit_code == 0, exp.output
    onnx_path = bundled_onnx_path(MODEL32)
    assert onnx_path is not None and onnx_path.parent == cache / "onnx" and onnx_path.is_file()
    res = invoke(*args, "--out", str(tmp_path / "a.png"), env=env)
    assert res.exit_code == 0, res.output
    torch_run = invoke(*args[:3], *args[5:], "--out", str(tmp_path / "b.png"))
    assert torch_run.exit_code == 0, torch_run.output
    a, b = (np.asarray(Image.open(tmp_path / f"{n}.png").convert("RGBA")) for n in "ab")
    assert a.shape == b.shape and (a == b).all(-1).mean() > 0.99  # onnxruntime vs torch: the same sprites


def test_export_onnx_needs_out_for_any_other_model(tiny_model: Path):
    res = invoke("export-onnx", "--model", str(tiny_model))
    assert res.exit_code == 2 and "--out is required" in one_line(res)


def test_a_missing_bundled_32_model_is_one_line(monkeypatch, tmp_path: Path):
    import scarlet_moon.models.card as card_mod

    monkeypatch.setitem(card_mod.BUNDLED_MODELS, "bundled-32", tmp_path / "gone" / "model.safetensors")
    res = invoke("sample", "--model", "bundled-32", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "bundled model 'bundled-32' is missing" in one_line(res)


def test_fine_tuning_from_bundled_32_refuses_a_16x16_set(tmp_path: Path):
    res = invoke(
        "train", "--init-from", "bundled-32", "--steps", "1", "--tracking", "none", "--runs-dir", str(tmp_path / "runs")
    )
    assert res.exit_code == 2 and "32x32" in one_line(res) and "16x16" in one_line(res)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.skipif(os.environ.get("SM_SKIP_STUDIO") == "1", reason="studio extra not installed")
def test_the_studio_offers_bundled_32(tmp_path: Path):
    pytest.importorskip("starlette")
    from scarlet_moon.studio.models import ModelShelf

    refs = {r.id: r for r in ModelShelf(None, tmp_path).refs()}
    assert refs["bundled-32"].source == "bundled-32" and refs["bundled-32"].path == MODEL32
    shelf = ModelShelf(None, tmp_path)
    assert shelf.card(shelf.ref("bundled-32")).size == (32, 32)
