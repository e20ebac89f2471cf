"""Eval metric functions on synthetic data with known answers, and the eval classifier."""

from __future__ import annotations

import numpy as np
import pytest

from scarlet_moon.data.sprites import SpriteSet, split_holdout
from scarlet_moon.errors import BadInput
from scarlet_moon.eval.metrics import (
    alpha_crispness,
    colors_per_sprite,
    copy_share,
    frechet_distance,
    nearest_distances,
    spread_labels,
)


def feats(n: int = 400, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)


def test_fd_of_a_set_with_itself_is_zero():
    a = feats()
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_a_shifted_copy_is_the_squared_shift_and_grows():
    a = feats()
    shifts = [0.1, 0.5, 1.0, 2.0]
    fds = [frechet_distance(a, a + s) for s in shifts]
    # same covariance: FD = |mean shift|^2 exactly
    assert fds == pytest.approx([a.shape[1] * s * s for s in shifts], rel=1e-6, abs=1e-6)
    assert fds == sorted(fds)


def test_fd_closed_form_for_a_scaled_set():
    # b = 2a: Sb = 4 Sa, (Sa Sb)^1/2 = 2 Sa  ->  FD = |mu_a|^2 + tr(Sa)
    a = feats(d=5, seed=3)
    want = float((a.mean(0) ** 2).sum() + np.trace(np.cov(a, rowvar=False)))
    assert frechet_distance(a, 2 * a) == pytest.approx(want, rel=1e-6)


def test_fd_is_symmetric_and_handles_rank_deficient_features():
    a, b = feats(seed=1), feats(seed=2)
    a[:, 0] = 0.0  # a dead ReLU unit: singular covariance
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    assert np.isfinite(frechet_distance(a, b))
    with pytest.raises(BadInput):
        frechet_distance(a[:1], b)


def sprites(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    im = rng.integers(0, 256, (n, 8, 8, 4), dtype=np.uint8)
    im[..., 3] = np.where(im[..., 3] > 127, 255, 0)
    return im


def test_copies_detect_an_exact_duplicate_and_not_a_distinct_sprite():
    train = sprites(20, 0)
    dup = train[7:8].copy()
    near = train[3:4].copy()
    near[0, 0, 0, 0] ^= 0xFF  # one channel of one pixel changed: still a copy
    distinct = sprites(1, 99)
    cand = np.concatenate([dup, near, distinct])
    d = nearest_distances(cand, train)
    assert d[0] == 0.0
    assert 0 < d[1] <= 255 / (8 * 8 * 4) + 1e-12
    assert d[2] > 20
    res = copy_share(cand, train, threshold=2.0)
    assert res["copies"] == 2 and res["share"] == pytest.approx(2 / 3) and res["threshold"] == 2.0


def test_nearest_distance_is_the_mean_abs_difference():
    a = np.zeros((1, 2, 2, 4), np.uint8)
    b = np.zeros((2, 2, 2, 4), np.uint8)
    b[0] = 16  # mean |diff| 16
    b[1, 0, 0] = 255  # one pixel, 4 channels: 4 * 255 / 16 = 63.75
    assert nearest_distances(a, b)[0] == pytest.approx(16.0)
    assert nearest_distances(a, b[1:])[0] == pytest.approx(63.75)


def test_colours_per_sprite_counts_opaque_colours_only():
    im = np.zeros((3, 4, 4, 4), np.uint8)
    im[0, 0, 0] = (255, 0, 0, 255)
    im[0, 0, 1] = (255, 0, 0, 255)  # same colour again
    im[0, 1, 1] = (0, 0, 0, 255)  # opaque black counts
    im[0, 2, 2] = (0, 255, 0, 0)  # transparent: ignored
    im[1] = (1, 2, 3, 128)  # partial alpha is opaque; one colour
    im[1, 3, 3] = (1, 2, 4, 255)
    # im[2] is fully transparent: zero colours
    assert colors_per_sprite(im).tolist() == [2, 2, 0]


def test_alpha_crispness_is_the_share_of_0_or_255():
    im = np.zeros((2, 2, 2, 4), np.uint8)
    im[0, ..., 3] = [[0, 255], [128, 1]]
    im[1, ..., 3] = [[255, 255], [254, 0]]
    assert alpha_crispness(im) == pytest.approx(5 / 8)
    assert alpha_crispness(im[..., :3]) == 1.0


def test_spread_labels_is_proportional_and_exact():
    assert spread_labels([514, 184, 53, 75, 56, 81], 600) == [320, 115, 33, 47, 35, 50]
    assert sum(spread_labels([514, 184, 53, 75, 56, 81], 601)) == 601
    assert spread_labels([100, 1, 1], 6) == [4, 1, 1]  # every label at least once when possible
    assert spread_labels([100, 1, 1], 2) == [2, 0, 0]
    assert spread_labels([1, 0, 1], 4) == [2, 0, 2]


# ---------------------------------------------------------------- classifier
def easy_set(n: int = 90, size: int = 8) -> SpriteSet:
    """Label k = a blob whose colour is mostly channel k; position and brightness vary."""
    rng = np.random.default_rng(0)
    im = np.zeros((n, size, size, 4), np.uint8)
    labels = np.arange(n) % 3
    for i, k in enumerate(labels):
        y, x = rng.integers(0, size // 2, 2)
        colour = rng.integers(0, 60, 3)
        colour[k] = rng.integers(160, 256)
        im[i, y : y + size // 2, x : x + size // 2, :3] = colour
        im[i, y : y + size // 2, x : x + size // 2, 3] = 255
    return SpriteSet(im, labels.astype(np.int64), ("red", "green", "blue"), "easy")


def test_classifier_is_deterministic_and_accurate_on_an_easy_set():
    from scarlet_moon.eval.classifier import train_classifier

    train, held = split_holdout(easy_set(), 0.2, 0)
    a = train_classifier(train, held, epochs=12)
    b = train_classifier(train, held, epochs=12)
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy()), ka
    assert a.info["held_out_accuracy"] >= 0.9 and a.info["n_held_out"] == len(held.labels)
    f = a.features(held.images)
    assert f.shape == (len(held.labels), 64) and np.isfinite(f).all()


def test_classifier_cache_round_trip_and_bad_cache_file(tmp_path, monkeypatch):
    import scarlet_moon.eval.classifier as C

    monkeypatch.setattr(C, "EPOCHS", 3)
    ds = easy_set(30)
    first, train, held = C.get_classifier(ds, cache_dir=tmp_path)
    path = C.cache_file(ds, tmp_path)
    assert first.info["cached"] is False and path.is_file() and path.suffix == ".safetensors"
    second, _, _ = C.get_classifier(ds, cache_dir=tmp_path)
    assert second.info["cached"] is True
    assert np.allclose(first.features(held.images), second.features(held.images))
    path.write_bytes(b"\x80\x04garbage")  # a pickle-looking file is never unpickled: a cache miss
    third, _, _ = C.get_classifier(ds, cache_dir=tmp_path)
    assert third.info["cached"] is False and C.load_classifier(path, ds) is not None
