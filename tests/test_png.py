"""scarlet_moon.data.png: the PNG writer `sm sample` uses instead of Pillow (start-up time, issue 15)
writes the pixels it is given, with Pillow's filter choices, and Pillow's bytes where the two share
a compressor."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scarlet_moon.data.pixels import make_grid
from scarlet_moon.data.png import encode_png, save_png
from scarlet_moon.data.sprites import BUNDLED

RNG = np.random.default_rng(11)


def pillow_png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, "RGBA" if img.shape[2] == 4 else "RGB").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        (n,), tag = struct.unpack(">I", data[i : i + 4]), data[i + 4 : i + 8]
        body, crc = data[i + 8 : i + 8 + n], data[i + 8 + n : i + 12 + n]
        assert struct.unpack(">I", crc)[0] == zlib.crc32(tag + body), tag
        out.append((tag, body))
        i += 12 + n
    return out


def scanlines(data: bytes) -> bytes:
    """The filtered rows (filter byte + row) the file's IDAT chunks inflate to."""
    return zlib.decompress(b"".join(body for tag, body in chunks(data) if tag == b"IDAT"))


def real_sprites(n: int = 120) -> list[np.ndarray]:
    sheet = np.asarray(Image.open(BUNDLED / "tiles.png").convert("RGBA"))
    tiles = [sheet[y : y + 16, x : x + 16] for y in range(0, sheet.shape[0], 16) for x in range(0, sheet.shape[1], 16)]
    return [np.ascontiguousarray(t) for t in tiles[:n]]


CASES = {
    "real": real_sprites(),
    "noise": [RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8) for _ in range(20)],
    "flat": [np.zeros((16, 16, 4), np.uint8), np.full((32, 32, 4), 255, np.uint8)],
    "odd shapes": [RNG.integers(0, 256, s, dtype=np.uint8) for s in [(1, 1, 4), (7, 1, 4), (1, 9, 4), (5, 3, 3)]],
    "several IDAT chunks": [RNG.integers(0, 256, (300, 200, 4), dtype=np.uint8)],
    "upscaled": [np.repeat(np.repeat(real_sprites(3)[2], 8, 0), 8, 1)],
}


@pytest.mark.parametrize("kind", list(CASES))
def test_the_file_holds_the_pixels_with_pillows_filters(kind: str):
    for img in CASES[kind]:
        ours = encode_png(img)
        with Image.open(io.BytesIO(ours)) as im:
            im.load()
            assert im.mode == ("RGBA" if img.shape[2] == 4 else "RGB") and im.size == img.shape[1::-1]
            assert np.array_equal(np.asarray(im), img)
        assert [tag for tag, _ in chunks(ours)][:: len(chunks(ours)) - 1] == [b"IHDR", b"IEND"]
        assert scanlines(ours) == scanlines(pillow_png(img))  # the same filter on every row


def test_the_bytes_are_pillows_where_the_compressor_is_the_same():
    img = CASES["several IDAT chunks"][0]
    theirs = pillow_png(img)
    z = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_FILTERED)
    if z.compress(scanlines(theirs)) + z.flush() != b"".join(b for t, b in chunks(theirs) if t == b"IDAT"):
        pytest.skip("Pillow's zlib deflates differently from Python's here: pixels and filters are checked above")
    for kind in CASES:
        for im in CASES[kind]:
            assert encode_png(im) == pillow_png(im), kind
    assert sum(t == b"IDAT" for t, _ in chunks(encode_png(img))) > 1


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 4), np.float32),
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((0, 4, 4), np.uint8),
    ],
)
def test_what_it_cannot_write_is_a_value_error_naming_it(bad: np.ndarray):
    with pytest.raises(ValueError, match=str(bad.shape).replace("(", r"\(").replace(")", r"\)")):
        encode_png(bad)


def test_save_png_writes_arrays_and_pil_images_atomically(tmp_path: Path):
    img = CASES["real"][7]
    assert save_png(img, tmp_path / "a.png") == tmp_path / "a.png"
    save_png(Image.fromarray(img[..., :3], "RGB"), tmp_path / "b.png")  # converted to RGBA
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)
    with Image.open(tmp_path / "b.png") as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im)[..., :3], img[..., :3])
    with pytest.raises(OSError):
        save_png(img, tmp_path / "missing" / "c.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # nothing half-written


def test_make_grid_lays_sprites_out_row_major_with_transparent_gaps():
    sprites = np.stack(CASES["real"][:5])
    grid = make_grid(sprites, ncols=3, scale=2, pad=1)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 33 + 1, 3 * 33 + 1, 4)
    assert np.array_equal(grid[1 + 33 : 1 + 33 + 32 : 2, 1 + 33 : 1 + 33 + 32 : 2], sprites[4])  # row 1, column 1
    assert not grid[0].any() and not grid[:, 0].any() and not grid[33 + 1 :, 2 * 33 + 1 :].any()


def test_rows_filtered_a_block_at_a_time_are_the_same_rows(monkeypatch):
    import scarlet_moon.data.png as png

    img = CASES["several IDAT chunks"][0]
    whole = encode_png(img)
    monkeypatch.setattr(png, "_BLOCK_BYTES", 3 * 200 * 4 + 1)  # 3 rows a block: 100 blocks, each seam crossed
    assert encode_png(img) == whole
    monkeypatch.setattr(png, "_BLOCK_BYTES", 1)  # one row a block
    assert scanlines(encode_png(img)) == scanlines(pillow_png(img))


def test_memory_stays_bounded_for_a_large_image():
    import tracemalloc

    img = np.zeros((4096, 1024, 4), np.uint8)  # 16 MiB: a preview grid of ~16k sprites
    img[::3, ::5] = (200, 30, 60, 255)
    tracemalloc.start()
    try:
        data = encode_png(img)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * img.nbytes, peak  # the output and a few blocks' temporaries, not ~40x the image
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), img)
