"""scarlet_moon.data.sprites: the four input kinds, their errors, the bundled set, model range, splits."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_sprites
from PIL import Image

from scarlet_moon.data.sprites import SpriteSet, apply_background_key, bundled_data_path, load_sprites, split_holdout
from scarlet_moon.diffusion.scaling import from_model_range, to_model_range
from scarlet_moon.errors import BadInput

BUNDLED_NAMES = ("creature", "item", "consumable", "spell", "terrain", "hero")
BUNDLED_FINGERPRINT = "b579e384bc6de229"  # runs resume and the classifier cache compare it


def save_npy(d: Path, imgs: np.ndarray, onehot: np.ndarray) -> Path:
    d.mkdir(exist_ok=True)
    np.save(d / "sprites.npy", imgs)
    np.save(d / "sprites_labels.npy", onehot)
    return d


def png_tree(root: Path, spec: dict[str, list[Image.Image]]) -> Path:
    """root/<label>/<i>.png for each label."""
    for label, images in spec.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(images):
            im.save(root / label / f"{i:02d}.png")
    return root


def solid(mode: str, colour, size=(8, 8)) -> Image.Image:
    return Image.new(mode, size, colour)


def tileset(d: Path, rows: list[str], tile: int = 8, grid=(3, 4)) -> Path:
    """A grid[0] x grid[1] sheet of distinct opaque cells + labels.csv; returns the folder."""
    d.mkdir(exist_ok=True)
    sheet = np.zeros((grid[0] * tile, grid[1] * tile, 4), np.uint8)
    for r in range(grid[0]):
        for c in range(grid[1]):
            sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = (r * 60, c * 60, 7, 255)
    Image.fromarray(sheet, "RGBA").save(d / "sheet.png")
    (d / "labels.csv").write_text("row,col,label,name\n" + "".join(f"{ln}\n" for ln in rows))
    return d


def bad(match: str):
    return pytest.raises(BadInput, match=match)


# --- the bundled set ---------------------------------------------------------------------------


def test_bundled_set_loads_963_sprites_with_hero_as_label_5():
    ds = load_sprites()
    assert ds.images.shape == (963, 16, 16, 4) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (963,)
    assert ds.label_names == BUNDLED_NAMES and ds.label_names[5] == "hero"
    assert ds.counts()["hero"] == 81 == int((ds.labels == 5).sum())
    assert ds.counts() == {"creature": 514, "item": 184, "consumable": 53, "spell": 75, "terrain": 56, "hero": 81}
    assert ds.size == (16, 16) and ds.source == "bundled:angband16" and ds.input_channels == 4
    assert ds.fingerprint() == BUNDLED_FINGERPRINT
    assert bundled_data_path().name == "angband16" and (bundled_data_path() / "labels.txt").is_file()


def test_bundled_csv_and_sheet_give_the_same_set_as_the_npy(tmp_path: Path):
    npy = load_sprites(bundled_data_path())
    via_csv = load_sprites(bundled_data_path() / "labels.csv")  # the CSV path itself, beside the npy files
    folder = tmp_path / "sheet_only"
    folder.mkdir()
    for name in ("labels.csv", "tiles.png", "labels.txt"):
        shutil.copy(bundled_data_path() / name, folder / name)
    via_folder = load_sprites(folder)
    for ds in (via_csv, via_folder):
        assert ds.label_names == npy.label_names == BUNDLED_NAMES
        assert np.array_equal(ds.images, npy.images) and np.array_equal(ds.labels, npy.labels)
        assert ds.fingerprint() == npy.fingerprint()


def test_palette_and_fingerprint_are_stable():
    ds = load_sprites()
    pal = ds.palette(16)
    assert pal.shape == (16, 3) and pal.dtype == np.uint8
    assert len(np.unique(pal, axis=0)) == 16
    assert ds.palette().shape[0] <= 256
    assert load_sprites().fingerprint() == ds.fingerprint()
    other = SpriteSet(ds.images, ds.labels, ds.label_names[::-1], ds.source)
    assert other.fingerprint() != ds.fingerprint()


# --- kind 1: npy -------------------------------------------------------------------------------


def test_npy_rgb_gets_alpha_255_and_default_names(tmp_path: Path):
    imgs, onehot = make_sprites(n=9, size=8, classes=3)
    d = save_npy(tmp_path / "s", imgs[..., :3].copy(), onehot.astype(np.int32))
    ds = load_sprites(d)
    assert ds.images.shape == (9, 8, 8, 4) and (ds.images[..., 3] == 255).all()
    assert np.array_equal(ds.images[..., :3], imgs[..., :3])
    assert ds.label_names == ("0", "1", "2") and ds.labels.tolist() == [0, 1, 2] * 3
    assert ds.input_channels == 3 and ds.source == str(d)
    assert load_sprites(d / "sprites.npy").fingerprint() == ds.fingerprint()


def test_npy_names_from_labels_json_and_txt(npy_set: Path, tmp_path: Path):
    assert load_sprites(npy_set).label_names == ("red", "green", "blue")
    imgs, onehot = make_sprites(n=6, classes=2)
    d = save_npy(tmp_path / "j", imgs, onehot.astype(bool))
    (d / "labels.json").write_text(json.dumps(["cat", "dog"]))
    ds = load_sprites(d)
    assert ds.label_names == ("cat", "dog") and ds.counts() == {"cat": 3, "dog": 3}
    (d / "labels.json").write_text(json.dumps(["cat", "dog", "eel"]))
    with bad("labels.json"):
        load_sprites(d)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([[1, 0], [1, 1], [0, 1], [1, 0]], np.float32),  # a row sums to 2
        np.array([[1, 0], [0.5, 0.5], [0, 1], [1, 0]], np.float32),  # not 0/1
        np.array([[2, -1], [1, 0], [0, 1], [1, 0]], np.int64),  # sums to 1, but not 0/1
    ],
)
def test_npy_labels_not_one_hot(tmp_path: Path, labels: np.ndarray):
    d = save_npy(tmp_path / "s", make_sprites(n=4, classes=2)[0], labels)
    with bad(r"sprites_labels\.npy.*one-hot.*\(row [01] is"):
        load_sprites(d)


@pytest.mark.parametrize(
    "images, labels, file",
    [
        (make_sprites(n=4)[0], np.eye(3)[[0, 1, 2]], "sprites_labels.npy"),  # N mismatch
        (make_sprites(n=4)[0], np.zeros(4), "sprites_labels.npy"),  # wrong ndim
        (make_sprites(n=4)[0], np.array([["a"]] * 4), "sprites_labels.npy"),  # strings
        (make_sprites(n=4)[0].astype(np.float32), np.eye(3)[[0, 1, 2, 0]], "sprites.npy"),  # wrong dtype
        (make_sprites(n=4)[0][..., :2], np.eye(3)[[0, 1, 2, 0]], "sprites.npy"),  # 2 channels
    ],
)
def test_npy_bad_shapes_and_dtypes_name_the_file(tmp_path: Path, images, labels, file: str):
    d = save_npy(tmp_path / "s", images, labels)
    with bad(rf"'{d / file}'"):
        load_sprites(d)


def test_npy_never_unpickles(tmp_path: Path):
    d = tmp_path / "s"
    d.mkdir()
    np.save(d / "sprites.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    np.save(d / "sprites_labels.npy", np.eye(1))
    with bad(r"sprites\.npy' is not a readable"):
        load_sprites(d)
    (d / "sprites.npy").unlink()
    with bad("no sprites.npy"):
        load_sprites(d)


# --- kind 2: PNG folders -----------------------------------------------------------------------


def test_png_folders_convert_modes_and_sort_labels(tmp_path: Path):
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.info["transparency"] = 0
    la = Image.new("LA", (8, 8), (200, 255))
    la.putpixel((1, 1), (200, 0))
    d = png_tree(
        tmp_path / "p", {"zebra": [solid("RGB", (1, 2, 3))], "apple": [pal, la], "mid": [solid("RGBA", (9, 9, 9, 128))]}
    )
    (d / "apple" / "deeper").mkdir()
    solid("RGB", (5, 5, 5)).save(d / "apple" / "deeper" / "ignored.png")
    (d / "apple" / "notes.txt").write_text("not a sprite")
    ds = load_sprites(d)
    assert ds.label_names == ("apple", "mid", "zebra") and ds.labels.tolist() == [0, 0, 1, 2]
    assert ds.images.shape == (4, 8, 8, 4) and ds.input_channels == 4
    assert ds.images[0, 0, 0, 3] == 0 and tuple(ds.images[0, 1, 1]) == (255, 0, 0, 255)  # palette transparency
    assert ds.images[1, 1, 1, 3] == 0 and tuple(ds.images[1, 0, 0]) == (200, 200, 200, 255)
    assert tuple(ds.images[2, 3, 3]) == (9, 9, 9, 128)
    assert tuple(ds.images[3, 0, 0]) == (1, 2, 3, 255)


def test_png_folders_of_rgb_report_3_channels(tmp_path: Path):
    d = png_tree(tmp_path / "p", {"a": [solid("RGB", (1, 2, 3))], "b": [solid("RGB", (4, 5, 6))]})
    assert load_sprites(d).input_channels == 3


def test_png_of_the_wrong_size_names_the_file_and_both_sizes(tmp_path: Path):
    d = png_tree(tmp_path / "p", {"a": [solid("RGB", 1, (16, 16))], "b": [solid("RGB", 1, (17, 16))]})
    with bad(r"'[^']*b/00\.png' is 17x16; every sprite must be 16x16"):
        load_sprites(d)
    with bad(r"a/00\.png' is 16x16; every sprite must be 8x8 like size 8"):
        load_sprites(d, size=8)


def test_text_file_named_png_names_the_file(tmp_path: Path):
    d = png_tree(tmp_path / "p", {"a": [solid("RGB", 1)]})
    (d / "a" / "zz.png").write_text("hello")
    with bad(r"a/zz\.png' is not a readable image"):
        load_sprites(d)


def test_empty_label_folder_names_the_folder(tmp_path: Path):
    d = png_tree(tmp_path / "p", {"a": [solid("RGB", 1)]})
    (d / "empty").mkdir()
    with bad(r"label folder '[^']*empty' holds no \.png"):
        load_sprites(d)
    with bad("no label subfolders"):
        load_sprites(d / "a")  # PNGs but no subfolders


# --- kind 3: tileset sheet + CSV ---------------------------------------------------------------


def test_tileset_csv_order_of_first_appearance(tmp_path: Path):
    d = tileset(tmp_path / "t", ["0,1,wall,a", "2,3,orc,b", "1,0,wall,c"])
    ds = load_sprites(d, tile=8)
    assert ds.label_names == ("wall", "orc") and ds.labels.tolist() == [0, 1, 0]
    assert ds.images.shape == (3, 8, 8, 4)
    assert tuple(ds.images[1, 0, 0]) == (120, 180, 7, 255) and tuple(ds.images[2, 7, 7]) == (60, 0, 7, 255)
    assert load_sprites(d / "labels.csv", tile=8).fingerprint() == ds.fingerprint()
    assert load_sprites(d, size=8).fingerprint() == ds.fingerprint()  # size doubles as the cell size


def test_tileset_labels_txt_sets_the_order(tmp_path: Path):
    d = tileset(tmp_path / "t", ["0,1,wall", "2,3,orc"])
    (d / "labels.txt").write_text("orc\nwall\nghost\n")
    ds = load_sprites(d, tile=8)
    assert ds.label_names == ("orc", "wall", "ghost") and ds.labels.tolist() == [1, 0]
    (d / "labels.txt").write_text("orc\n")
    with bad(r"line 2: label 'wall' is not in labels\.txt"):
        load_sprites(d, tile=8)


def test_tileset_cell_outside_the_sheet_names_the_row(tmp_path: Path):
    d = tileset(tmp_path / "t", ["0,1,wall", "3,0,orc"])
    with bad(r"labels\.csv' line 3: cell row 3, col 0 lies outside the 32x24 sheet"):
        load_sprites(d, tile=8)
    d2 = tileset(tmp_path / "t2", ["0,1,wall", "0,2,orc"])
    with bad(r"line 3: cell row 0, col 2 lies outside the 32x24 sheet at tile size 16"):
        load_sprites(d2)  # default tile 16: the sheet has 1 x 2 cells


def test_tileset_bad_csv(tmp_path: Path):
    d = tileset(tmp_path / "t", ["x,1,wall"])
    with bad(r"labels\.csv' line 2: expected integer"):
        load_sprites(d, tile=8)
    (d / "labels.csv").write_text("r,c,label\n0,0,a\n")
    with bad("header with row,col,label"):
        load_sprites(d, tile=8)
    (d / "other.csv").write_text("row,col,label\n")
    with bad("2 CSV files"):
        load_sprites(d, tile=8)
    with bad("tile 0"):
        load_sprites(d / "labels.csv", tile=0)


# --- kind 4: background key, dropping, errors --------------------------------------------------


def test_background_key_hex_makes_that_colour_transparent(tmp_path: Path):
    imgs = np.full((2, 4, 4, 4), 255, np.uint8)
    imgs[..., :3] = (255, 0, 255)
    imgs[:, 1:3, 1:3, :3] = (10, 20, 30)
    d = save_npy(tmp_path / "s", imgs[..., :3].copy(), np.eye(2))
    for key in ("ff00ff", "#FF00FF", "auto"):
        ds = load_sprites(d, background_key=key)
        assert (ds.images[:, 0, 0] == 0).all() and (ds.images[:, 1:3, 1:3, 3] == 255).all()
        assert int((ds.images[..., 3] == 0).sum()) == 2 * 12


def test_auto_key_is_one_colour_voted_by_opaque_corners():
    imgs = np.zeros((4, 4, 4, 4), np.uint8)
    imgs[..., 3] = 255
    imgs[:3, ..., :3] = (0, 255, 0)  # three sprites on a green background
    imgs[:, 2, 2, :3] = (9, 9, 9)
    imgs[3, ..., :3] = (50, 50, 50)  # one fills its corner: must keep its grey
    out = apply_background_key(imgs, "auto")
    assert (out[:3, 0, 0] == 0).all() and (out[:, 2, 2, 3] == 255).all()
    assert (out[3, :, :, 3] == 255).all()


def test_auto_key_leaves_an_already_transparent_set_alone(caplog):
    """Sprites on a transparent background with black outlines: 'auto' must not key black (it used to
    erase every outline and shadow, and empty whole sprites)."""
    imgs = np.zeros((3, 8, 8, 4), np.uint8)
    imgs[:, 1:7, 1:7] = (0, 0, 0, 255)  # black outline
    imgs[:, 2:6, 2:6] = (200, 60, 30, 255)  # coloured body
    imgs[2, 0, 0] = (0, 0, 0, 255)  # a black corner pixel votes for black
    with caplog.at_level(logging.INFO, logger="scarlet_moon.data.sprites"):
        out = apply_background_key(imgs, "auto")
    assert np.array_equal(out, imgs) and "already have transparent pixels; nothing keyed" in caplog.text


def test_a_key_that_would_empty_a_sprite_is_refused_and_counts_are_said(caplog):
    imgs = np.zeros((2, 4, 4, 4), np.uint8)
    imgs[..., :3], imgs[..., 3] = (255, 0, 255), 255
    imgs[0, 1:3, 1:3, :3] = (9, 9, 9)
    with caplog.at_level(logging.INFO, logger="scarlet_moon.data.sprites"):
        out = apply_background_key(imgs[:1], "ff00ff")
    assert (out[0, 1:3, 1:3, 3] == 255).all() and "12 pixels of 1 sprites made transparent" in caplog.text
    with bad("would empty 1 sprite"):
        apply_background_key(imgs, "ff00ff")


@pytest.mark.parametrize("key", ["ff00f", "gg0000", "#12345678", "red", ""])
def test_bad_background_key_names_the_value(npy_set: Path, key: str):
    if key == "":
        assert load_sprites(npy_set, background_key=key).fingerprint() == load_sprites(npy_set).fingerprint()
        return
    with bad(f"background_key '{key}'.*RRGGBB"):
        load_sprites(npy_set, background_key=key)


def test_fully_transparent_sprites_are_dropped_with_a_warning(tmp_path: Path, caplog):
    imgs, onehot = make_sprites(n=6, classes=2)
    imgs[[1, 4]] = 0
    d = save_npy(tmp_path / "s", imgs, onehot)
    with caplog.at_level(logging.WARNING, logger="scarlet_moon.data.sprites"):
        ds = load_sprites(d)
    assert len(ds.labels) == 4 and "dropped 2 fully transparent" in caplog.text
    np.save(d / "sprites.npy", np.zeros_like(imgs))
    with bad("holds no sprites"):
        load_sprites(d)


def test_missing_or_unknown_path(tmp_path: Path):
    with bad(f"'{tmp_path / 'nope'}' does not exist"):
        load_sprites(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hi")
    with bad(r"x\.txt' is not a sprite set"):
        load_sprites(tmp_path / "x.txt")


# --- model range and splits --------------------------------------------------------------------


def test_model_range_round_trip():
    imgs = load_sprites().images[::97]
    x = to_model_range(imgs)
    assert x.dtype == np.float32 and x.shape == (10, 4, 16, 16)
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() == -1.0 and x.max() == 1.0
    back = from_model_range(x)
    assert back.dtype == np.uint8 and back.shape == imgs.shape and np.array_equal(back, imgs)
    wild = np.array([-3.0, 3.0, np.nan, 0.0], np.float32).reshape(1, 4, 1, 1)
    assert from_model_range(wild).ravel().tolist() == [0, 255, 0, 128]


def test_split_holdout_is_stratified_disjoint_and_seeded():
    ds = load_sprites()
    train, held = split_holdout(ds, 0.2, seed=0)
    assert len(train.labels) + len(held.labels) == 963
    for name, n in ds.counts().items():
        assert held.counts()[name] == round(n * 0.2) and train.counts()[name] == n - round(n * 0.2)
    assert train.label_names == held.label_names == ds.label_names
    assert split_holdout(ds, 0.2, seed=0)[1].fingerprint() == held.fingerprint()
    assert split_holdout(ds, 0.2, seed=1)[1].fingerprint() != held.fingerprint()
    rows = {r.tobytes() for r in held.images.reshape(len(held.images), -1)}
    assert not any(r.tobytes() in rows for r in train.images.reshape(len(train.images), -1)[:50])


def test_split_holdout_keeps_one_training_sprite_per_label():
    ds = SpriteSet(np.ones((3, 2, 2, 4), np.uint8), np.array([0, 1, 1]), ("a", "b"), "t")
    train, held = split_holdout(ds, 0.9, seed=0)
    assert train.counts() == {"a": 1, "b": 1} and held.counts() == {"a": 0, "b": 1}
    with bad("fraction 1.0"):
        split_holdout(ds, 1.0, seed=0)


def test_a_huge_image_is_named_by_its_pixel_count(tmp_path: Path):
    """Pillow refuses a 20000x20000 PNG at open (a decompression bomb), before our own header check: the
    one line still says how big it is and what is allowed, not just the exception's name."""
    import struct
    import zlib

    from scarlet_moon.data.images import read_image
    from scarlet_moon.errors import BadInput

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    p = tmp_path / "huge.png"  # the header of a 20000x20000 RGBA PNG; no pixel data needed to refuse it
    p.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 6, 0, 0, 0))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(BadInput) as err:
        read_image(p)
    assert "400,000,000 pixels" in str(err.value) and "pixels an image may have" in str(err.value)


def test_a_set_whose_label_names_no_model_could_carry_is_refused_when_read(tmp_path: Path):
    """sm train wrote models with a 230-character label that every other command refused."""
    from scarlet_moon.data.sprites import check_label_names, load_sprites

    folder = tmp_path / ("a" * 230)
    folder.mkdir()
    Image.new("RGBA", (8, 8), (200, 0, 0, 255)).save(folder / "0.png")
    with pytest.raises(BadInput, match="230 characters"):
        load_sprites(tmp_path)
    with pytest.raises(BadInput, match="10,001 labels"):
        check_label_names(tuple(f"l{i}" for i in range(10_001)), "x")
    check_label_names(tuple(f"l{i}" for i in range(10_000)), "x")
