"""training.memorise: the share of a sample grid that copies a training sprite, and when to say so."""

from __future__ import annotations

import numpy as np

from scarlet_moon.training.memorise import WARN_SHARE, grid_copy_share, memorising_message


def _sprites(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 256, (n, 8, 8, 4), dtype=np.uint8)
    out[..., 3] = np.where(rng.random((n, 8, 8)) < 0.5, 0, 255)
    return out


def test_raw_samples_of_a_training_sprite_count_as_copies():
    train = _sprites(5, 0)
    grid = train[[1, 3]].copy()
    grid[..., 3] = np.where(grid[..., 3] == 255, 200, 40)  # raw alpha: not yet crisp
    hidden = grid[..., 3] < 128
    grid[hidden, :3] = 77  # colour under transparent pixels is not seen
    assert grid_copy_share(grid, train) == 1.0


def test_new_sprites_and_an_empty_grid_are_not_copies():
    assert grid_copy_share(_sprites(6, 1), _sprites(5, 0)) == 0.0
    assert grid_copy_share(np.zeros((0, 8, 8, 4), np.uint8), _sprites(5, 0)) == 0.0


def test_one_sprite_in_three_copied_is_a_third():
    train, new = _sprites(4, 0), _sprites(2, 9)
    assert grid_copy_share(np.concatenate([train[:1], new]), train) == 1 / 3


def test_the_message_names_the_share_step_and_set_size_past_the_threshold():
    assert memorising_message(WARN_SHARE - 0.01, 100, 65) is None
    msg = memorising_message(0.44, 4233, 65)
    assert msg is not None and "44%" in msg and "step-4233" in msg and "65 sprites" in msg and "\n" not in msg
