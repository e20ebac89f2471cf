"""Fuzzing every loader with hypothesis: random bytes and random valid-looking files must give a
clean BadInput (or a correct load), never another exception or a hang."""

from __future__ import annotations

import io
import json
import struct
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from scarlet_moon.cli.cmd_doctor import tiny_onnx_bytes
from scarlet_moon.errors import BadInput

FUZZ = settings(
    max_examples=30,
    deadline=timedelta(seconds=5),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PNG_SIG = b"\x89PNG\r\n\x1a\n"
MODES = ["RGBA", "RGB", "L", "LA", "P", "1", "I;16"]


def clean(load: Callable[[], Any]) -> Any:
    """load() or None when it raised BadInput (one line); any other exception fails the test."""
    try:
        return load()
    except BadInput as exc:
        assert str(exc) and "\n" not in str(exc).strip(), repr(str(exc))
        return None


def png_bytes(size: tuple[int, int], mode: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), np.uint8), "RGBA").convert(mode)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


valid_png = st.builds(
    png_bytes, st.tuples(st.integers(1, 6), st.integers(1, 6)), st.sampled_from(MODES), st.integers(0, 2**16)
)
any_png = st.one_of(
    valid_png,
    st.binary(max_size=80),
    st.binary(max_size=80).map(PNG_SIG.__add__),
    st.tuples(valid_png, st.integers(1, 60)).map(lambda t: t[0][: t[1]]),
)  # truncated


def in_tmp(fn: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="sm-fuzz-") as d:
        fn(Path(d))


def check_set(ds) -> None:
    """A correct load: RGBA uint8 sprites, labels within the names."""
    assert ds.images.dtype == np.uint8 and ds.images.ndim == 4 and ds.images.shape[-1] == 4
    assert len(ds.images) == len(ds.labels) > 0
    assert 0 <= ds.labels.min() and ds.labels.max() < len(ds.label_names)


# ------------------------------------------------------------------ sprite sets
@FUZZ
@given(st.lists(st.lists(any_png, min_size=0, max_size=3), min_size=1, max_size=3))
def test_png_folders(folders: list[list[bytes]]):
    from scarlet_moon.data.sprites import load_sprites

    def run(root: Path) -> None:
        for k, files in enumerate(folders):
            (root / f"label{k}").mkdir()
            for i, data in enumerate(files):
                (root / f"label{k}" / f"{i}.png").write_bytes(data)
        ds = clean(lambda: load_sprites(root))
        if ds is not None:
            check_set(ds)

    in_tmp(run)


sheet_png = st.one_of(
    st.builds(
        png_bytes,
        st.tuples(st.sampled_from([8, 16, 24, 32, 48, 9, 40]), st.sampled_from([8, 16, 32, 64, 12, 33])),
        st.sampled_from(MODES),
        st.integers(0, 2**16),
    ),
    any_png,
)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(["", "a/", "b/", "c/down/", "c/left/"]), sheet_png), min_size=1, max_size=4),
    st.sampled_from(["rows", "columns", "rpgmaker", "strips", "frames"]),
    st.sampled_from([None, "8", "16x8", "0", "x", "8x99999"]),
    st.sampled_from([None, 1, 3, 0]),
    st.sampled_from([None, "down,left,right,up", "s,n", "a,,b", "ffffff"]),
)
def test_animated_sets(files: list[tuple[str, bytes]], layout: str, frame, frames, directions):
    from scarlet_moon.data.anim import load_anim

    def run(root: Path) -> None:
        for i, (folder, data) in enumerate(files):
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / ("down.png" if i % 2 else f"{i}.png")).write_bytes(data)
        a = clean(lambda: load_anim(root, layout, frame=frame, frames=frames, directions=directions))
        if a is not None:
            n, d, f, h, w = a.shape
            assert a.frames.dtype == np.uint8 and n == len(a.labels) == len(a.names) > 0
            assert d == len(a.directions) and f >= 1 and min(h, w) >= 8
            assert 0 <= a.labels.min() and a.labels.max() < len(a.label_names)

    in_tmp(run)


npy_file = st.one_of(
    st.binary(max_size=120),
    st.binary(max_size=120).map(lambda b: b"\x93NUMPY\x01\x00" + b),
    hnp.arrays(
        st.sampled_from([np.uint8, np.float32, np.int64, np.bool_, np.float16, np.complex64, "U2"]),
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
    ).map(lambda a: _npy(a)),
)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


@FUZZ
@given(npy_file, npy_file, st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=40)))
def test_npy_pair(sprites: bytes, labels: bytes, names: bytes | str | None):
    from scarlet_moon.data.sprites import load_sprites

    def run(root: Path) -> None:
        (root / "sprites.npy").write_bytes(sprites)
        (root / "sprites_labels.npy").write_bytes(labels)
        if isinstance(names, bytes):
            (root / "labels.json").write_bytes(names)
        elif isinstance(names, str):
            (root / "labels.txt").write_text(names, encoding="utf-8")
        ds = clean(lambda: load_sprites(root))
        if ds is not None:
            check_set(ds)

    in_tmp(run)


def test_npy_object_array_is_refused_not_unpickled(tmp_path: Path):
    from scarlet_moon.data.sprites import load_sprites

    np.save(tmp_path / "sprites.npy", np.array([object()], dtype=object), allow_pickle=True)
    np.save(tmp_path / "sprites_labels.npy", np.eye(1, dtype=np.float32))
    with pytest.raises(BadInput, match="not a readable .npy array"):
        load_sprites(tmp_path)


cell = st.tuples(st.integers(-2, 40), st.integers(-2, 40), st.sampled_from(["a", "b", "", " c ", "a,b", "\u00e9"]))
csv_text = st.one_of(
    st.text(max_size=80),
    st.lists(cell, max_size=6).map(lambda rows: "row,col,label\n" + "".join(f"{r},{c},{lab}\n" for r, c, lab in rows)),
)


@FUZZ
@given(csv_text, any_png, st.one_of(st.none(), st.integers(-1, 5)), st.one_of(st.none(), st.text(max_size=20)))
def test_tileset_and_csv(text: str, sheet: bytes, tile: int | None, names: str | None):
    from scarlet_moon.data.sprites import load_sprites

    def run(root: Path) -> None:
        (root / "tiles.csv").write_text(text, encoding="utf-8")
        (root / "tiles.png").write_bytes(sheet)
        if names is not None:
            (root / "labels.txt").write_text(names, encoding="utf-8")
        ds = clean(lambda: load_sprites(root / "tiles.csv", tile=tile))
        if ds is not None:
            check_set(ds)

    in_tmp(run)


# ------------------------------------------------------------------ palettes
palette_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.text(alphabet="0123456789 #abcdefABCDEF-", max_size=12), max_size=6).map("\n".join),
    st.lists(st.text(alphabet="0123456789 -", max_size=12), max_size=6).map(
        lambda ls: "GIMP Palette\n" + "\n".join(ls)
    ),
    st.lists(st.text(alphabet="0123456789 ", max_size=12), max_size=6).map(
        lambda ls: f"JASC-PAL\n0100\n{len(ls)}\n" + "\n".join(ls)
    ),
)


@FUZZ
@given(
    st.sampled_from([".gpl", ".hex", ".pal", ".png", ".gif", ".txt"]),
    st.one_of(palette_text.map(lambda t: t.encode("utf-8")), st.binary(max_size=80), any_png),
)
def test_palette_files(ext: str, data: bytes):
    from scarlet_moon.data.palettes import load_palette

    def run(root: Path) -> None:
        path = root / f"p{ext}"
        path.write_bytes(data)
        pal = clean(lambda: load_palette(path))
        if pal is not None:
            assert pal.dtype == np.uint8 and pal.ndim == 2 and pal.shape[1] == 3 and len(pal) >= 1

    in_tmp(run)


# ------------------------------------------------------------------ checkpoints
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**70) | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
card_like = st.fixed_dictionaries(
    {"format": st.sampled_from(["scarlet-moon-checkpoint", "other"])},
    optional={
        "label_names": json_values,
        "image_size": json_values,
        "channels": json_values,
        "schedule": json_values,
        "prediction": json_values,
        "config": json_values,
        "palette": json_values,
    },
)
GOOD_CARD = {
    "format": "scarlet-moon-checkpoint",
    "label_names": ["a", "b"],
    "image_size": [8, 8],
    "channels": 4,
    "schedule": {"kind": "cosine", "num_steps": 50, "beta_start": 0.0001, "beta_end": 0.02},
    "prediction": "v",
    "config": {"sample_steps": 4},
    "palette": [[1, 2, 3]],
}
# every key a card needs, each either right or any JSON value: what a tampered file could hold
full_card = st.fixed_dictionaries(
    {k: st.one_of(st.just(v), json_values) if k != "format" else st.just(v) for k, v in GOOD_CARD.items()}
)
tensor_entry = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "U8", "XX", 3]),
        "shape": st.lists(st.integers(-1, 4), max_size=3),
        "data_offsets": st.lists(st.integers(-1, 64), max_size=3) | json_values,
    }
)
header = st.one_of(
    json_values,
    st.dictionaries(st.text(max_size=6), tensor_entry, max_size=3),
    st.builds(
        lambda t, meta: {**t, "__metadata__": {"scarlet_moon": json.dumps(meta)}},
        st.dictionaries(st.text(max_size=6), tensor_entry, max_size=2),
        st.one_of(card_like, full_card),
    ),
)


def _safetensors(head: Any, tail: bytes, pad: bool) -> bytes:
    raw = json.dumps(head).encode()
    raw += b" " * (-len(raw) % 8 if pad else 0)
    return struct.pack("<Q", len(raw)) + raw + tail


def exercise_card(path: Path) -> None:
    """read_card, then everything `sm info` and sampling read from the card, then the weights."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.models.checkpoint import load_checkpoint

    card = clean(lambda: read_card(path))
    if card is None:
        return
    card.summary(), card.label_names, card.size, card.channels, card.schedule, card.palette, card.defaults()
    clean(lambda: load_checkpoint(path))


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=100),
        st.builds(_safetensors, header, st.binary(max_size=64), st.booleans()),
        full_card.map(lambda meta: _safetensors({"__metadata__": {"scarlet_moon": json.dumps(meta)}}, b"", True)),
    )
)
def test_checkpoint_random_header(data: bytes):
    in_tmp(lambda root: ((root / "m.safetensors").write_bytes(data), exercise_card(root / "m.safetensors")))


@settings(
    max_examples=30,
    deadline=timedelta(seconds=10),
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut=st.floats(0.0, 1.0))
def test_checkpoint_truncated(tiny_model: Path, cut: float):
    blob = tiny_model.read_bytes()
    keep = int(len(blob) * cut)

    def run(root: Path) -> None:
        path = root / "m.safetensors"
        path.write_bytes(blob[:keep])
        exercise_card(path)
        if keep < len(blob):
            from scarlet_moon.backends import read_card

            with pytest.raises(BadInput):
                read_card(path)  # a cut-off copy is caught from its header alone

    in_tmp(run)


# ------------------------------------------------------------------ ONNX files
def _field(num: int, payload: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    return varint((num << 3) | 2) + varint(len(payload)) + payload


def with_metadata(props: dict[str, str]) -> bytes:
    """The doctor's tiny Identity model plus ModelProto.metadata_props (field 14) entries."""
    entries = b"".join(_field(14, _field(1, k.encode()) + _field(2, v.encode())) for k, v in props.items())
    return tiny_onnx_bytes() + entries


onnx_ours = st.fixed_dictionaries(
    {
        "scarlet_moon.format": st.just("scarlet-moon-onnx"),
        "scarlet_moon.card": full_card.map(json.dumps),
        "scarlet_moon.io": st.one_of(
            json_values.map(json.dumps),
            st.text(max_size=6),
            st.fixed_dictionaries({"format_version": json_values}).map(json.dumps),
        ),
    }
)
onnx_props = onnx_ours | st.dictionaries(
    st.sampled_from(["scarlet_moon.format", "scarlet_moon.card", "scarlet_moon.io", "other"]),
    st.one_of(
        st.just("scarlet-moon-onnx"), st.text(max_size=10), json_values.map(json.dumps), card_like.map(json.dumps)
    ),
    max_size=4,
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=100),
        onnx_props.map(with_metadata),
        st.tuples(onnx_props.map(with_metadata), st.integers(0, 200)).map(lambda t: t[0][: t[1]]),
    )
)
def test_onnx_files(data: bytes):
    pytest.importorskip("onnxruntime")
    from scarlet_moon.backends.onnx_meta import read_onnx_card

    def run(root: Path) -> None:
        path = root / "m.onnx"
        path.write_bytes(data)
        card = clean(lambda: read_onnx_card(path))
        if card is not None:
            card.summary(), card.label_names, card.size, card.channels, card.schedule, card.defaults()

    in_tmp(run)
