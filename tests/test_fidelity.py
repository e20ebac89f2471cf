"""The pixel-fidelity figures (scarlet_moon.eval.fidelity) and what `sm eval` reports of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from cli.main import sm
from scarlet_moon.data.sprites import load_sprites, split_holdout
from scarlet_moon.data.neighbours import isolated_mask, speck_mask
from scarlet_moon.eval.fidelity import fidelity


def test_isolated_and_speck_masks_on_a_drawn_case():
    im = np.zeros((1, 5, 5, 4), np.uint8)
    im[0, 0, 0] = (255, 0, 0, 255)                                  # alone: a speck, and isolated
    im[0, 2, 2] = im[0, 2, 3] = (0, 255, 0, 255)                    # a same-coloured pair: a speck, not isolated
    im[0, 4, 0], im[0, 4, 1], im[0, 4, 2] = (9, 9, 9, 255), (8, 8, 8, 255), (8, 8, 8, 255)  # three: no speck
    assert [tuple(p) for p in np.argwhere(isolated_mask(im)[0])] == [(0, 0), (4, 0)]
    assert [tuple(p) for p in np.argwhere(speck_mask(im)[0])] == [(0, 0), (2, 2), (2, 3)]
    f = fidelity(im)
    assert f["isolated_rate"] == 2 / 6 and f["speck_rate"] == 3 / 6 and f["colours"] == 4


def test_a_transparent_neighbour_never_shares_a_colour():
    im = np.zeros((1, 3, 3, 4), np.uint8)
    im[0, 1, 1] = (0, 0, 0, 255)  # black on a transparent background (whose RGB is black too)
    assert isolated_mask(im)[0, 1, 1] and speck_mask(im)[0, 1, 1]


def test_saturation_and_luma():
    im = np.zeros((1, 1, 2, 4), np.uint8)
    im[0, 0, 0], im[0, 0, 1] = (255, 0, 0, 255), (128, 128, 128, 255)
    f = fidelity(im)
    assert f["saturation"] == 0.5 and abs(f["luma"] - (0.299 + 128 / 255) / 2) < 1e-9


def test_real_sprites_of_the_bundled_set():
    """What the real sprites measure: the floor generated ones are held to."""
    train, held = split_holdout(load_sprites(None), 0.2, 0)
    for f in (fidelity(train.images), fidelity(held.images)):
        assert 0.15 < f["isolated_rate"] < 0.22 and f["speck_rate"] < 0.003 and 0.25 < f["saturation"] < 0.35


def test_eval_reports_fidelity_and_takes_the_models_own_data(tiny_model: Path, tmp_path: Path):
    """No --data: the set the card records (the tiny model's own), loaded as it was."""
    out = tmp_path / "m.json"
    res = CliRunner().invoke(sm, ["eval", "--model", str(tiny_model), "--count", "6", "--steps", "2",
                                  "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    fig = json.loads(out.read_text())
    assert "tinyset" in fig["data"]
    for key in ("isolated_rate", "speck_rate", "saturation", "luma"):
        assert set(fig["pixels"][key]) == {"candidates", "real", "held_out"}
    assert "isolated pixels" in res.stderr
