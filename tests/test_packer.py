"""Property tests of exporters.pack: geometry, padding, extrusion, pixels, pages, trim, dedupe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from scarlet_moon.exporters import PackResult, Sprite, pack

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_image(rng: np.random.Generator, w: int, h: int, border: int) -> Image.Image:
    """Random opaque-ish pixels inside a transparent border of `border` px (so trim has work)."""
    arr = np.zeros((h, w, 4), np.uint8)
    inner = arr[border : h - border, border : w - border]
    inner[...] = rng.integers(0, 256, inner.shape, dtype=np.uint8)
    inner[..., 3] = np.maximum(inner[..., 3], 1)  # no fully transparent pixel inside
    return Image.fromarray(arr, "RGBA")


@st.composite
def sprite_sets(draw) -> list[Sprite]:
    n = draw(st.integers(1, 14))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    same = draw(st.booleans())
    base = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    sprites: list[Sprite] = []
    for i in range(n):
        if sprites and draw(st.integers(0, 4)) == 0:  # an exact duplicate of an earlier sprite
            img = sprites[draw(st.integers(0, len(sprites) - 1))].image.copy()
        else:
            w, h = base if same else (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
            img = random_image(rng, w, h, draw(st.integers(0, max(0, (min(w, h) - 1) // 2))))
        sprites.append(Sprite(f"s_{i:03d}", img, label=draw(st.sampled_from([None, "walk", "idle"]))))
    return sprites


@st.composite
def options(draw, sprites: list[Sprite]) -> dict:
    padding, extrude, scale = draw(st.integers(0, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 3))
    biggest = max(max(s.image.size) for s in sprites) * scale + 2 * (padding + extrude)
    pot = draw(st.booleans())
    max_size = biggest + draw(st.integers(0, 60))
    if pot:
        max_size = max(max_size, 1 << (biggest - 1).bit_length())
    return dict(
        padding=padding,
        extrude=extrude,
        scale=scale,
        pot=pot,
        max_size=max_size,
        trim=draw(st.booleans()),
        dedupe=draw(st.booleans()),
    )


def slot(f, extrude: int) -> tuple[int, int, int, int]:
    return f.x - extrude, f.y - extrude, f.x + f.w + extrude, f.y + f.h + extrude  # x0, y0, x1, y1


def check_geometry(result: PackResult, opts: dict) -> None:
    pad, ext = opts["padding"], opts["extrude"]
    for page in result.pages:
        W, H = page.size
        assert W <= opts["max_size"] and H <= opts["max_size"]
        if opts["pot"]:
            assert W & (W - 1) == 0 and H & (H - 1) == 0
        slots = {slot(f, ext) for f in page.frames}  # aliases share a slot
        for x0, y0, x1, y1 in slots:
            assert x0 >= pad and y0 >= pad and x1 + pad <= W and y1 + pad <= H
        for a in slots:
            for b in slots:
                if a < b:  # separated by at least `padding` on one axis
                    assert a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1], (a, b)


def check_pixels(sprites: list[Sprite], result: PackResult, opts: dict) -> None:
    s, ext = opts["scale"], opts["extrude"]
    by_name = {f.name: (f, np.asarray(p.image)) for p in result.pages for f in p.frames}
    for sp in sprites:
        f, sheet = by_name[sp.name]
        src = np.asarray(sp.image.convert("RGBA")).repeat(s, 0).repeat(s, 1)
        assert (f.source_w, f.source_h) == (src.shape[1], src.shape[0])
        expected = src[f.offset_y : f.offset_y + f.h, f.offset_x : f.offset_x + f.w]
        assert expected.shape == (f.h, f.w, 4)
        if opts["trim"]:  # everything cut away was transparent, and the kept box is tight
            outside = src.copy()
            outside[f.offset_y : f.offset_y + f.h, f.offset_x : f.offset_x + f.w, 3] = 0
            assert not outside[..., 3].any()
        else:
            assert (f.offset_x, f.offset_y, f.w, f.h) == (0, 0, src.shape[1], src.shape[0])
        np.testing.assert_array_equal(sheet[f.y : f.y + f.h, f.x : f.x + f.w], expected)
        # the extrusion ring repeats the edge pixels outward
        ring = sheet[f.y - ext : f.y + f.h + ext, f.x - ext : f.x + f.w + ext]
        np.testing.assert_array_equal(ring, np.pad(expected, ((ext, ext), (ext, ext), (0, 0)), mode="edge"))


@SETTINGS
@given(data=st.data())
def test_pack_properties(data):
    sprites = data.draw(sprite_sets())
    opts = data.draw(options(sprites))
    result = pack(sprites, **opts)
    names = [f.name for f in result.frames]
    assert sorted(names) == sorted(s.name for s in sprites)  # every input exactly once
    check_geometry(result, opts)
    check_pixels(sprites, result, opts)
    frames = {f.name: f for f in result.frames}
    labels = {s.name: s.label for s in sprites}
    for f in result.frames:
        assert f.label == labels[f.name]
        if f.alias_of is not None:
            assert opts["dedupe"]
            target = frames[f.alias_of]
            assert target.alias_of is None and (target.x, target.y, target.w, target.h) == (f.x, f.y, f.w, f.h)
            assert any(f in p.frames and target in p.frames for p in result.pages)


def solid(w: int, h: int, color: tuple[int, int, int, int]) -> Image.Image:
    return Image.new("RGBA", (w, h), color)


def test_same_size_sprites_make_a_row_major_grid():
    sprites = [Sprite(f"hero_{i}", solid(16, 16, (i * 20, 0, 0, 255))) for i in range(8)]
    (page,) = pack(sprites, padding=1).pages
    assert page.size == (52, 52)  # 3 x 3 cells of 17 px + 1 px border
    assert [(f.x, f.y) for f in page.frames[:4]] == [(1, 1), (18, 1), (35, 1), (1, 18)]


def test_identical_sprites_are_stored_once_unless_dedupe_is_off():
    a = solid(8, 8, (1, 2, 3, 255))
    sprites = [Sprite("a", a), Sprite("b", a.copy()), Sprite("c", solid(8, 8, (9, 9, 9, 255)))]
    frames = {f.name: f for f in pack(sprites).frames}
    assert frames["b"].alias_of == "a" and (frames["b"].x, frames["b"].y) == (frames["a"].x, frames["a"].y)
    assert frames["c"].alias_of is None
    assert all(f.alias_of is None for f in pack(sprites, dedupe=False).frames)


def test_too_many_sprites_spill_onto_more_pages():
    sprites = [Sprite(f"t_{i}", solid(16, 16, (i, 0, 0, 255))) for i in range(10)]
    result = pack(sprites, padding=0, max_size=32)
    assert len(result.pages) == 3 and [len(p.frames) for p in result.pages] == [4, 4, 2]


def test_mixed_sizes_spill_onto_more_pages_too():
    sprites = [Sprite(f"m_{i}", solid(10 + i % 3, 7 + i % 4, (i, 1, 0, 255))) for i in range(12)]
    result = pack(sprites, padding=1, max_size=30)
    assert len(result.pages) > 1
    assert sorted(f.name for f in result.frames) == sorted(s.name for s in sprites)


def test_trim_records_source_size_and_offset():
    img = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (3, 5, 9, 15))  # 6 x 10 box at (3, 5)
    (f,) = pack([Sprite("t", img)], trim=True, scale=2).frames
    assert (f.w, f.h, f.offset_x, f.offset_y, f.source_w, f.source_h) == (12, 20, 6, 10, 32, 32)
    assert f.trimmed


def test_fully_transparent_sprite_trims_to_one_pixel():
    (f,) = pack([Sprite("empty", Image.new("RGBA", (8, 8)))], trim=True).frames
    assert (f.w, f.h, f.source_w, f.source_h) == (1, 1, 8, 8)


def test_non_rgba_input_is_converted():
    (f,) = pack([Sprite("p", Image.new("RGB", (4, 4), (5, 6, 7)))]).frames
    assert f.w == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_size=17),
        dict(max_size=19, padding=2),
        dict(max_size=16, extrude=1),
        dict(max_size=24, scale=2, padding=0),
        dict(max_size=30, pot=True, padding=1),
    ],
)
def test_sprite_larger_than_max_size_is_refused_by_name(kwargs):
    with pytest.raises(ValueError, match="big_one"):
        pack([Sprite("ok", solid(4, 4, (1, 1, 1, 255))), Sprite("big_one", solid(16, 16, (1, 1, 1, 255)))], **kwargs)


@pytest.mark.parametrize(
    "sprites, match",
    [
        ([], "no sprites"),
        ([Sprite("x", solid(2, 2, (0, 0, 0, 255))), Sprite("x", solid(2, 2, (0, 0, 0, 255)))], "'x'"),
        ([Sprite("z", Image.new("RGBA", (0, 3)))], "'z'"),
    ],
)
def test_bad_sprite_lists_are_refused(sprites, match):
    with pytest.raises(ValueError, match=match):
        pack(sprites)


@pytest.mark.parametrize("kwargs", [dict(padding=-1), dict(extrude=-1), dict(scale=0), dict(max_size=0)])
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        pack([Sprite("a", solid(2, 2, (0, 0, 0, 255)))], **kwargs)


@SETTINGS
@given(sprite_sets(), st.booleans(), st.integers(0, 2), st.integers(1, 2))
def test_rgba_arrays_pack_as_their_pil_images(sprites, trim, extrude, scale):
    arrays = [Sprite(s.name, np.asarray(s.image.convert("RGBA")).copy(), s.label, s.meta) for s in sprites]
    a = pack(sprites, trim=trim, extrude=extrude, scale=scale, max_size=64)
    b = pack(arrays, trim=trim, extrude=extrude, scale=scale, max_size=64)
    assert [p.frames for p in a.pages] == [p.frames for p in b.pages]
    assert all(np.array_equal(np.asarray(p.image), np.asarray(q.image)) for p, q in zip(a.pages, b.pages))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((4, 4, 3), np.uint8),
        np.zeros((4, 4, 4), np.float32),
        np.zeros((4, 4), np.uint8),
        np.zeros((0, 4, 4), np.uint8),
    ],
)
def test_a_bad_array_image_is_refused_by_name(image):
    with pytest.raises(ValueError, match="sprite 'odd'"):
        pack([Sprite("odd", image)])
