"""Device post-processing (scarlet_moon.data.pixels_torch) equals the numpy post-processing byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scarlet_moon.data import pixels, pixels_torch
from scarlet_moon.data.colour import srgb_to_lab
from scarlet_moon.errors import BadInput


def raw_batch(rng: np.random.Generator, n: int, colours: int | None = None) -> np.ndarray:
    """Raw samples: alpha spread over 0..255 (so the threshold matters); with `colours`, RGB drawn from
    that many colours (sprites share colours, as sampled ones do), else from the whole cube."""
    x = rng.integers(0, 256, (n, 16, 16, 4), dtype=np.uint8)
    if colours is not None:
        x[..., :3] = rng.integers(0, 256, (colours, 3), dtype=np.uint8)[rng.integers(0, colours, (n, 16, 16))]
    return x


def test_crisp_alpha_is_numpy_s():
    rng = np.random.default_rng(0)
    for threshold in (1, 2, 128, 254, 255):
        raw = raw_batch(rng, 20)
        assert np.array_equal(
            pixels_torch.crisp_alpha(torch.from_numpy(raw), threshold).numpy(), pixels.crisp_alpha(raw, threshold)
        )
    with pytest.raises(BadInput, match="bad alpha threshold 0"):
        pixels_torch.crisp_alpha(torch.from_numpy(raw), 0)


def test_device_lab_is_within_the_tie_bound_of_numpy_s():
    """The bound the exactness argument needs: device Lab vs numpy Lab on 2^18 colours (the whole cube's
    figure is in bench/postprocess.py --lab-check)."""
    rgb = np.random.default_rng(1).integers(0, 256, (1 << 18, 3), dtype=np.uint8)
    diff = np.abs(pixels_torch.srgb_to_lab(torch.from_numpy(rgb)).numpy() - srgb_to_lab(rgb)).max()
    assert diff < 1e-10


@pytest.mark.parametrize("space", ["lab", "rgb"])
def test_palette_snap_is_numpy_s_on_many_random_batches(space, monkeypatch):
    """Random raw batches against random palettes (1 to 64 colours; repeated entries force exact ties,
    RGB's integer distances give many more): the same bytes as numpy's postprocess."""
    rng = np.random.default_rng(2)
    host_lookups = []
    real = pixels_torch._nearest
    monkeypatch.setattr(pixels_torch, "_nearest", lambda x, t: host_lookups.append(len(x)) or real(x, t))
    for trial in range(60):
        k = int(rng.integers(1, 65))
        pal = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        if trial % 3 == 0:
            pal = np.concatenate([pal, pal[: max(1, k // 2)]])  # duplicates: ties on purpose
        raw = raw_batch(rng, int(rng.integers(1, 40)), None if trial % 2 else int(rng.integers(1, 200)))
        want = pixels.quantize_to_palette(pixels.crisp_alpha(raw, 128), pal, space=space)
        got = pixels_torch.quantize_to_palette(pixels_torch.crisp_alpha(torch.from_numpy(raw)), pal, space=space)
        assert np.array_equal(got.numpy(), want), trial
    assert len(host_lookups) > 10  # the tie path ran


def test_postprocess_matches_pixels_postprocess_without_cap_and_cleanup():
    rng = np.random.default_rng(3)
    pal = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    raw = raw_batch(rng, 30, 50)
    assert np.array_equal(
        pixels_torch.postprocess(torch.from_numpy(raw), alpha_threshold=100, palette=pal).numpy(),
        pixels.postprocess(raw, alpha_threshold=100, palette=pal, colors=None, cleanup=False),
    )
    assert np.array_equal(pixels_torch.postprocess(torch.from_numpy(raw)).numpy(), pixels.crisp_alpha(raw))
    empty = np.zeros((2, 16, 16, 4), np.uint8)  # nothing opaque: unchanged
    assert np.array_equal(pixels_torch.quantize_to_palette(torch.from_numpy(empty), pal).numpy(), empty)


def test_bundled_model_samples_snap_the_same(tmp_path):
    """Raw sprites of the bundled model (torch backend, all labels, 8 steps), snapped to its palette: byte for byte."""
    from scarlet_moon.backends import open_denoiser, read_card
    from scarlet_moon.generation.chunks import generate_all
    from scarlet_moon.generation.request import Request
    from scarlet_moon.options import SamplingOptions

    card = read_card(None)
    labels = [k for k in range(len(card.label_names)) for _ in range(4)]
    req = Request(tuple(labels), seed=0, sampling=SamplingOptions(None, 8, None))
    raw = generate_all(open_denoiser(card, backend="torch", device="cpu"), req, raw=True)
    assert raw.shape[1:] == (16, 16, 4) and len(np.unique(raw[..., :3].reshape(-1, 3), axis=0)) > 100
    want = pixels.postprocess(raw, palette=card.palette, colors=None, cleanup=False)
    got = pixels_torch.postprocess(torch.from_numpy(raw), palette=card.palette).numpy()
    assert np.array_equal(got, want)
    assert not np.array_equal(want, pixels.crisp_alpha(raw))  # the snap changed colours


def test_bad_input_is_one_line():
    with pytest.raises(BadInput, match="expected a uint8 tensor N x H x W x 4"):
        pixels_torch.crisp_alpha(torch.zeros(2, 16, 16, 3, dtype=torch.uint8))
    with pytest.raises(BadInput, match="a palette must be K x 3"):
        pixels_torch.quantize_to_palette(torch.zeros(1, 2, 2, 4, dtype=torch.uint8), np.zeros((0, 3), np.uint8))
