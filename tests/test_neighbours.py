"""The clean-up of generated sprites (data.neighbours): noise shades merge, drawn details stay, detached
specks go, and `sm sample --no-cleanup` / `cleanup=False` turn it off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

import scarlet_moon
from scarlet_moon.cli.main import sm
from scarlet_moon.data.neighbours import clean_isolated, despeckle, isolated_mask, speck_mask
from scarlet_moon.data.pixels import postprocess

BODY = (120, 40, 40, 255)


def body(n: int = 1) -> np.ndarray:
    """n 8x8 sprites: a 4x4 opaque block at (2..5, 2..5) on transparency."""
    im = np.zeros((n, 8, 8, 4), np.uint8)
    im[:, 2:6, 2:6] = BODY
    return im


def test_a_near_duplicate_shade_merges_into_its_neighbour():
    im = body()
    im[0, 3, 3, :3] = (126, 44, 42)  # a few Lab units from the body: noise
    out = clean_isolated(im)
    assert tuple(out[0, 3, 3]) == BODY
    assert not isolated_mask(out).any()
    assert (out[..., 3] == im[..., 3]).all()  # alpha untouched


def test_a_drawn_detail_stays():
    im = body()
    im[0, 3, 3, :3] = (255, 255, 255)  # an eye: far from every neighbour
    im[0, 4, 4, :3] = (250, 220, 30)  # a spark
    out = clean_isolated(im)
    assert (out == im).all()


def test_the_threshold_is_the_parameter():
    im = body()
    im[0, 3, 3, :3] = (150, 40, 40)
    assert (clean_isolated(im, tau=1.0) == im).all()
    assert tuple(clean_isolated(im, tau=60.0)[0, 3, 3]) == BODY


def test_detached_specks_go_and_the_body_stays():
    im = body()
    im[0, 0, 7] = (200, 200, 200, 255)  # a lone dot
    im[0, 7, 0] = im[0, 7, 1] = (90, 90, 200, 255)  # a detached pair
    out = despeckle(im)
    assert out[0, 0, 7, 3] == 0 and out[0, 7, 0, 3] == 0 and out[0, 7, 1, 3] == 0
    assert (out[0, 2:6, 2:6] == BODY).all()
    assert not speck_mask(out).any()


def test_despeckle_never_empties_a_sprite():
    im = np.zeros((2, 8, 8, 4), np.uint8)
    im[0, 4, 4] = (255, 0, 0, 255)  # the whole sprite is one dot
    im[1] = body()[0]
    im[1, 0, 0] = (255, 0, 0, 255)
    out = despeckle(im)
    assert out[0, 4, 4, 3] == 255
    assert out[1, 0, 0, 3] == 0


def test_postprocess_runs_cleanup_only_when_asked():
    im = body()
    im[0, 3, 3, :3] = (126, 44, 42)
    im[0, 0, 7] = (200, 200, 200, 255)
    assert (postprocess(im, cleanup=False) == im).all()
    out = postprocess(im, cleanup=True)
    assert not isolated_mask(out).any() and not speck_mask(out).any()


def test_api_and_cli_share_the_cleanup_switch(tiny_model: Path, tmp_path: Path):
    common = dict(label=0, count=16, seed=4, sampling=scarlet_moon.SamplingOptions(steps=4))
    on = np.stack([np.asarray(im.convert("RGBA")) for im in scarlet_moon.generate(tiny_model, **common)])
    off = np.stack(
        [
            np.asarray(im.convert("RGBA"))
            for im in scarlet_moon.generate(tiny_model, post=scarlet_moon.PostOptions(cleanup=False), **common)
        ]
    )
    assert (on != off).any() and speck_mask(on).sum() <= speck_mask(off).sum()
    res = CliRunner().invoke(
        sm,
        [
            "sample",
            "--model",
            str(tiny_model),
            "--label",
            "0",
            "--count",
            "16",
            "--seed",
            "4",
            "--steps",
            "4",
            "--no-cleanup",
            "--out",
            str(tmp_path / "png"),
        ],
    )
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "png").rglob("*.png"), key=lambda p: p.name)
    assert len(files) == 16
    cli = np.stack([np.asarray(Image.open(f).convert("RGBA")) for f in files])
    assert {a.tobytes() for a in cli} == {a.tobytes() for a in off}


def _palette_noise(seed: int, n: int, size: int, colours: int) -> np.ndarray:
    """Sprites of a few colours each (ties between neighbours' distances are common) with holes."""
    rng = np.random.default_rng(seed)
    pal = rng.integers(0, 256, (colours, 4), dtype=np.uint8)
    pal[:, 3] = rng.choice([0, 90, 200, 255], colours)
    return pal[rng.integers(0, colours, (n, size, size))]


def test_clean_isolated_is_the_whole_image_version_byte_for_byte():
    import pixels_reference as ref
    from conftest import request, sprites_of

    from scarlet_moon.backends import read_card

    card = read_card(None)  # the bundled model's own sprites before clean-up: what it meets in use
    raw = sprites_of(card, request(tuple(range(6)) * 8, seed=3), backend="onnx")
    model = postprocess(raw, palette=card.palette, colors=card.post_defaults()["colors"])
    cases = [
        _palette_noise(s, n, size, k)
        for s, (n, size, k) in enumerate([(64, 8, 3), (50, 16, 6), (9, 5, 2), (3, 1, 2), (20, 16, 40), (4, 32, 12)])
    ]
    noisy = np.random.default_rng(5).integers(0, 256, (40, 16, 16, 4), dtype=np.uint8)
    for im in [model, *cases, noisy, body(3)]:
        for tau in (20.0, 0.0, 60.0):
            assert np.array_equal(clean_isolated(im, tau), ref.clean_isolated(im, tau)), (im.shape, tau)
    assert not np.array_equal(clean_isolated(model), model)  # the bundled sprites do get cleaned
