"""Sprite sets: loading the four input kinds into one RGBA uint8 array, and scaling for the model.

Kinds, detected from the path (the first that matches wins):
1. Kaggle pixel-art layout: a folder with `sprites.npy` (N x H x W x 3|4 uint8) +
   `sprites_labels.npy` (N x C one-hot, any numeric dtype), optional `labels.txt` (one name per
   line) or `labels.json` (a list of names); default names "0".."C-1". A `sprites.npy` path works too.
2. a tileset sheet + CSV of `row,col,label` (extra columns ignored): a CSV path, or a folder with
   exactly one CSV; the sheet is `<csv stem>.png` beside it, else the only PNG there. Cells are
   `tile` x `tile` (default `size`, else 16). Label order = `labels.txt` (or `labels.json`) beside
   it, which may name labels with no cells, else first appearance in the CSV;
3. a folder with one subfolder of PNGs per label (names = subfolder names, sorted; only the PNGs
   directly inside each subfolder are read); every sprite must have the first one's size, or `size`.
4. any of them with `background_key`: pixels of that exact RRGGBB colour become alpha 0 (RGBA 0).
   `auto` picks ONE colour for the whole set: the most common colour among the opaque top-left
   pixels of the sprites. One colour rather than each sprite's own corner, because a sprite that
   fills its corner (a floor tile, a big monster) would otherwise lose its own corner colour
   everywhere; and sprites whose corner is already transparent do not vote.
Fully transparent sprites are dropped with a warning. The bundled set (`path=None`) is the npy
layout of scarlet_moon/bundled/angband16, whose labels.csv + tiles.png give the identical set.
No torch, click or rich here; bad input raises BadInput naming the file (or value) in one line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scarlet_moon.data.images import image_size, read_image_alpha
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.limits import MAX_LABEL_CHARS, MAX_LABELS, MAX_SIDE, MAX_SPRITES

log = logging.getLogger(__name__)
BUNDLED = Path(__file__).resolve().parents[1] / "bundled" / "angband16"
# The bundled sets by source name (what a card records), with their cell size; `--data` also takes
# the short names of BUNDLED_NAMES. angband32's README says how tools/make_angband32.py built it.
BUNDLED_SETS = {"bundled:angband16": (BUNDLED, 16), "bundled:angband32": (BUNDLED.parent / "angband32", 32)}
# What sheets made by a model of a bundled set must credit (CC BY 3.0 asks for attribution; the
# 16x16 tiles are free for any use, credit given all the same).
ATTRIBUTION = {
    "bundled:angband16": "Trained on Adam Bolt's 16x16 Angband tiles (1998), free for any use",
    "bundled:angband32": "Trained on David Gervais' 32x32 Angband tiles (1999), CC BY 3.0 "
    "(https://creativecommons.org/licenses/by/3.0/), from Debian's angband-data",
}
BUNDLED_NAMES = {"bundled": "bundled:angband16", "bundled-16": "bundled:angband16", "bundled-32": "bundled:angband32"}
Loaded = tuple[np.ndarray, np.ndarray, tuple[str, ...], int]  # images N x H x W x 4, labels N, names, input channels


@dataclass(frozen=True)
class SpriteSet:
    images: np.ndarray  # uint8 N x H x W x 4 (RGBA; RGB input got alpha 255)
    labels: np.ndarray  # int64 N, indices into label_names
    label_names: tuple[str, ...]
    source: str  # the path given, or "bundled:angband16" / "bundled:angband32"
    input_channels: int = 4  # 3 when no input had an alpha channel (RGB), else 4 (for `sm data inspect`)
    options: tuple[tuple[str, Any], ...] = ()  # how it was loaded (tile, background_key, size): to load it again

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every sprite."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def fingerprint(self) -> str:
        """Stable sha256 (first 16 hex chars) of shape, label names, pixels and labels.

        Run resume and the classifier cache compare it: do not change what goes in."""
        h = hashlib.sha256()
        h.update(json.dumps([list(self.images.shape), list(self.label_names)]).encode())
        h.update(np.ascontiguousarray(self.images).tobytes())
        h.update(self.labels.astype("<i8").tobytes())
        return h.hexdigest()[:16]

    def palette(self, max_colors: int = 256) -> np.ndarray:
        """K x 3 uint8: the most frequent opaque (alpha > 0) colours, most frequent first."""
        px = self.images[self.images[..., 3] > 0][:, :3]  # P x 3
        if len(px) == 0:
            return np.zeros((0, 3), np.uint8)
        colours, counts = np.unique(px, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:max_colors]  # ties: lower colour first
        return colours[order].astype(np.uint8)

    def counts(self) -> dict[str, int]:
        """Sprites per label name, in label order (0 for a label with no sprites)."""
        return {n: int((self.labels == i).sum()) for i, n in enumerate(self.label_names)}

    def subset(self, mask: np.ndarray, source: str | None = None) -> "SpriteSet":
        """The sprites selected by a boolean mask or index array, same label names."""
        return SpriteSet(
            self.images[mask],
            self.labels[mask],
            self.label_names,
            source or self.source,
            self.input_channels,
            self.options,
        )


def bundled_source(spec: str | Path | None) -> str | None:
    """The bundled set's source name ('bundled:angband16' for None, 'bundled' and 'bundled-16'; 'bundled:angband32'
    for 'bundled-32'; a recorded source name as itself);
    None for anything else (a path)."""
    if spec is None:
        return "bundled:angband16"
    if not str(spec).startswith("bundled:") and Path(spec).exists():
        return None  # a folder that happens to be called 'bundled' is the user's data
    name = BUNDLED_NAMES.get(str(spec), str(spec))
    return name if name in BUNDLED_SETS else None


def bundled_data_path() -> Path:
    """scarlet_moon/bundled/angband16 (npy layout + labels.csv/tiles.png of the same 963 sprites)."""
    return BUNDLED


def load_sprites(
    path: str | Path | None = None,
    *,
    tile: int | None = None,
    background_key: str | None = None,
    size: int | None = None,
) -> SpriteSet:
    """Load a sprite set of any supported kind; None = the bundled angband16 set, 'bundled-32' (or
    'bundled:angband32') the bundled 32x32 set."""
    source = bundled_source(path)
    if source is not None:
        p, cell = BUNDLED_SETS[source]
        tile = cell if tile is None else tile
    else:
        p = Path(path)  # type: ignore[arg-type]
        source = str(p)
    for name, value in (("tile", tile), ("size", size)):
        if value is not None and not 1 <= value <= MAX_SIDE:
            raise BadInput(f"{arg(name)} {value}: must be a whole number 1..{MAX_SIDE}")
    if background_key:
        parse_key(background_key)  # a bad key fails before any file is read
    if not p.exists():
        raise BadInput(f"data path {str(p)!r} does not exist")
    images, labels, names, channels = _load_kind(p, tile or size or 16, size)
    if size is not None and images.shape[1:3] != (size, size):
        raise BadInput(
            f"{str(p)!r} holds {images.shape[2]}x{images.shape[1]} sprites; {arg('size')} asks for {size}x{size}"
        )
    if background_key:
        images = apply_background_key(images, background_key)
    options = tuple((k, v) for k, v in (("tile", tile), ("background_key", background_key), ("size", size)) if v)
    return _finish(images, labels, names, source, channels, options)


def _load_kind(p: Path, tile: int, size: int | None) -> Loaded:
    if p.is_file() and p.name == "sprites.npy":
        p = p.parent
    if p.is_dir() and (p / "sprites.npy").exists():
        return _load_npy(p)
    if p.is_dir() and (p / "sprites_labels.npy").exists():
        raise BadInput(f"{str(p)!r} has sprites_labels.npy but no sprites.npy")
    if p.is_file() and p.suffix.lower() == ".csv":
        return _load_tileset(p, tile)
    csvs = sorted(p.glob("*.csv")) if p.is_dir() else []
    if len(csvs) == 1:
        return _load_tileset(csvs[0], tile)
    if len(csvs) > 1:
        raise BadInput(
            f"{str(p)!r} holds {len(csvs)} CSV files ({', '.join(c.name for c in csvs)}); pass the CSV file itself"
        )
    if p.is_dir():
        return _load_png_folders(p, size)
    raise BadInput(
        f"data path {str(p)!r} is not a sprite set: expected a folder (sprites.npy, PNG "
        "subfolders, or a sheet + CSV), a sprites.npy or a .csv file"
    )


def _finish(
    images: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
    source: str,
    channels: int,
    options: tuple[tuple[str, Any], ...] = (),
) -> SpriteSet:
    keep = images[..., 3].reshape(len(images), -1).max(axis=1, initial=0) > 0  # N: any visible pixel
    if not keep.all():
        log.warning("dropped %d fully transparent sprites from %s", int((~keep).sum()), source)
    images, labels = images[keep], labels[keep]
    if len(images) == 0:
        raise BadInput(f"data {source!r} holds no sprites (none with a visible pixel)")
    check_label_names(names, source)
    return SpriteSet(np.ascontiguousarray(images), labels.astype(np.int64), tuple(names), source, channels, options)


def check_label_names(names: tuple[str, ...], source: str) -> None:
    """The label names every command takes from a model card (models.card_check): at most MAX_LABELS,
    each non-empty and at most MAX_LABEL_CHARS characters, so a run never writes a model others refuse."""
    if len(names) > MAX_LABELS:
        raise BadInput(f"data {source!r} has {len(names):,} labels; a model takes at most {MAX_LABELS:,}")
    long = next((n for n in names if not n.strip() or len(n) > MAX_LABEL_CHARS), None)
    if long is not None:
        raise BadInput(
            f"data {source!r}: label {long[:40]!r}{'...' if len(long) > 40 else ''} ({len(long)} "
            f"characters) must be non-empty and at most {MAX_LABEL_CHARS} characters"
        )


def _rgba(arr: np.ndarray, where: Path) -> np.ndarray:
    """uint8 N x H x W x 3|4 -> N x H x W x 4 (RGB gets alpha 255)."""
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (3, 4) or 0 in arr.shape[1:3]:
        raise BadInput(f"{str(where)!r}: expected uint8 N x H x W x 3|4, got {arr.dtype} {tuple(arr.shape)}")
    if arr.shape[-1] == 3:
        arr = np.concatenate([arr, np.full(arr.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    return arr


def npy_shape(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy file's header alone; nothing is allocated."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"{str(path)!r} is not a readable .npy array ({str(exc).splitlines()[0][:200]})") from None
    return tuple(int(v) for v in shape), dtype


def _load_array(path: Path, limits: tuple[int, ...]) -> np.ndarray:
    """The array, once its header's shape is within `limits` (one bound per axis)."""
    shape, dtype = npy_shape(path)
    if dtype.hasobject:
        raise BadInput(
            f"{str(path)!r} is not a readable .npy array (it holds Python objects, which are never unpickled)"
        )
    if len(shape) != len(limits) or any(n > lim for n, lim in zip(shape, limits)):
        bounds = " x ".join(f"<= {lim:,}" for lim in limits)
        raise BadInput(
            f"{str(path)!r} holds a {dtype} array of shape {shape}; expected {len(limits)} axes ({bounds}) of numbers"
        )
    try:
        return np.load(path, allow_pickle=False)  # never unpickle: an object array is an error
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"{str(path)!r} is not a readable .npy array ({str(exc).splitlines()[0]})") from None


def _load_npy(d: Path) -> Loaded:
    sp, lp = d / "sprites.npy", d / "sprites_labels.npy"
    if not lp.exists():
        raise BadInput(f"{str(d)!r} has sprites.npy but no sprites_labels.npy")
    raw = _load_array(sp, (MAX_SPRITES, MAX_SIDE, MAX_SIDE, 4))
    if raw.ndim >= 1 and raw.shape[0] == 0:
        raise BadInput(f"{str(sp)!r} holds no sprites (shape {tuple(raw.shape)})")
    images, onehot = _rgba(raw, sp), _load_array(lp, (MAX_SPRITES, MAX_LABELS))
    if onehot.ndim != 2 or len(onehot) != len(images) or onehot.dtype.kind not in "biuf" or onehot.shape[1] < 1:
        raise BadInput(
            f"{str(lp)!r}: expected N x C one-hot with N={len(images)} (numeric), got {onehot.dtype} "
            f"{tuple(onehot.shape)}"
        )
    ok = np.isin(onehot, (0, 1)).all(axis=1) & (onehot.sum(axis=1) == 1)  # N: row is one-hot
    if not ok.all():
        bad = int(np.nonzero(~ok)[0][0])
        raise BadInput(
            f"{str(lp)!r}: labels must be one-hot rows of 0/1 summing to 1 (row {bad} is {onehot[bad].tolist()})"
        )
    names = _label_names(d, onehot.shape[1])
    labels = onehot.argmax(axis=1)
    empty = [names[i] for i in range(len(names)) if not (labels == i).any()]
    if empty:
        log.warning("labels with no sprites: %s", ", ".join(empty))
    return images, labels, names, int(raw.shape[-1])


def _read_names(d: Path) -> tuple[list[str], Path] | None:
    """Names from labels.txt (wins) or labels.json in folder d, with the file read; None if neither."""
    txt, js = d / "labels.txt", d / "labels.json"
    if txt.is_file():
        try:
            return [ln.strip() for ln in txt.read_text(encoding="utf-8-sig").splitlines() if ln.strip()], txt
        except UnicodeDecodeError:
            raise BadInput(f"{str(txt)!r} is not UTF-8 text") from None
    if not js.is_file():
        return None
    try:
        names = json.loads(js.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInput(f"{str(js)!r} is not valid JSON; expected a list of label names") from None
    if not isinstance(names, list) or not all(isinstance(x, str) and x.strip() for x in names):
        raise BadInput(f"{str(js)!r}: expected a JSON list of non-empty label names")
    return [x.strip() for x in names], js


def _label_names(d: Path, n: int) -> tuple[str, ...]:
    found = _read_names(d)
    if found is None:
        return tuple(str(i) for i in range(n))
    names, where = found
    if len(names) != n or len(set(names)) != n:
        raise BadInput(f"{str(where)!r} names {len(names)} labels ({len(set(names))} distinct); the data has {n}")
    return tuple(names)


def _load_png_folders(d: Path, size: int | None) -> Loaded:
    from scarlet_moon.data.folders import png_folder

    tree = png_folder(d)
    if not tree.labelled:
        raise BadInput(f"{str(d)!r} has no label subfolders of PNGs (and no sprites.npy or CSV + sheet)")
    if tree.loose:
        log.warning("PNGs directly in %s are ignored: sprites go in one subfolder per label", d)
    images, labels, any_alpha = [], [], False
    want: tuple[int, int] | None = (size, size) if size else None
    first: Path | None = None
    for k, (name, files) in enumerate(tree.labelled):
        if not files:
            raise BadInput(f"label folder {str(d / name)!r} holds no .png files")
        for f in files:
            w, h = image_size(f)  # the header: a huge file is refused before it is decoded
            if want is None:
                if max(w, h) > MAX_SIDE:
                    raise BadInput(f"{str(f)!r} is {w}x{h}; sprites may be at most {MAX_SIDE}x{MAX_SIDE}")
                want, first = (h, w), f
            if (h, w) != want:
                ref = f"the first sprite {str(first)!r}" if first else f"{arg('size')} {size}"
                raise BadInput(f"{str(f)!r} is {w}x{h}; every sprite must be {want[1]}x{want[0]} like {ref}")
            arr, alpha = read_image_alpha(f)
            images.append(arr)
            labels.append(k)
            any_alpha |= alpha
    return np.stack(images), np.asarray(labels), tuple(name for name, _ in tree.labelled), 4 if any_alpha else 3


def _find_sheet(csv_path: Path) -> Path:
    """`<csv stem>.png` beside the CSV, else the only PNG there."""
    same = csv_path.with_suffix(".png")
    if same.is_file():
        return same
    sheets = sorted(p for p in csv_path.parent.glob("*") if p.suffix.lower() == ".png" and p.is_file())
    if len(sheets) != 1:
        raise BadInput(
            f"{str(csv_path.parent)!r}: expected one PNG sheet beside {csv_path.name} "
            f"(or {same.name}), found {len(sheets)}"
        )
    return sheets[0]


def _load_tileset(csv_path: Path, tile: int) -> Loaded:
    sheet, alpha = read_image_alpha(_find_sheet(csv_path))  # sheet: H x W x 4
    rows = _read_cells(csv_path)
    from scarlet_moon import memory

    # each row: its tile, a view and a tuple while read, then copies in the stacked set and its checks
    memory.check(
        len(rows) * (memory.image_bytes(1, tile, tile, copies=6) + 600),
        f"{str(csv_path)!r}: {len(rows):,} cells of {tile}x{tile}",
    )
    order = list(dict.fromkeys(label for _, _, label, _ in rows))  # first appearance
    found, names_file = _read_names(csv_path.parent), "the CSV"
    if found is not None:
        names, where = found
        if len(set(names)) != len(names):
            raise BadInput(f"{str(where)!r} repeats a label name")
        unused = [n for n in names if n not in order]
        if unused:
            log.warning("labels with no sprites: %s", ", ".join(unused))
        order, names_file = names, where.name
    index = {name: i for i, name in enumerate(order)}
    images, labels = [], []
    for r, c, label, line in rows:
        y, x = r * tile, c * tile
        if y + tile > sheet.shape[0] or x + tile > sheet.shape[1]:
            raise BadInput(
                f"{str(csv_path)!r} line {line}: cell row {r}, col {c} lies outside the "
                f"{sheet.shape[1]}x{sheet.shape[0]} sheet at tile size {tile}"
            )
        if label not in index:
            raise BadInput(
                f"{str(csv_path)!r} line {line}: label {label!r} is not in {names_file} ({', '.join(order)})"
            )
        images.append(sheet[y : y + tile, x : x + tile])
        labels.append(index[label])
    return np.stack(images), np.asarray(labels), tuple(order), 4 if alpha else 3


def _read_cells(csv_path: Path) -> list[tuple[int, int, str, int]]:
    """(row, col, label, line number) per CSV record; header row,col,label (+ any other columns)."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{str(csv_path)!r} is not UTF-8 text") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if not {"row", "col", "label"} <= set(header):
        raise BadInput(f"{str(csv_path)!r}: expected a header with row,col,label (got {','.join(header)!r})")
    at = {k: header.index(k) for k in ("row", "col", "label")}
    out = []
    for rec in reader:
        if not any(v.strip() for v in rec):
            continue
        line = reader.line_num
        try:
            r, c, label = int(rec[at["row"]]), int(rec[at["col"]]), rec[at["label"]].strip()
        except (IndexError, ValueError):
            raise BadInput(f"{str(csv_path)!r} line {line}: expected integer row,col and a label, got {rec}") from None
        if r < 0 or c < 0 or not label:
            raise BadInput(f"{str(csv_path)!r} line {line}: negative row/col or empty label ({rec})")
        out.append((r, c, label, line))
    if not out:
        raise BadInput(f"{str(csv_path)!r} lists no cells")
    return out


def parse_key(key: str) -> tuple[int, int, int] | None:
    """'RRGGBB' / '#RRGGBB' -> (r, g, b); 'auto' -> None."""
    k = key.strip().lower()
    if k == "auto":
        return None
    k = k[1:] if k.startswith("#") else k
    if len(k) != 6 or any(ch not in "0123456789abcdef" for ch in k):
        raise BadInput(f"{arg('background_key')} {key!r}: expected RRGGBB hex (e.g. ff00ff or #ff00ff) or 'auto'")
    return int(k[0:2], 16), int(k[2:4], 16), int(k[4:6], 16)


def auto_key(images: np.ndarray) -> tuple[int, int, int] | None:
    """The most common colour among the opaque top-left pixels (ties: lowest); None if none is opaque."""
    corners = images[:, 0, 0]  # N x 4
    opaque = corners[corners[:, 3] == 255][:, :3]
    if len(opaque) == 0:
        return None
    colours, counts = np.unique(opaque, axis=0, return_counts=True)
    return tuple(int(v) for v in colours[int(np.argmax(counts))])  # type: ignore[return-value]


def apply_background_key(images: np.ndarray, key: str, paths: list[str] | None = None) -> np.ndarray:
    """A copy where pixels of the key colour (any alpha) become RGBA 0; see the module doc for 'auto'.

    'auto' keys nothing in a set that already has transparent pixels (its background is already
    transparent: keying would erase outlines and shadows). Says how many pixels and sprites it
    changed; a sprite the key would empty is BadInput naming it (`paths`: names to show)."""
    rgb = parse_key(key)
    if rgb is None:
        if (images[..., 3] < 255).any():
            log.warning("automatic background key: the sprites already have transparent pixels; nothing keyed")
            return images.copy()
        rgb = auto_key(images)
        if rgb is None:
            log.warning("automatic background key: no sprite has an opaque top-left pixel; nothing keyed")
            return images.copy()
    keyed = (images[..., :3] == np.array(rgb, np.uint8)).all(axis=-1) & (images[..., 3] > 0)  # N x H x W
    emptied = np.flatnonzero(keyed.any(axis=(1, 2)) & ~((images[..., 3] > 0) & ~keyed).any(axis=(1, 2)))
    if len(emptied):
        first = paths[emptied[0]] if paths else f"sprite {int(emptied[0])}"
        raise BadInput(
            f"{arg('background_key')} #{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x} would empty {len(emptied)} "
            f"sprite(s), the first {first}: every pixel of it is that colour"
        )
    out = images.copy()
    out[keyed] = 0
    log.info(
        "background key #%02x%02x%02x: %d pixels of %d sprites made transparent",
        *rgb,
        int(keyed.sum()),
        int(keyed.any(axis=(1, 2)).sum()),
    )
    return out


def split_holdout(ds: SpriteSet, fraction: float, seed: int) -> tuple[SpriteSet, SpriteSet]:
    """(train, held-out), stratified: round(fraction * n) of each label held out, but a label keeps
    at least one training sprite. Same seed, same split."""
    if not 0.0 <= fraction < 1.0:
        raise BadInput(f"holdout fraction {fraction}: must be >= 0 and < 1")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(ds.labels), bool)
    for k in range(len(ds.label_names)):
        idx = np.nonzero(ds.labels == k)[0]
        n = min(int(round(len(idx) * fraction)), max(len(idx) - 1, 0))
        held[rng.permutation(idx)[:n]] = True
    return ds.subset(~held, f"{ds.source} (train)"), ds.subset(held, f"{ds.source} (held-out)")
