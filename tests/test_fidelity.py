"""The pixel-fidelity figures (scarlet_moon.eval.fidelity) and what `sm eval` reports of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from scarlet_moon.cli.main import sm
from scarlet_moon.data.neighbours import isolated_mask, speck_mask
from scarlet_moon.data.sprites import load_sprites, split_holdout
from scarlet_moon.eval.fidelity import fidelity


def test_isolated_and_speck_masks_on_a_drawn_case():
    im = np.zeros((1, 5, 5, 4), np.uint8)
    im[0, 0, 0] = (255, 0, 0, 255)  # alone: a speck, and isolated
    im[0, 2, 2] = im[0, 2, 3] = (0, 255, 0, 255)  # a same-coloured pair: a speck, not isolated
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
    res = CliRunner().invoke(
        sm,
        [
            "eval",
            "--model",
            str(tiny_model),
            "--count",
            "6",
            "--steps",
            "2",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert res.exit_code == 0, res.output
    fig = json.loads(out.read_text())
    assert "tinyset" in fig["data"]
    for key in ("isolated_rate", "speck_rate", "saturation", "luma"):
        assert set(fig["pixels"][key]) == {"candidates", "real", "held_out"}
    assert "isolated pixels" in res.stderr


def test_a_cards_post_defaults_apply_unless_the_request_says_otherwise(tiny_model: Path, tmp_path: Path):
    """A card's `post` (cleanup off, colour cap K) is what `sm sample` does by default; --cleanup and
    --colors still override it; a bad `post` table is a one-line error naming it."""
    import shutil

    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.models.card import read_checkpoint_card, write_card_entry
    from scarlet_moon.options import PostOptions

    model = Path(shutil.copy(tiny_model, tmp_path / "m.safetensors"))
    plain = read_checkpoint_card(model)
    assert plain.post_defaults()["cleanup"] is True
    write_card_entry(model, "post", {"cleanup": False, "colors": 3})
    card = read_checkpoint_card(model)
    assert card.post_defaults() == {"cleanup": False, "colors": 3}
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (6, *card.size, 4), dtype=np.uint8)  # the sampler's sprites, as uint8 RGBA
    assert np.array_equal(
        finish(card, PostOptions(), Edit(), raw), finish(plain, PostOptions(colors=3, cleanup=False), Edit(), raw)
    )
    assert np.array_equal(
        finish(card, PostOptions(cleanup=True, colors=5), Edit(), raw),
        finish(plain, PostOptions(colors=5, cleanup=True), Edit(), raw),
    )
    assert not np.array_equal(finish(card, PostOptions(), Edit(), raw), finish(plain, PostOptions(), Edit(), raw))

    runner = CliRunner()
    res = runner.invoke(sm, ["info", str(model), "--json"])
    assert json.loads(res.output)["post_defaults"] == {"cleanup": False, "colors": 3}
    for bad in ({"cleanup": "no"}, {"colors": 0}, {"colour": 3}, [1]):
        write_card_entry(model, "post", bad)
        res = runner.invoke(sm, ["sample", "--model", str(model), "--out", str(tmp_path / "o")])
        assert res.exit_code == 2 and "bad 'post'" in res.output and "Traceback" not in res.output, res.output


def test_choose_post_measures_the_variants_and_stores_the_winner(tiny_model: Path, tmp_path: Path):
    """`sm eval --choose-post`: every variant's FD/floor per seed on the same raw sprites, the default
    (cleanup on, the card's cap) first and kept unless a variant beats it on every seed; the choice is
    in the card and is what `sm sample` then does."""
    import shutil

    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.models.card import read_checkpoint_card
    from scarlet_moon.options import PostOptions

    model = Path(shutil.copy(tiny_model, tmp_path / "m.safetensors"))
    out = tmp_path / "post.json"
    res = CliRunner().invoke(
        sm,
        [
            "eval",
            "--model",
            str(model),
            "--choose-post",
            "--seeds",
            "0,1",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    rows = result["variants"]
    p90 = read_checkpoint_card(tiny_model).meta["colors_per_sprite"]["p90"]
    assert (rows[0]["cleanup"], rows[0]["colors"]) == (True, p90)
    assert {(r["cleanup"], r["colors"]) for r in rows} >= {(True, p90), (False, p90)}
    assert all(len(r["fd_over_floor"]) == 2 and all(v > 0 for v in r["fd_over_floor"]) for r in rows)
    beats = [r for r in rows[1:] if all(a < b for a, b in zip(r["fd_over_floor"], rows[0]["fd_over_floor"]))]
    expected = min(beats, key=lambda r: r["mean_fd_over_floor"]) if beats else rows[0]
    assert result["chosen"] == {"cleanup": expected["cleanup"], "colors": expected["colors"]}
    assert result["changed"] == bool(beats)
    card = read_checkpoint_card(model)
    assert card.post_defaults() == result["chosen"] and "post_choice" in card.meta["post"]["source"]
    raw = np.random.default_rng(1).integers(0, 256, (4, *card.size, 4), dtype=np.uint8)
    assert np.array_equal(
        finish(card, PostOptions(), Edit(), raw),
        finish(card, PostOptions(colors=expected["colors"], cleanup=expected["cleanup"]), Edit(), raw),
    )


def test_choose_post_refuses_what_it_cannot_do(tiny_model: Path, tmp_path: Path):
    runner = CliRunner()
    for args, needle in (
        (["--model", str(tiny_model), "--choose-post", "--real"], "--choose-post with --real"),
        (["--model", str(tiny_model), "--choose-post", "--seeds", "a,b"], "--seeds 'a,b'"),
        (["--choose-post"], "bundled model"),
        (["--model", "bundled-32", "--choose-post"], "bundled model 'bundled-32'"),
        (["--model", str(tiny_model), "--seeds", "0,1"], "applies with --choose-post only"),
    ):
        res = runner.invoke(sm, ["eval", *args, "--out", str(tmp_path / "x.json")])
        assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
        assert not (tmp_path / "x.json").exists()


def _textured(rng: np.random.Generator, n: int, jitter: int) -> np.ndarray:
    """n opaque 16x16 sprites of one colour per sprite, each pixel moved by up to `jitter` per channel."""
    base = rng.integers(60, 196, (n, 1, 1, 3))
    rgb = np.clip(base + rng.integers(-jitter, jitter + 1, (n, 16, 16, 3)), 0, 255)
    return np.concatenate([rgb, np.full((n, 16, 16, 1), 255)], -1).astype(np.uint8)


def test_the_finishing_a_run_chooses_keeps_its_sets_texture(tiny_model: Path):
    """texture_post: where the training sprites are textured with near-duplicate shades (every pixel its
    own), the clean-up would flatten the model's sprites far below the set's isolated-pixel rate, so it
    is off; where the set is flat and the model speckles a little, it is on. The card's table is valid."""
    from scarlet_moon.eval.fidelity import fidelity
    from scarlet_moon.eval.post_choice import texture_post
    from scarlet_moon.models.card import read_checkpoint_card
    from scarlet_moon.models.card_check import check_card_meta

    card = read_checkpoint_card(tiny_model)
    card = type(card)(card.path, {**card.meta, "palette": None, "colors_per_sprite": None})  # no cap: clean-up only
    rng = np.random.default_rng(0)
    textured = _textured(rng, 32, 6)
    assert fidelity(textured)["isolated_rate"] > 0.5
    post = texture_post(card, _textured(rng, 16, 6), textured)
    assert post["cleanup"] is False and "training set" in post["source"]

    flat = _textured(rng, 32, 0)
    assert fidelity(flat)["isolated_rate"] == 0
    speckled = _textured(rng, 16, 0)
    speckled[:, 3:13:4, 3:13:4, :3] += 5  # a few stray near-duplicate shades
    assert fidelity(speckled)["isolated_rate"] > 0
    assert texture_post(card, speckled, flat)["cleanup"] is True
    check_card_meta({**card.meta, "post": post}, "a card")


def test_the_clean_up_goes_off_only_when_that_is_clearly_nearer_the_sets_texture():
    """cleanup_for on measured rates: a tie keeps the clean-up (the bundled model: FD prefers it there),
    Minetest's runs drop it, a run noisier than its set keeps it, a set with no isolated pixels too."""
    from scarlet_moon.eval.post_choice import cleanup_for

    assert cleanup_for(0.152, 0.237, 0.191) is True  # bundled-25 on its set: a tie
    assert cleanup_for(0.228, 0.363, 0.435) is False  # a minetest fine-tune, 10 minutes
    assert cleanup_for(0.252, 0.397, 0.435) is False  # minetest scratch, 30 minutes
    assert cleanup_for(0.469, 0.640, 0.435) is True  # minetest scratch, 10 minutes: noisier than the set
    assert cleanup_for(0.0, 0.05, 0.0) is True
    assert cleanup_for(0.10, 0.19, 0.20) is False and cleanup_for(0.17, 0.19, 0.20) is True  # the margin
