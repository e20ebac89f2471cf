"""The animation model (models.anim), its training (training.anim) and drawing (generation.anim)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

from scarlet_moon.data.anim import load_anim
from scarlet_moon.errors import BadInput
from scarlet_moon.models.anim import AnimShape, cond_channels, conditions

DIRS = ("down", "left", "right", "up")


def walker(seed: int, size: int = 8, frames: int = 3) -> np.ndarray:
    """One character: D x F x size x size x 4, a two-colour body that steps one pixel per frame."""
    rng = np.random.default_rng(seed)
    body, head = rng.integers(30, 226, 3), rng.integers(30, 226, 3)
    out = np.zeros((len(DIRS), frames, size, size, 4), np.uint8)
    for d in range(len(DIRS)):
        for f in range(frames):
            x0 = 1 + (f % 2) + (d == 1) - (d == 2)
            out[d, f, size // 2 :, x0 : x0 + size // 2, :3] = body
            out[d, f, 1 : size // 2, x0 + 1 : x0 + size // 2 - 1, :3] = head
            out[d, f, ..., 3] = np.where(out[d, f, ..., :3].any(-1), 255, 0)
    return out


def write_rows_set(root: Path, n: int = 6, size: int = 8, frames: int = 3) -> Path:
    """`rows` layout: label folders of character sheets, a row per direction."""
    for i in range(n):
        label = ("knight", "slime")[i % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        char = walker(i, size, frames)
        sheet = char.transpose(0, 2, 1, 3, 4).reshape(len(DIRS) * size, frames * size, 4)
        Image.fromarray(sheet, "RGBA").save(root / label / f"c{i}.png")
    return root


@pytest.fixture(scope="module")
def anim_set(tmp_path_factory):
    return load_anim(write_rows_set(tmp_path_factory.mktemp("walkers")), "rows")


@pytest.fixture(scope="module")
def anim_model(tmp_path_factory, anim_set):
    from scarlet_moon.training.anim_runs import train_anim_run
    from scarlet_moon.training.config import DEFAULT

    cfg = DEFAULT.replace({**TINY, "steps": 12})
    root = tmp_path_factory.mktemp("animruns")
    return train_anim_run(cfg, anim_set, runs_root=root, trackers={}, name="a").model


def test_shape_passes_cover_every_slot_once_and_refs_come_earlier():
    shape = AnimShape(DIRS, 3)
    passes = shape.passes()
    drawn = [s for p in passes for s in p]
    assert sorted(drawn) == list(range(12)) and passes[0] == [0]
    done: set[int] = set()
    for p in passes:
        for s in p:
            assert all(r is None or r in done for r in shape.refs(s)), (s, shape.refs(s))
        done |= set(p)
    assert shape.refs(shape.slot(2, 1)) == (0, shape.slot(2, 0))


def test_mirrored_swaps_left_and_right_only():
    shape = AnimShape(DIRS, 2)
    assert shape.mirrored() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert AnimShape(("down", "up"), 2).mirrored() == [0, 1, 2, 3]


def test_shape_refuses_too_many_slots():
    with pytest.raises(BadInput, match="slots"):
        AnimShape(DIRS, 17)


def test_conditions_planes():
    a, k = torch.full((2, 4, 8, 8), 0.5), torch.full((2, 4, 8, 8), -0.5)
    c = conditions(a, k, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([3, 0]), 8)
    assert c.shape == (2, cond_channels(8), 8, 8)
    assert c[0, 4].eq(1).all() and c[1, 4].eq(0).all() and c[0, 9].eq(0).all() and c[1, 9].eq(1).all()
    assert c[0, 10 + 3].eq(1).all() and c[0, 10:].sum(0).eq(1).all()


def test_training_writes_an_animation_card_and_preview(anim_model, anim_set):
    from scarlet_moon.backends import read_card

    card = read_card(anim_model)
    assert card.meta["anim"] == {"directions": list(DIRS), "frames": 3}
    assert card.label_names == ["knight", "slime"] and card.size == (8, 8)
    assert card.meta["step"] == 12
    assert (Path(anim_model).parent / "preview.png").is_file()


def test_draw_is_per_character_and_redraw_keeps_everything_else(anim_model):
    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.anim import AnimOptions, draw_characters

    card = read_card(anim_model)
    opts = AnimOptions(steps=3)
    three = draw_characters(card, [0, 1, 0], opts)
    assert three.shape == (3, 4, 3, 8, 8, 4) and three.dtype == np.uint8
    assert np.array_equal(draw_characters(card, [0], opts), three[:1])  # the count changes no character
    assert np.array_equal(draw_characters(card, [0], opts, first=2), three[2:])  # nor does drawing in chunks
    other = draw_characters(card, [0, 1, 0], AnimOptions(steps=3, seed=1), keep=three, redraw=["left"])
    changed = (other != three).reshape(3, 4, 3, -1).any(-1)
    assert not changed[:, [0, 2, 3]].any()  # down, right, up kept byte for byte
    assert changed[:, 1].any()
    with pytest.raises(BadInput, match="directions are down, left, right, up"):
        draw_characters(card, [0], opts, keep=three[:1], redraw=["north"])


def test_palette_lock_gives_each_direction_one_palette_built_on_the_anchor():
    from scarlet_moon.generation.anim import EXTRA_COLOURS, AnimOptions, finish_frames

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 4, 3, 8, 8, 4), dtype=np.uint8)
    out = finish_frames(frames, AnimOptions())
    assert set(np.unique(out[..., 3])) <= {0, 255} and (out[out[..., 3] == 0] == 0).all()
    for c in range(2):
        used = [{tuple(p) for p in out[c, d][out[c, d, ..., 3] == 255][:, :3]} for d in range(4)]
        assert all(len(u) <= 16 + EXTRA_COLOURS for u in used), [len(u) for u in used]
        assert len(set.union(*used)) <= 16 + 4 * EXTRA_COLOURS  # one base palette, a few extras per direction


def test_palette_lock_snaps_near_shades_to_the_anchor_colours():
    """Frames in the anchor's colours, each pixel off by a few levels: every pixel comes back to them."""
    from scarlet_moon.generation.anim import AnimOptions, finish_frames

    rng = np.random.default_rng(1)
    char = walker(3, size=16, frames=3)[None]
    noisy = char.astype(np.int16) + rng.integers(-6, 7, char.shape)
    noisy[..., 3] = char[..., 3]
    out = finish_frames(np.clip(noisy, 0, 255).astype(np.uint8), AnimOptions())
    assert np.array_equal(out[..., 3], char[..., 3])
    palette = {tuple(p) for p in out[0, 0, 0][out[0, 0, 0, ..., 3] == 255][:, :3]}
    assert {tuple(p) for p in out[0][out[0][..., 3] == 255][:, :3]} == palette and len(palette) <= 16
    assert np.abs(out.astype(int) - char.astype(int)).max() <= 12


def test_fine_tune_from_a_sprite_model_starts_as_that_model(tmp_path, anim_set, tiny_model):
    """With empty references the network's first pass is the sprite model's (its planes start at zero)."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.models.checkpoint import load_checkpoint
    from scarlet_moon.models.unet import build_model
    from scarlet_moon.training.anim import build_anim_state, config_from_parent, load_parent
    from scarlet_moon.training.config import DEFAULT, TrainConfig

    parent = read_card(tiny_model)
    cfg = config_from_parent(DEFAULT.replace({**TINY, "ema_decay": 0}), parent, anim_set)
    state = build_anim_state(cfg, anim_set)
    load_parent(state, cfg, parent, anim_set)
    pcfg = TrainConfig.from_dict(parent.config)
    sprite_net = build_model(pcfg.model, channels=4, size=8, num_classes=3, timesteps=pcfg.timesteps)
    sprite_net.load_state_dict(load_checkpoint(parent.path, with_optim=False).weights)
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([10.0, 40.0])
    empty = torch.zeros(2, 4, 8, 8)
    cond = conditions(empty, empty, torch.zeros(2), torch.zeros(2), torch.zeros(2, dtype=torch.long), 12)
    null = torch.tensor([2, 2])  # the anim model's null label; the sprite model's is 3
    with torch.no_grad():
        got = state.model(torch.cat([x, cond], 1), t, null)
        want = sprite_net(x, t, torch.tensor([3, 3]))
    assert torch.allclose(got, want, atol=1e-5)


def test_parent_of_another_depth_is_refused(anim_set):
    from scarlet_moon.backends import read_card
    from scarlet_moon.training.anim import config_from_parent
    from scarlet_moon.training.config import DEFAULT

    with pytest.raises(BadInput, match="32x32 model .* 8x8 frames need"):
        config_from_parent(DEFAULT, read_card("bundled-32"), anim_set)


def test_a_sprite_model_is_refused_for_animations(tiny_model):
    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.anim import AnimOptions, draw_characters

    with pytest.raises(BadInput, match="draws single sprites, not animations"):
        draw_characters(read_card(tiny_model), [0], AnimOptions(steps=2))
