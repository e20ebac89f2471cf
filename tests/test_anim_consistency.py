"""eval.anim_consistency: frames of one character agree; frames of two characters do not."""

from __future__ import annotations

import numpy as np
import pytest

from scarlet_moon.eval.anim_consistency import consistency


def character(colour: tuple[int, int, int], shifts: list[int], d: int = 4, size: int = 16) -> np.ndarray:
    """D x F x size x size x 4: a 6x8 block of `colour` moved right by each shift (one frame each)."""
    out = np.zeros((d, len(shifts), size, size, 4), np.uint8)
    for f, s in enumerate(shifts):
        out[:, f, 4:12, 2 + s : 8 + s] = (*colour, 255)
    return out


def test_still_frames_of_one_colour_are_fully_consistent() -> None:
    c = consistency(character((200, 30, 30), [0, 0, 0])[None])
    assert c == {"palette_frames": 1.0, "silhouette_frames": 1.0, "palette_directions": 1.0, "size_directions": 1.0}


def test_a_moving_silhouette_lowers_its_figure_and_not_the_palette() -> None:
    c = consistency(character((200, 30, 30), [0, 1, 2, 3])[None])
    # neighbours overlap 5 of 7 columns; the wrap from shift 3 to 0 overlaps 3 of 9
    assert c["silhouette_frames"] == pytest.approx((3 * 5 / 7 + 3 / 9) / 4)
    assert c["palette_frames"] == 1.0 and c["size_directions"] == 1.0


def test_the_between_figures_compare_with_the_next_character() -> None:
    frames = np.stack([character((200, 30, 30), [0, 1]), character((30, 30, 200), [0, 1])])
    c = consistency(frames)
    assert c["palette_frames"] == 1.0 and c["palette_frames_between"] == 0.0
    assert c["palette_directions_between"] == 0.0
    assert c["silhouette_frames_between"] == pytest.approx(c["silhouette_frames"])  # same shapes


def test_near_shades_count_as_one_colour_and_faint_pixels_do_not_count() -> None:
    a = character((200, 30, 30), [0, 0])
    a[:, 1, 4:12, 2:8, :3] = (202, 31, 29)  # the same 5-bit colour
    a[:, 1, 0, 0] = (0, 255, 0, 100)  # alpha under 128: not part of the sprite
    c = consistency(a[None])
    assert c["palette_frames"] == 1.0 and c["silhouette_frames"] == 1.0


def test_frames_must_be_six_dimensional() -> None:
    with pytest.raises(ValueError, match="expected frames N x D x F x H x W x 4"):
        consistency(np.zeros((4, 16, 16, 4), np.uint8))
