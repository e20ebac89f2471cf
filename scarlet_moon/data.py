"""Sprite sets: loading the four input kinds into one RGBA uint8 array, and scaling for the model.

Kinds, detected from the path:
1. Kaggle pixel-art layout: `sprites.npy` (N x H x W x 3|4 uint8) + `sprites_labels.npy` (N x C
   one-hot), optional `labels.txt` (one name per line) or `labels.json` (a list of names);
2. a folder with one subfolder of PNGs per label (label names = subfolder names, sorted);
3. a tileset sheet + CSV of `row,col,label` (a CSV path, or a folder with one CSV and one PNG),
   cut into `tile` x `tile` cells; label order = `labels.txt` beside it, else first appearance;
4. any of them with `background_key`: that RRGGBB colour (or `auto`: each sprite's top-left
   pixel) becomes transparent.
No torch, click or rich here; bad input raises BadInput naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from scarlet_moon.errors import BadInput

log = logging.getLogger(__name__)
BUNDLED = Path(__file__).parent / "bundled" / "angband16"


@dataclass(frozen=True)
class SpriteSet:
    images: np.ndarray              # uint8 N x H x W x 4
    labels: np.ndarray              # int64 N, indices into label_names
    label_names: tuple[str, ...]
    source: str

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([list(self.images.shape), list(self.label_names)]).encode())
        h.update(np.ascontiguousarray(self.images).tobytes())
        h.update(self.labels.astype("<i8").tobytes())
        return h.hexdigest()[:16]

    def palette(self, max_colors: int = 256) -> np.ndarray:
        """K x 3 uint8: the most frequent opaque colours, most frequent first."""
        px = self.images[self.images[..., 3] > 0][:, :3]
        if len(px) == 0:
            return np.zeros((0, 3), np.uint8)
        colours, counts = np.unique(px, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:max_colors]
        return colours[order].astype(np.uint8)

    def counts(self) -> dict[str, int]:
        return {n: int((self.labels == i).sum()) for i, n in enumerate(self.label_names)}

    def subset(self, mask: np.ndarray, source: str | None = None) -> "SpriteSet":
        return SpriteSet(self.images[mask], self.labels[mask], self.label_names, source or self.source)


def bundled_data_path() -> Path:
    return BUNDLED


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x C -> float32 N x C x H x W in [-1, 1]."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 127.5 - 1.0


def from_model_range(x: np.ndarray) -> np.ndarray:
    """float N x C x H x W in [-1, 1] -> uint8 N x H x W x C (clipped, rounded)."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def load_sprites(path: str | Path | None = None, *, tile: int | None = None, background_key: str | None = None,
                 size: int | None = None) -> SpriteSet:
    """Load a sprite set of any supported kind; None = the bundled angband16 set."""
    p = BUNDLED if path is None else Path(path)
    source = "bundled:angband16" if path is None else str(p)
    if not p.exists():
        raise BadInput(f"data path {str(p)!r} does not exist")
    if p.is_dir() and (p / "sprites.npy").exists():
        images, labels, names = _load_npy(p)
    elif p.is_file() and p.suffix.lower() == ".csv":
        images, labels, names = _load_tileset(p, p.parent, tile or 16)
    elif p.is_dir() and len(list(p.glob("*.csv"))) == 1:
        images, labels, names = _load_tileset(next(p.glob("*.csv")), p, tile or 16)
    elif p.is_dir():
        images, labels, names = _load_png_folders(p, size)
    else:
        raise BadInput(f"data path {str(p)!r} is not a sprite set: expected a folder (sprites.npy, PNG "
                       "subfolders, or a sheet + CSV) or a .csv file")
    if background_key:
        images = apply_background_key(images, background_key)
    return _finish(images, labels, names, source)


def _finish(images: np.ndarray, labels: np.ndarray, names: tuple[str, ...], source: str) -> SpriteSet:
    keep = images[..., 3].reshape(len(images), -1).max(axis=1) > 0
    if not keep.all():
        log.warning("dropped %d fully transparent sprites", int((~keep).sum()))
    images, labels = images[keep], labels[keep]
    if len(images) == 0:
        raise BadInput(f"data {source!r} holds no sprites")
    return SpriteSet(np.ascontiguousarray(images), labels.astype(np.int64), tuple(names), source)


def _rgba(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise BadInput(f"{where}: expected uint8 N x H x W x 3|4, got {arr.dtype} {tuple(arr.shape)}")
    if arr.shape[-1] == 3:
        arr = np.concatenate([arr, np.full(arr.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    return arr


def _load_npy(d: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    sp, lp = d / "sprites.npy", d / "sprites_labels.npy"
    if not lp.exists():
        raise BadInput(f"{str(d)!r} has sprites.npy but no sprites_labels.npy")
    try:
        images = np.load(sp, allow_pickle=False)
        onehot = np.load(lp, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"{str(sp)!r} or {lp.name}: not a readable .npy file ({exc})") from None
    images = _rgba(images, str(sp))
    if onehot.ndim != 2 or len(onehot) != len(images) or onehot.dtype.kind not in "biuf":
        raise BadInput(f"{str(lp)!r}: expected N x C one-hot with N={len(images)}, got {onehot.dtype} "
                       f"{tuple(onehot.shape)}")
    if not (np.isin(onehot, (0, 1)).all() and (onehot.sum(axis=1) == 1).all()):
        bad = int(np.nonzero(~(np.isin(onehot, (0, 1)).all(axis=1) & (onehot.sum(axis=1) == 1)))[0][0])
        raise BadInput(f"{str(lp)!r}: labels are not one-hot (row {bad} is {onehot[bad].tolist()})")
    names = _label_names(d, onehot.shape[1])
    labels = onehot.argmax(axis=1)
    empty = [names[i] for i in range(len(names)) if not (labels == i).any()]
    if empty:
        log.warning("labels with no sprites: %s", ", ".join(empty))
    return images, labels, names


def _label_names(d: Path, n: int) -> tuple[str, ...]:
    if (d / "labels.txt").exists():
        names = [ln.strip() for ln in (d / "labels.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
        where = d / "labels.txt"
    elif (d / "labels.json").exists():
        try:
            names = json.loads((d / "labels.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadInput(f"{str(d / 'labels.json')!r} is not valid JSON") from None
        where = d / "labels.json"
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise BadInput(f"{str(where)!r}: expected a JSON list of label names")
    else:
        return tuple(str(i) for i in range(n))
    if len(names) != n or len(set(names)) != n:
        raise BadInput(f"{str(where)!r} names {len(names)} labels ({len(set(names))} distinct); the data has {n}")
    return tuple(names)


def read_png(path: Path) -> np.ndarray:
    """Any PNG mode -> uint8 H x W x 4 (palette transparency honoured)."""
    try:
        with Image.open(path) as im:
            im.load()
            rgba = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise BadInput(f"{str(path)!r} is not a readable image ({type(exc).__name__})") from None
    return np.asarray(rgba, np.uint8)


def _load_png_folders(d: Path, size: int | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    folders = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise BadInput(f"{str(d)!r} has no label subfolders (and no sprites.npy or CSV)")
    images, labels = [], []
    want: tuple[int, int] | None = (size, size) if size else None
    first = None
    for k, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
        if not files:
            raise BadInput(f"label folder {str(folder)!r} holds no .png files")
        for f in files:
            arr = read_png(f)
            if want is None:
                want, first = arr.shape[:2], f
            if arr.shape[:2] != want:
                ref = f"the first sprite {first.name}" if first else f"--size {size}"
                raise BadInput(f"{str(f)!r} is {arr.shape[1]}x{arr.shape[0]}; every sprite must be "
                               f"{want[1]}x{want[0]} like {ref}")
            images.append(arr)
            labels.append(k)
    return np.stack(images), np.asarray(labels), tuple(p.name for p in folders)


def _load_tileset(csv_path: Path, folder: Path, tile: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    sheets = [p for p in folder.glob("*.png")]
    if len(sheets) != 1:
        raise BadInput(f"{str(folder)!r}: expected exactly one PNG sheet beside {csv_path.name}, found {len(sheets)}")
    if tile < 1:
        raise BadInput(f"--tile {tile}: must be >= 1")
    sheet = read_png(sheets[0])
    rows = _read_cells(csv_path)
    order = list(dict.fromkeys(label for _, _, label, _ in rows))
    if (folder / "labels.txt").exists():
        order = list(_label_names(folder, len(order)))
    images, labels = [], []
    for r, c, label, line in rows:
        y, x = r * tile, c * tile
        if y + tile > sheet.shape[0] or x + tile > sheet.shape[1]:
            raise BadInput(f"{str(csv_path)!r} line {line}: cell row {r}, col {c} lies outside the "
                           f"{sheet.shape[1]}x{sheet.shape[0]} sheet at tile size {tile}")
        if label not in order:
            raise BadInput(f"{str(csv_path)!r} line {line}: label {label!r} is not in labels.txt")
        images.append(sheet[y:y + tile, x:x + tile])
        labels.append(order.index(label))
    return np.stack(images), np.asarray(labels), tuple(order)


def _read_cells(csv_path: Path) -> list[tuple[int, int, str, int]]:
    try:
        text = csv_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{str(csv_path)!r} is not UTF-8 text") from None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"row", "col", "label"} <= set(reader.fieldnames):
        raise BadInput(f"{str(csv_path)!r}: expected a header with row,col,label (got {reader.fieldnames})")
    out = []
    for i, rec in enumerate(reader, start=2):
        try:
            out.append((int(rec["row"]), int(rec["col"]), str(rec["label"]).strip(), i))
        except (TypeError, ValueError):
            raise BadInput(f"{str(csv_path)!r} line {i}: row and col must be integers") from None
        if out[-1][0] < 0 or out[-1][1] < 0 or not out[-1][2]:
            raise BadInput(f"{str(csv_path)!r} line {i}: negative cell or empty label")
    if not out:
        raise BadInput(f"{str(csv_path)!r} lists no cells")
    return out


def parse_key(key: str) -> tuple[int, int, int] | None:
    """'RRGGBB' / '#RRGGBB' -> (r, g, b); 'auto' -> None."""
    k = key.strip().lower()
    if k == "auto":
        return None
    k = k.lstrip("#")
    if len(k) != 6 or any(ch not in "0123456789abcdef" for ch in k):
        raise BadInput(f"--background-key {key!r}: expected RRGGBB hex (e.g. ff00ff) or 'auto'")
    return int(k[0:2], 16), int(k[2:4], 16), int(k[4:6], 16)


def apply_background_key(images: np.ndarray, key: str) -> np.ndarray:
    """Pixels of the key colour become transparent; 'auto' uses each sprite's top-left pixel."""
    rgb = parse_key(key)
    out = images.copy()
    keys = out[:, 0, 0, :3] if rgb is None else np.broadcast_to(np.array(rgb, np.uint8), (len(out), 3))
    match = (out[..., :3] == keys[:, None, None, :]).all(axis=-1)
    out[match] = 0
    return out


def split_holdout(ds: SpriteSet, fraction: float, seed: int) -> tuple[SpriteSet, SpriteSet]:
    """(train, held-out), stratified by label: about `fraction` of each label held out."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(ds.labels), bool)
    for k in range(len(ds.label_names)):
        idx = np.nonzero(ds.labels == k)[0]
        n = int(round(len(idx) * fraction))
        held[rng.permutation(idx)[:n]] = True
    return ds.subset(~held, f"{ds.source} (train)"), ds.subset(held, f"{ds.source} (held-out)")
