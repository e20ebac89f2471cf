"""Animated sets (scarlet_moon.data.anim): every layout reads the frame each cell holds, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scarlet_moon.data.anim import LOOSE_LABEL, load_anim, parse_frame
from scarlet_moon.errors import BadInput


def cell(char: int, d: int, f: int, h: int = 16, w: int = 16) -> np.ndarray:
    """A frame whose colour names its character, direction and frame."""
    img = np.zeros((h, w, 4), np.uint8)
    img[...] = (char * 20 + 5, d * 40 + 5, f * 30 + 5, 255)
    return img


def sheet(rows: list[list[np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)


def save(img: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, "RGBA").save(path)
    return path


def ids(frames: np.ndarray) -> np.ndarray:
    """N x D x F x 3: the (char, direction, frame) each frame was painted with."""
    px = frames[:, :, :, 0, 0, :3].astype(int) - 5
    return np.stack([px[..., 0] // 20, px[..., 1] // 40, px[..., 2] // 30], axis=-1)


def expected(chars: list[int], d: int = 4, f: int = 3) -> np.ndarray:
    return np.array([[[[c, i, j] for j in range(f)] for i in range(d)] for c in chars])


def test_rows_a_sheet_per_character_with_a_row_per_direction_under_label_folders(tmp_path: Path) -> None:
    for c, label in [(0, "hero"), (1, "hero"), (2, "slime")]:
        save(sheet([[cell(c, d, f) for f in range(3)] for d in range(4)]), tmp_path / label / f"c{c}.png")
    a = load_anim(tmp_path, "rows")
    assert a.shape == (3, 4, 3, 16, 16)
    assert a.label_names == ("hero", "slime") and a.labels.tolist() == [0, 0, 1]
    assert a.directions == ("down", "left", "right", "up")
    assert (ids(a.frames) == expected([0, 1, 2])).all()


def test_rows_with_a_frame_size_that_is_not_square(tmp_path: Path) -> None:
    save(sheet([[cell(0, d, f, 24, 16) for f in range(3)] for d in range(4)]), tmp_path / "a.png")
    a = load_anim(tmp_path, "rows", frame="16x24")
    assert a.shape == (1, 4, 3, 24, 16) and a.label_names == (LOOSE_LABEL,)
    assert (ids(a.frames) == expected([0])).all()


def test_columns_a_column_per_direction(tmp_path: Path) -> None:
    cols = [[cell(0, d, f) for d in range(4)] for f in range(3)]  # row f holds frame f of each direction
    save(sheet(cols), tmp_path / "x" / "a.png")
    a = load_anim(tmp_path, "columns")
    assert a.shape == (1, 4, 3, 16, 16)
    assert (ids(a.frames) == expected([0])).all()


def test_rpgmaker_sheets_hold_eight_characters_or_one_with_a_dollar(tmp_path: Path) -> None:
    blocks = [
        [sheet([[cell(r * 4 + c, d, f) for f in range(3)] for d in range(4)]) for c in range(4)] for r in range(2)
    ]
    save(sheet(blocks), tmp_path / "npc" / "People1.png")
    save(sheet([[cell(9, d, f) for f in range(3)] for d in range(4)]), tmp_path / "npc" / "$Big.png")
    a = load_anim(tmp_path, "rpgmaker")
    assert a.shape == (9, 4, 3, 16, 16)
    assert (ids(a.frames) == expected([9, 0, 1, 2, 3, 4, 5, 6, 7])).all()  # "$Big" sorts first
    assert a.names[1].endswith("People1.png#0") and a.names[8].endswith("People1.png#7")


@pytest.mark.parametrize("layout", ["strips", "frames"])
def test_character_folders_loose_and_under_labels(tmp_path: Path, layout: str) -> None:
    dirs = ("s", "w", "e", "n")
    for c, where in [(0, tmp_path / "bob"), (1, tmp_path / "knights" / "k1"), (2, tmp_path / "knights" / "k2")]:
        for d, name in enumerate(dirs):
            if layout == "strips":
                save(np.concatenate([cell(c, d, f) for f in range(3)], axis=1), where / f"{name}.png")
            else:
                for f in range(3):
                    save(cell(c, d, f), where / name / f"{f:02d}.png")
    a = load_anim(tmp_path, layout, directions="s,w,e,n")
    assert a.label_names == (LOOSE_LABEL, "knights") and a.labels.tolist() == [0, 1, 1]
    assert a.directions == dirs and (ids(a.frames) == expected([0, 1, 2])).all()


def test_trailing_empty_frames_are_dropped_and_frames_takes_the_first(tmp_path: Path) -> None:
    empty = np.zeros((16, 16, 4), np.uint8)
    save(sheet([[cell(0, d, f) for f in range(3)] + [empty] for d in range(4)]), tmp_path / "a.png")
    assert load_anim(tmp_path, "rows").shape[2] == 3
    assert load_anim(tmp_path, "rows", frames=2).shape[2] == 2
    with pytest.raises(BadInput, match="has 4 frames per direction; frames asks for 5"):
        load_anim(tmp_path, "rows", frames=5)


@pytest.mark.parametrize(
    "make, layout, kwargs, message",
    [
        (lambda p: save(np.zeros((60, 48, 4), np.uint8) + 255, p / "a.png"), "rows", {}, "not 4 rows of 15x15"),
        (lambda p: save(np.zeros((64, 40, 4), np.uint8) + 255, p / "a.png"), "rows", {}, "not 4 rows of 16x16"),
        (lambda p: save(np.zeros((64, 48, 4), np.uint8), p / "a.png"), "rows", {}, "has no visible pixel"),
        (lambda p: save(np.zeros((64, 48, 4), np.uint8) + 255, p / "a.png"), "tiles", {}, "unknown layout 'tiles'"),
        (lambda p: save(np.zeros((64, 48, 4), np.uint8) + 255, p / "a.png"), "rows", {"frame": "0"}, "each side"),
        (lambda p: save(np.zeros((64, 48, 4), np.uint8) + 255, p / "a.png"), "rows", {"directions": "a,a"}, "distinct"),
        (lambda p: (p / "x").mkdir(), "rows", {}, "holds no .png files"),
        (lambda p: (p / "x" / "y").mkdir(parents=True), "frames", {}, "neither a character folder"),
        (lambda p: None, "rpgmaker", {"directions": "a,b"}, "holds no characters"),
    ],
)
def test_bad_sets_get_one_line_naming_the_file_and_the_rule(
    tmp_path: Path, make, layout: str, kwargs: dict, message: str
) -> None:
    make(tmp_path)
    with pytest.raises(BadInput, match=message) as err:
        load_anim(tmp_path, layout, **kwargs)
    assert "\n" not in str(err.value)


def test_characters_must_agree_on_frame_size_and_count(tmp_path: Path) -> None:
    save(sheet([[cell(0, d, f) for f in range(3)] for d in range(4)]), tmp_path / "a.png")
    save(sheet([[cell(1, d, f) for f in range(2)] for d in range(4)]), tmp_path / "b.png")
    with pytest.raises(BadInput, match="b.png' has 2 frames per direction, the first character 3: give frames"):
        load_anim(tmp_path, "rows")
    assert load_anim(tmp_path, "rows", frames=2).shape == (2, 4, 2, 16, 16)
    save(sheet([[cell(2, d, f, 32, 32) for f in range(2)] for d in range(4)]), tmp_path / "c.png")
    with pytest.raises(BadInput, match="c.png' has 32x32 frames; every character must match the first"):
        load_anim(tmp_path, "rows", frames=2)


def test_a_strip_direction_with_other_frame_counts_is_refused(tmp_path: Path) -> None:
    for d, name in enumerate(("down", "left", "right", "up")):
        save(np.concatenate([cell(0, d, f) for f in range(3 if d else 2)], axis=1), tmp_path / "c" / f"{name}.png")
    with pytest.raises(BadInput, match="has down 2, left 3, right 3, up 3 frames"):
        load_anim(tmp_path, "strips")


def test_frame_sizes_parse_as_width_by_height() -> None:
    assert parse_frame("16") == (16, 16) and parse_frame("16x24") == (24, 16) and parse_frame(None) is None
    with pytest.raises(BadInput, match="expected a size in pixels"):
        parse_frame("big")


def test_a_background_key_makes_its_colour_transparent_before_empty_frames_drop(tmp_path: Path) -> None:
    key = np.zeros((16, 16, 4), np.uint8)
    key[...] = (255, 0, 255, 255)
    framed = [[cell(0, d, f) for f in range(2)] + [key] for d in range(4)]
    save(sheet(framed), tmp_path / "a.png")
    assert load_anim(tmp_path, "rows").shape[2] == 3  # magenta is a colour until keyed
    a = load_anim(tmp_path, "rows", background_key="ff00ff")
    assert a.shape[2] == 2 and (a.frames[..., 3] == 255).all()
    assert load_anim(tmp_path, "rows", background_key="auto").shape[2] == 3  # auto keys the top-left: a frame
