"""Pixel-perfect post-processing and palette files."""

from __future__ import annotations

import numpy as np
import pixels_reference as reference
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from scarlet_moon.backends import read_card
from scarlet_moon.data import kmeans, pixels
from scarlet_moon.data.palettes import load_palette
from scarlet_moon.data.pixels import cap_colors, crisp_alpha, postprocess, quantize_to_palette, upscale
from scarlet_moon.errors import BadInput

PICO8 = np.array(
    [
        [0, 0, 0],
        [29, 43, 83],
        [126, 37, 83],
        [0, 135, 81],
        [171, 82, 54],
        [95, 87, 79],
        [194, 195, 199],
        [255, 241, 232],
        [255, 0, 77],
        [255, 163, 0],
        [255, 236, 39],
        [0, 228, 54],
        [41, 173, 255],
        [131, 118, 156],
        [255, 119, 168],
        [255, 204, 170],
    ],
    dtype=np.uint8,
)

images_st = arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.just(4)))
palette_st = arrays(np.uint8, st.tuples(st.integers(1, 8), st.just(3)))


def random_sprites(seed: int, n: int = 4, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 4), dtype=np.uint8)


def colour_set(img: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in c) for c in img[img[..., 3] > 0][:, :3]}


# ---------------------------------------------------------------- crisp_alpha


@settings(max_examples=60, deadline=None)
@given(images_st, st.integers(1, 255))
def test_crisp_alpha_properties(images, threshold):
    out = crisp_alpha(images, threshold)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert set(np.unique(out[..., 3])) <= {0, 255}
    assert np.all(out[out[..., 3] == 0][:, :3] == 0)
    opaque = images[..., 3] >= threshold
    assert np.array_equal(out[..., 3] == 255, opaque)
    assert np.array_equal(out[opaque][:, :3], images[opaque][:, :3])
    assert np.array_equal(crisp_alpha(out, threshold), out)  # idempotent
    assert not np.shares_memory(out, images)


def test_crisp_alpha_threshold_edges():
    img = np.array([[[[10, 20, 30, 127], [10, 20, 30, 128], [1, 2, 3, 0], [4, 5, 6, 255]]]], dtype=np.uint8)
    out = crisp_alpha(img)
    assert out[0, 0].tolist() == [[0, 0, 0, 0], [10, 20, 30, 255], [0, 0, 0, 0], [4, 5, 6, 255]]


# ---------------------------------------------------------------- quantize_to_palette


@settings(max_examples=60, deadline=None)
@given(images_st, palette_st, st.sampled_from(["lab", "rgb"]))
def test_quantize_every_opaque_pixel_is_in_the_palette(images, palette, space):
    out = quantize_to_palette(images, palette, space=space)
    pal = {tuple(int(v) for v in c) for c in palette}
    assert colour_set(out) <= pal
    assert np.array_equal(out[..., 3], images[..., 3])
    transparent = images[..., 3] == 0
    assert np.array_equal(out[transparent], images[transparent])
    assert np.array_equal(quantize_to_palette(out, palette, space=space), out)  # idempotent


def test_quantize_picks_the_nearest_colour():
    img = np.zeros((1, 1, 3, 4), dtype=np.uint8)
    img[0, 0, :, 3] = 255
    img[0, 0, :, :3] = [[250, 10, 70], [10, 10, 10], [40, 170, 250]]
    out = quantize_to_palette(img, PICO8)
    assert out[0, 0, :, :3].tolist() == [[255, 0, 77], [0, 0, 0], [41, 173, 255]]
    assert quantize_to_palette(img, PICO8, space="rgb")[0, 0, :, :3].tolist() == out[0, 0, :, :3].tolist()


def test_quantize_rejects_bad_palettes():
    img = random_sprites(0, 1)
    for bad in (
        np.zeros((0, 3), np.uint8),
        np.zeros((4, 4), np.uint8),
        np.array([[0, 0, 300]]),
        np.array([[0.5, 0, 0]]),
    ):
        with pytest.raises(BadInput):
            quantize_to_palette(img, bad)


# ---------------------------------------------------------------- cap_colors, upscale, postprocess


@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_cap_colors_respects_k_per_sprite_and_keeps_sprite_colours(k):
    imgs = crisp_alpha(random_sprites(1))
    out = cap_colors(imgs, k)
    assert np.array_equal(out[..., 3], imgs[..., 3])
    for before, after in zip(imgs, out):
        assert 1 <= len(colour_set(after)) <= k
        assert colour_set(after) <= colour_set(before)
    assert np.array_equal(cap_colors(imgs, k), out)  # deterministic


def test_cap_colors_keeps_few_colour_sprites_and_separates_clusters():
    rng = np.random.default_rng(2)
    img = np.zeros((1, 16, 16, 4), dtype=np.uint8)
    img[..., 3] = 255
    base = np.where(rng.random((16, 16, 1)) < 0.5, [200, 30, 30], [30, 30, 200])
    img[0, ..., :3] = np.clip(base + rng.integers(-6, 7, (16, 16, 3)), 0, 255)
    out = cap_colors(img, 2)
    reds = img[0, ..., 0] > 100
    assert len(colour_set(out)) == 2
    assert len(colour_set(out[:, reds])) == 1 and len(colour_set(out[:, ~reds])) == 1
    two = crisp_alpha(random_sprites(3, 1))
    two[..., :3] = np.where(two[..., :1] > 128, 255, 0)  # at most 2 colours already
    assert np.array_equal(cap_colors(two, 2), two)
    with pytest.raises(BadInput):
        cap_colors(two, 0)


def test_upscale_nearest_neighbour():
    imgs = random_sprites(4, 2, 3)
    out = upscale(imgs, 4)
    assert out.shape == (2, 12, 12, 4)
    assert np.array_equal(out[:, ::4, ::4], imgs) and np.array_equal(out[:, 3::4, 2::4], imgs)
    assert np.array_equal(upscale(imgs, 1), imgs)
    with pytest.raises(BadInput):
        upscale(imgs, 0)


def test_postprocess_order_alpha_cap_palette(tmp_path):
    imgs = random_sprites(5)
    out = postprocess(imgs, alpha_threshold=100, palette=PICO8, colors=4)
    assert set(np.unique(out[..., 3])) <= {0, 255}
    assert np.array_equal(out[..., 3] == 255, imgs[..., 3] >= 100)
    pal = {tuple(int(v) for v in c) for c in PICO8}
    for sprite in out:
        assert colour_set(sprite[None]) <= pal and len(colour_set(sprite[None])) <= 4
    f = tmp_path / "p.hex"
    f.write_text("\n".join(f"{r:02x}{g:02x}{b:02x}" for r, g, b in PICO8) + "\n")
    assert np.array_equal(postprocess(imgs, alpha_threshold=100, palette=f, colors=4), out)
    assert np.array_equal(postprocess(imgs), crisp_alpha(imgs))
    with pytest.raises(BadInput):
        postprocess(imgs[0])


# ---------------------------------------------------------------- batched = per-sprite reference


def edge_batch(seed: int = 0) -> np.ndarray:
    """Sprites that stress the batched cap and snap: no opaque pixel, 1 colour, exactly 17 and
    18 colours, 256 colours, equal counts, equidistant greys, lattice colours (ties in Lab and
    RGB), near-identical colours, partial alpha."""
    rng = np.random.default_rng(seed)
    z = np.zeros((16, 16, 4), np.uint8)
    out = [z, np.where(np.arange(4) < 3, 77, 127).astype(np.uint8) + z]  # transparent / below 128
    one = z.copy()
    one[3:9, 4:10] = [250, 2, 3, 255]
    out.append(one)
    for n in (2, 17, 18, 24, 64, 256):  # n colours, (nearly) equal counts
        s = z + np.uint8(255)
        s[..., :3] = rng.integers(0, 256, (n, 3))[np.arange(256) % n].reshape(16, 16, 3)
        out.append(s)
    grey = z + np.uint8(255)
    grey[..., :3] = (np.arange(256) // 8 * 8).reshape(16, 16, 1)  # 32 equidistant greys
    lattice = z + np.uint8(255)
    lattice[..., :3] = rng.choice([0, 64, 128, 192, 255], (16, 16, 3))
    near = z + np.uint8(255)
    near[..., :3] = 128 + rng.integers(-2, 3, (16, 16, 3))
    out += [grey, lattice, near, *rng.integers(0, 256, (3, 16, 16, 4), dtype=np.uint8)]
    return np.stack(out)


@pytest.mark.parametrize("k,space", [(1, "lab"), (2, "lab"), (5, "rgb"), (17, "lab"), (30, "lab")])
def test_cap_colors_batched_equals_reference_and_per_sprite(k, space, monkeypatch):
    imgs = crisp_alpha(edge_batch())
    out = cap_colors(imgs, k, space=space)
    assert np.array_equal(out, reference.cap_colors(imgs, k, space=space))  # byte-identical
    alone = np.concatenate([cap_colors(im[None], k, space=space) for im in imgs])
    assert np.array_equal(out, alone)  # a sprite's result ignores its batch
    monkeypatch.setattr(pixels, "_CHUNK", 64)  # one sprite per block, shuffled order
    order = np.random.default_rng(k).permutation(len(imgs))
    assert np.array_equal(cap_colors(imgs[order], k, space=space), out[order])
    for before, after in zip(imgs, out):
        assert len(colour_set(after)) <= k and colour_set(after) <= colour_set(before)
    clear = imgs[..., 3] == 0
    assert np.array_equal(out[..., 3], imgs[..., 3]) and np.array_equal(out[clear], imgs[clear])


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(0, 4), st.integers(0, 8), st.integers(1, 8), st.just(4)),
        elements=st.sampled_from([0, 1, 63, 64, 127, 128, 200, 255]),
    ),
    st.integers(1, 6),
    st.sampled_from(["lab", "rgb"]),
)
def test_cap_and_snap_equal_reference_on_tie_heavy_sprites(images, k, space):
    assert np.array_equal(cap_colors(images, k, space=space), reference.cap_colors(images, k, space=space))
    assert np.array_equal(
        quantize_to_palette(images, PICO8, space=space), reference.quantize_to_palette(images, PICO8, space=space)
    )


def test_postprocess_with_the_bundled_models_defaults_equals_reference():
    card = read_card(None)
    k = card.meta["colors_per_sprite"]["p90"]
    imgs = np.concatenate([edge_batch(1), random_sprites(6, 8)])
    out = postprocess(imgs, palette=card.palette, colors=k)
    assert np.array_equal(out, reference.postprocess(imgs, palette=card.palette, colors=k))
    pal = {tuple(int(v) for v in c) for c in card.palette}
    for sprite in out:
        assert len(colour_set(sprite[None])) <= k and colour_set(sprite[None]) <= pal
    assert set(np.unique(out[..., 3])) <= {0, 255}
    for pal1 in (card.palette[:1], PICO8):  # one colour; a batch with one colour
        assert np.array_equal(quantize_to_palette(imgs, pal1), reference.quantize_to_palette(imgs, pal1))
    assert np.array_equal(quantize_to_palette(imgs[2:3], PICO8), reference.quantize_to_palette(imgs[2:3], PICO8))
    empty = np.zeros((0, 16, 16, 4), np.uint8)
    assert postprocess(empty, palette=card.palette, colors=k).shape == empty.shape


def test_kmeans_nearest_is_the_exact_argmin_first_on_ties():
    rng = np.random.default_rng(0)
    t = rng.choice([-50.0, 0.0, 50.0], (3, 4, 6))  # equidistant targets: many exact ties
    x = rng.choice([-25.0, 0.0, 25.0], (3, 4, 40))
    x[:, :, :3] = t[:, :, :3] + np.array([1e-9, -1e-9, 0])[:, None, None]  # near-ties
    exact = kmeans.sq_dist(x, t).argmin(-1)
    assert np.array_equal(kmeans.nearest(x, t), exact)
    valid = rng.random((4, 6)) < 0.6
    valid[:, 0] = True
    masked = np.where(valid[:, None, :], kmeans.sq_dist(x, t), np.inf).argmin(-1)
    assert np.array_equal(kmeans.nearest(x, t, valid), masked)


# ---------------------------------------------------------------- palette files

GPL = """GIMP Palette
Name: Scarlet test
Columns: 4
# a comment
#
  0   0   0\tBlack
255   0  77 Red (PICO-8)
 41 173 255
255   0  77\tduplicate red
"""

JASC = "JASC-PAL\r\n0100\r\n3\r\n0 0 0\r\n255 0 77\r\n41 173 255\r\n"
EXPECTED = [[0, 0, 0], [255, 0, 77], [41, 173, 255]]


def test_parse_gpl_hex_jasc(tmp_path):
    (tmp_path / "a.gpl").write_text(GPL)
    (tmp_path / "b.hex").write_text("000000\nff004d\n\n#29ADFF\n")
    (tmp_path / "c.pal").write_bytes(JASC.encode())
    (tmp_path / "d.GPL").write_text("\ufeff" + GPL)  # BOM, upper-case extension
    for name in ("a.gpl", "b.hex", "c.pal", "d.GPL"):
        pal = load_palette(tmp_path / name)
        assert pal.dtype == np.uint8 and pal.tolist() == EXPECTED, name
    assert load_palette(str(tmp_path / "a.gpl")).shape == (3, 3)


def test_image_palette_most_frequent_opaque_colours(tmp_path):
    img = np.zeros((4, 8, 4), dtype=np.uint8)
    img[..., 3] = 255
    img[:2, :, :3] = [255, 0, 77]  # 16 px
    img[2:, :5, :3] = [41, 173, 255]  # 10 px
    img[2:, 5:, :3] = [0, 0, 0]  # 6 px ...
    img[3, 7] = [9, 9, 9, 0]  # ... minus one transparent pixel, ignored
    Image.fromarray(img, "RGBA").save(tmp_path / "pal.png")
    assert load_palette(tmp_path / "pal.png").tolist() == [[255, 0, 77], [41, 173, 255], [0, 0, 0]]
    big = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(big, "RGB").save(tmp_path / "big.png")
    assert load_palette(tmp_path / "big.png").shape == (256, 3)


@pytest.mark.parametrize(
    "name,content,line",
    [
        ("empty.hex", "", None),
        ("comments.gpl", "GIMP Palette\nName: x\n# nothing\n", None),
        ("header.gpl", "Paint Palette\n0 0 0\n", 1),
        ("short.gpl", "GIMP Palette\nName: x\n0 0\n", 3),
        ("range.gpl", "GIMP Palette\n0 0 256 big\n", 2),
        ("words.gpl", "GIMP Palette\nred green blue\n", 2),
        ("bad.hex", "ff0000\nzz0000\n", 2),
        ("short.hex", "ff0000\nfff\n", 2),
        ("count.pal", "JASC-PAL\n0100\n3\n0 0 0\n", 3),
        ("header.pal", "JASC\n0100\n1\n0 0 0\n", 1),
        ("row.pal", "JASC-PAL\n0100\n2\n0 0 0\n1 2\n", 5),
        ("riff.pal", "RIFF....PAL data", None),
        ("palette.txt", "ff0000\n", None),
        ("fake.png", "not a png", None),
    ],
)
def test_bad_palette_files_raise_bad_input(tmp_path, name, content, line):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(BadInput) as e:
        load_palette(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and ".gpl" in msg and ".hex" in msg and "JASC" in msg
    if line is not None:
        assert f"line {line}:" in msg


def test_missing_and_binary_palette_files(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load_palette(tmp_path / "missing.gpl")
    (tmp_path / "bin.hex").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(BadInput, match="UTF-8"):
        load_palette(tmp_path / "bin.hex")
