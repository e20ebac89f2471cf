"""Animated sprite sets: characters, each D directions x F frames of one size, read from the layouts
real sets use. The label of a character is its label folder (as for PNG folders), or "character"
for files directly in the root.

    rows       one PNG per character: a row per direction (top to bottom in `directions` order), its
               frames left to right. Frames are square (side: the sheet's height / D) unless `frame`.
    columns    one PNG per character: a column per direction, its frames top to bottom.
    rpgmaker   RPG Maker walk sheets: per character a block of 3 frames x 4 rows (down, left, right,
               up); a sheet holds 4 x 2 blocks, or one when its name starts with "$".
    strips     a folder per character holding one PNG per direction, named after it (down.png ...),
               each a horizontal strip of square frames.
    frames     a folder per character, a subfolder per direction (named after it), one PNG per frame
               in name order.

Every character must give the same frame size and directions. Frame counts: `frames` takes the
first F of each direction; without it, trailing frames empty in every direction are dropped and then
every character must have as many. A cell that is fully transparent inside the kept frames stays
(some walk cycles blink); a character whose frames are all empty is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scarlet_moon.data.folders import png_folder, pngs_in
from scarlet_moon.data.images import read_image_alpha
from scarlet_moon.data.sprites import parse_key
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.limits import MAX_SIDE, MAX_SPRITES

LAYOUTS = ("rows", "columns", "rpgmaker", "strips", "frames")
DIRECTIONS = ("down", "left", "right", "up")  # RPG Maker's row order, and the default
LOOSE_LABEL = "character"
SHAPES = {  # what each layout reads, for messages
    "rows": "a sheet per character, a row per direction",
    "columns": "a sheet per character, a column per direction",
    "rpgmaker": "sheets of 3 x 4 frame blocks",
    "strips": "a folder per character, a PNG strip per direction",
    "frames": "a folder per character, a subfolder of frame PNGs per direction",
}
MIN_FRAME = 8  # the smallest sprite side a model trains at (limits.SPRITE_SIDES)
RPGMAKER_BLOCK = (4, 3)  # rows (directions) x frames of one character
RPGMAKER_SHEET = (2, 4)  # character blocks down x across on a sheet (one when the name starts with "$")


@dataclass(frozen=True)
class AnimSet:
    frames: np.ndarray  # uint8 N x D x F x H x W x 4: character, direction, frame
    labels: np.ndarray  # int64 N, indices into label_names
    label_names: tuple[str, ...]
    directions: tuple[str, ...]  # D names
    names: tuple[str, ...]  # N: where each character came from (file, or file#block for rpgmaker)
    source: str
    layout: str

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """(characters, directions, frames, height, width)."""
        n, d, f, h, w = self.frames.shape[:5]
        return int(n), int(d), int(f), int(h), int(w)


def parse_directions(text: str | None) -> tuple[str, ...]:
    """'down,left,right,up' -> names; None: DIRECTIONS. Names must be distinct and non-empty."""
    if text is None:
        return DIRECTIONS
    names = tuple(s.strip() for s in text.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise BadInput(
            f"{arg('directions')} {text!r}: expected distinct comma-separated names, e.g. down,left,right,up"
        )
    return names


def parse_frame(text: str | int | None) -> tuple[int, int] | None:
    """'16' or '16x24' (width x height) -> (height, width); None stays None."""
    if text is None:
        return None
    w, _, h = str(text).lower().partition("x")
    if not (w.isdigit() and (not h or h.isdigit())):
        raise BadInput(f"{arg('frame')} {text!r}: expected a size in pixels, N or WxH (e.g. 16 or 16x24)")
    width, height = int(w), int(h or w)
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BadInput(f"{arg('frame')} {text!r}: each side must be 1..{MAX_SIDE} pixels")
    return height, width


def _cells(img: np.ndarray, rows: int, cols: int, where: str) -> np.ndarray:
    """An image cut into rows x cols equal cells: rows x cols x h x w x 4."""
    h, w = img.shape[0] // rows, img.shape[1] // cols
    if h * rows != img.shape[0] or w * cols != img.shape[1] or h == 0 or w == 0:
        raise BadInput(f"{where} is {img.shape[1]}x{img.shape[0]}: it does not split into {cols} x {rows} equal frames")
    if min(h, w) < MIN_FRAME:
        raise BadInput(
            f"{where} is {img.shape[1]}x{img.shape[0]}: as {cols} x {rows} frames each would be {w}x{h}, "
            f"under the {MIN_FRAME} px a frame needs (another layout?)"
        )
    return img.reshape(rows, h, cols, w, 4).transpose(0, 2, 1, 3, 4)


def _grid(img: np.ndarray, n_dirs: int, frame: tuple[int, int] | None, where: str) -> tuple[int, int]:
    """(rows, cols) of frames on a rows-layout sheet: D rows; frames square unless `frame`."""
    fh, fw = frame or (img.shape[0] // n_dirs, img.shape[0] // n_dirs)
    if fh == 0 or img.shape[0] != fh * n_dirs or img.shape[1] % fw:
        raise BadInput(
            f"{where} is {img.shape[1]}x{img.shape[0]}: not {n_dirs} rows of {fw}x{fh} frames "
            f"(one row per direction; give {arg('frame')} or {arg('directions')})"
        )
    return n_dirs, img.shape[1] // fw


def _read(path: Path) -> np.ndarray:
    return read_image_alpha(path)[0]  # refuses a huge image from its header, before decoding


def _from_sheet(path: Path, layout: str, dirs: tuple[str, ...], frame: tuple[int, int] | None) -> list[np.ndarray]:
    """One sheet file -> its characters, each D x F x h x w x 4."""
    img, where = _read(path), repr(str(path))
    if layout == "rows":
        return [_cells(img, *_grid(img, len(dirs), frame, where), where)]
    if layout == "columns":
        turned = img.transpose(1, 0, 2)  # columns become rows; frames are turned back below
        fr = None if frame is None else (frame[1], frame[0])
        cells = _cells(turned, *_grid(turned, len(dirs), fr, where), where)
        return [cells.transpose(0, 1, 3, 2, 4)]
    if len(dirs) != RPGMAKER_BLOCK[0]:
        raise BadInput(
            f"{arg('layout')} rpgmaker has {RPGMAKER_BLOCK[0]} directions; {arg('directions')} names {len(dirs)}"
        )
    down, across = (1, 1) if path.name.startswith("$") else RPGMAKER_SHEET
    cells = _cells(img, down * RPGMAKER_BLOCK[0], across * RPGMAKER_BLOCK[1], where)
    d, f = RPGMAKER_BLOCK
    return [cells[r * d : (r + 1) * d, c * f : (c + 1) * f] for r in range(down) for c in range(across)]


def _strip(path: Path) -> np.ndarray:
    """A horizontal strip of square frames (side: its height) -> F x h x w x 4."""
    img = _read(path)
    h, w = img.shape[:2]
    if w % h:
        raise BadInput(f"{str(path)!r} is {w}x{h}: a strip of square {h}x{h} frames must be a multiple of {h} wide")
    return _cells(img, 1, w // h, repr(str(path)))[0]


def _from_folder(folder: Path, layout: str, dirs: tuple[str, ...]) -> np.ndarray:
    """A character folder (strips or frames) -> D x F x h x w x 4."""
    out = []
    for name in dirs:
        if layout == "strips":
            files = [p for p in pngs_in(folder) if p.stem == name]
            if not files:
                raise BadInput(f"{str(folder)!r} has no {name}.png (strips: one PNG per direction: {', '.join(dirs)})")
            out.append(_strip(files[0]))
        else:
            sub = folder / name
            files = pngs_in(sub) if sub.is_dir() else []
            if not files:
                raise BadInput(
                    f"{str(sub)!r} holds no frame PNGs (frames: a subfolder per direction: {', '.join(dirs)})"
                )
            imgs = [_read(p) for p in files]
            if len({im.shape for im in imgs}) > 1:
                raise BadInput(f"the frames in {str(sub)!r} differ in size; every frame must be the same size")
            out.append(np.stack(imgs))
    if len({x.shape[1:] for x in out}) > 1:
        raise BadInput(f"the directions of {str(folder)!r} have frames of different sizes")
    if len({len(x) for x in out}) > 1:
        listed = ", ".join(f"{d} {len(x)}" for d, x in zip(dirs, out))
        raise BadInput(f"{str(folder)!r} has {listed} frames: every direction of a character needs as many")
    return np.stack(out)


def _trim(char: np.ndarray, frames: int | None, where: str) -> np.ndarray:
    """Take the first `frames`, or drop trailing frames empty (alpha 0) in every direction."""
    if frames is not None:
        if char.shape[1] < frames:
            raise BadInput(f"{where} has {char.shape[1]} frames per direction; {arg('frames')} asks for {frames}")
        return char[:, :frames]
    used = np.flatnonzero((char[..., 3] > 0).any(axis=(0, 2, 3)))
    if len(used) == 0:
        raise BadInput(f"{where} has no visible pixel in any frame")
    return char[:, : used[-1] + 1]


def load_anim(
    path: str | Path,
    layout: str,
    *,
    directions: str | None = None,
    frame: str | int | None = None,
    frames: int | None = None,
    background_key: str | None = None,
) -> AnimSet:
    """Read an animated set from `path` (label folders of sheets or character folders; see above).
    `background_key`: RRGGBB, or 'auto' (the first frame's top-left pixel when every pixel is opaque):
    that colour becomes transparent before empty frames are dropped."""
    if layout not in LAYOUTS:
        raise BadInput(f"unknown {arg('layout')} {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if frames is not None and not 1 <= frames <= MAX_SIDE:
        raise BadInput(f"{arg('frames')} {frames!r}: expected 1..{MAX_SIDE} frames per direction")
    root, dirs, size = Path(path), parse_directions(directions), parse_frame(frame)
    if not root.is_dir():
        raise BadInput(f"{str(path)!r} is not a folder: an animated set is a folder of sheets or character folders")
    chars, labels, names, label_names = _collect(root, layout, dirs, size)
    if background_key is not None:
        chars = _keyed(chars, background_key)
    chars = [_trim(c, frames, repr(n)) for c, n in zip(chars, names)]
    _check_alike(chars, names, dirs)
    n = len(chars) * chars[0].shape[0] * chars[0].shape[1]
    if n > MAX_SPRITES:
        raise BadInput(f"{str(root)!r} holds {n:,} frames; a set may have at most {MAX_SPRITES:,}")
    return AnimSet(np.stack(chars), np.asarray(labels, np.int64), label_names, dirs, tuple(names), str(path), layout)


def _collect(
    root: Path, layout: str, dirs: tuple[str, ...], size: tuple[int, int] | None
) -> tuple[list[np.ndarray], list[int], list[str], tuple[str, ...]]:
    """(characters, their label index, their names, label names): label folders, and characters (sheets
    or character folders) directly in the root under the label "character"."""
    groups = _sheet_groups(root) if layout not in ("strips", "frames") else _folder_groups(root, layout, dirs)
    chars: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    for k, (_, items) in enumerate(groups):
        for item in items:
            blocks = [_from_folder(item, layout, dirs)] if item.is_dir() else _from_sheet(item, layout, dirs, size)
            chars.extend(blocks)
            names.extend(str(item) if len(blocks) == 1 else f"{item}#{i}" for i in range(len(blocks)))
            labels.extend([k] * len(blocks))
    if not chars:
        raise BadInput(f"{str(root)!r} holds no characters for {arg('layout')} {layout!r} ({SHAPES[layout]})")
    return chars, labels, names, tuple(label for label, _ in groups)


def _sheet_groups(root: Path) -> list[tuple[str, list[Path]]]:
    tree = png_folder(root)
    for name, files in tree.labelled:
        if not files:
            raise BadInput(f"label folder {str(root / name)!r} holds no .png files")
    loose = [(LOOSE_LABEL, list(tree.loose))] if tree.loose else []
    return loose + [(name, list(files)) for name, files in tree.labelled]


def _folder_groups(root: Path, layout: str, dirs: tuple[str, ...]) -> list[tuple[str, list[Path]]]:
    """Character folders (they hold a PNG or a subfolder named after a direction) directly in the root,
    then label folders of character folders."""

    def subdirs(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))

    def is_character(d: Path) -> bool:
        named = [p.stem for p in pngs_in(d)] if layout == "strips" else [p.name for p in subdirs(d)]
        return any(n in dirs for n in named)

    top = subdirs(root)
    groups = [(LOOSE_LABEL, [d for d in top if is_character(d)])]
    for d in (d for d in top if not is_character(d)):
        chars = [c for c in subdirs(d) if is_character(c)]
        if not chars:
            raise BadInput(
                f"{str(d)!r} is neither a character folder ({layout}: {'a PNG' if layout == 'strips' else 'a subfolder'} "
                f"per direction: {', '.join(dirs)}) nor a label folder of them"
            )
        groups.append((d.name, chars))
    return groups if groups[0][1] else groups[1:]


def _keyed(chars: list[np.ndarray], key: str) -> list[np.ndarray]:
    rgb = parse_key(key)
    if rgb is None:  # auto: only a set with no transparency has a background to key
        if any((c[..., 3] < 255).any() for c in chars):
            return chars
        rgb = (int(chars[0][0, 0, 0, 0, 0]), int(chars[0][0, 0, 0, 0, 1]), int(chars[0][0, 0, 0, 0, 2]))
    key_px = np.array(rgb, np.uint8)
    out = []
    for c in chars:
        c = c.copy()
        c[(c[..., :3] == key_px).all(axis=-1)] = 0
        out.append(c)
    return out


def _check_alike(chars: list[np.ndarray], names: list[str], dirs: tuple[str, ...]) -> None:
    first = chars[0].shape
    for c, n in zip(chars, names):
        if c.shape[2:4] != first[2:4]:
            raise BadInput(
                f"{n!r} has {c.shape[3]}x{c.shape[2]} frames; every character must match the first ({first[3]}x{first[2]})"
            )
        if c.shape[1] != first[1]:
            raise BadInput(
                f"{n!r} has {c.shape[1]} frames per direction, the first character {first[1]}: give "
                f"{arg('frames')} to take that many of each"
            )
