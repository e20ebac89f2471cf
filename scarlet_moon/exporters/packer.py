"""Pack sprites into one or more RGBA sheets.

Pipeline per sprite: RGBA -> optional trim of transparent borders -> nearest-neighbour scale ->
dedupe by exact pixels. Each stored image occupies a "slot" of (w + 2*extrude, h + 2*extrude);
slots are kept `padding` pixels apart and `padding` pixels from the sheet's left/top edges (and
at least that from the right/bottom ones), so sampling with bleeding never reaches a neighbour.
Same-size slots go on a grid (input order, row-major); mixed sizes go through MaxRects.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from scarlet_moon.exporters.maxrects import MaxRects
from scarlet_moon.exporters.model import Frame, PackOptions, PackResult, Page, Sprite

Layout = list[list[tuple[int, int, int]]]  # per page: (item index, slot x, slot y)


@dataclass
class _Item:
    """One stored image: (h, w, 4) uint8 pixels, already trimmed and scaled."""

    pixels: np.ndarray
    first: str  # name of the first sprite using it (what aliases point at)
    page: int = -1
    x: int = 0  # slot top-left (extrusion border included)
    y: int = 0
    users: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    item: int
    offset_x: int
    offset_y: int
    source_w: int
    source_h: int


def pack(sprites: Sequence[Sprite], options: PackOptions | None = None, **settings: int | bool) -> PackResult:
    """Pack `sprites` into pages of at most `max_size` x `max_size` (see the module doc).

    `options` (PackOptions), or its fields as keywords: pack(sprites, padding=1, trim=True)."""
    o = options if options is not None else PackOptions(**settings)  # type: ignore[arg-type]
    if options is not None and settings:
        raise TypeError("pass PackOptions or keyword settings, not both")
    padding, extrude, scale, pot, limit = o.padding, o.extrude, o.scale, o.pot, o.limit
    _check_sprites(sprites)
    items: list[_Item] = []
    prepared = _prepare_all(sprites, items, o)  # every sprite checked to fit a page before it is scaled
    sizes = [(it.pixels.shape[1] + 2 * extrude, it.pixels.shape[0] + 2 * extrude) for it in items]
    if len(set(sizes)) == 1:
        layout = _grid_layout(len(items), sizes[0], padding, limit)
    else:
        layout = _maxrects_layout(sizes, padding, limit)
    pages = [
        _render_page(entries, items, sizes, sprites, prepared, padding, extrude, pot, p)
        for p, entries in enumerate(layout)
    ]
    return PackResult(pages=pages, padding=padding, extrude=extrude, scale=scale)


def _check_sprites(sprites: Sequence[Sprite]) -> None:
    if not sprites:
        raise ValueError("nothing to pack: no sprites given")
    seen: set[str] = set()
    for s in sprites:
        if not s.name:
            raise ValueError("a sprite has an empty name")
        if s.name in seen:
            raise ValueError(f"two sprites are named {s.name!r}; frame names must be unique")
        seen.add(s.name)
        w, h = _size(s)
        if w < 1 or h < 1:
            raise ValueError(f"sprite {s.name!r} is empty ({w}x{h})")


def _size(s: Sprite) -> tuple[int, int]:
    """(width, height) of a sprite's image: a PIL image, or a uint8 H x W x 4 array (checked here)."""
    im = s.image
    if isinstance(im, np.ndarray):
        if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 4:
            raise ValueError(
                f"sprite {s.name!r}: an array image must be uint8 H x W x 4 (RGBA), got {im.dtype} {tuple(im.shape)}"
            )
        return int(im.shape[1]), int(im.shape[0])
    return im.width, im.height


def _rgba(image: Any) -> np.ndarray:
    """uint8 (H, W, 4): an array as it is, a PIL RGBA image without a copy of the image, others converted."""
    if isinstance(image, np.ndarray):
        return image
    return np.asarray(image if image.mode == "RGBA" else image.convert("RGBA"), dtype=np.uint8)


def _prepare_all(sprites: Sequence[Sprite], items: list[_Item], options: PackOptions) -> list[_Prepared]:
    """Trim/scale every sprite and fill `items` with the distinct images; one _Prepared per sprite."""
    scale, trim, dedupe = options.scale, options.trim, options.dedupe
    index: dict[tuple[int, int, bytes], int] = {}
    out: list[_Prepared] = []
    for i, s in enumerate(sprites):
        rgba = _rgba(s.image)  # (H, W, 4)
        src_h, src_w = rgba.shape[:2]
        pixels, ox, oy = _trim(rgba) if trim else (rgba, 0, 0)
        options.check_fits(pixels.shape[1], pixels.shape[0], f"sprite {s.name!r}")  # before scaling allocates
        if scale > 1:
            pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)  # nearest neighbour
        key = (pixels.shape[0], pixels.shape[1], hashlib.sha256(pixels.tobytes()).digest())
        k = index.get(key) if dedupe else None
        if k is None:
            k = len(items)
            items.append(_Item(np.ascontiguousarray(pixels), s.name))
            index[key] = k
        items[k].users.append(i)
        out.append(_Prepared(k, ox * scale, oy * scale, src_w * scale, src_h * scale))
    return out


def _trim(rgba: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Crop to the bounding box of alpha > 0; a fully transparent image keeps its top-left pixel."""
    ys, xs = np.nonzero(rgba[..., 3])
    if len(xs) == 0:
        return rgba[:1, :1], 0, 0
    x0, y0 = int(xs.min()), int(ys.min())
    return rgba[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1], x0, y0


def _pot_ceil(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _grid_layout(n: int, slot: tuple[int, int], padding: int, limit: int) -> Layout:
    """Same-size slots in row-major order; each page is as square as the limit allows."""
    pitch_w, pitch_h = slot[0] + padding, slot[1] + padding
    cols_max, rows_max = (limit - padding) // pitch_w, (limit - padding) // pitch_h
    per_page = cols_max * rows_max
    layout: Layout = []
    for start in range(0, n, per_page):
        k = min(per_page, n - start)
        cols = min(cols_max, max(1, math.ceil(math.sqrt(k * pitch_h / pitch_w))))
        if math.ceil(k / cols) > rows_max:
            cols = cols_max
        layout.append([(start + i, padding + (i % cols) * pitch_w, padding + (i // cols) * pitch_h) for i in range(k)])
    return layout


def _maxrects_layout(sizes: list[tuple[int, int]], padding: int, limit: int) -> Layout:
    """Pages filled by MaxRects; each page uses the smallest square-ish bin that takes what is left."""
    order = sorted(range(len(sizes)), key=lambda i: (-max(sizes[i]), -sizes[i][0] * sizes[i][1], i))
    layout: Layout = []
    while order:
        placed, order = _fit_smallest_bin(order, sizes, padding, limit)
        layout.append(placed)
    return layout


def _fit_smallest_bin(
    order: list[int], sizes: list[tuple[int, int]], padding: int, limit: int
) -> tuple[list[tuple[int, int, int]], list[int]]:
    # Each slot is packed as (w + padding, h + padding) into a bin shifted by `padding`, which
    # leaves `padding` between slots and on every sheet edge.
    padded = {i: (sizes[i][0] + padding, sizes[i][1] + padding) for i in order}
    area = sum(w * h for w, h in padded.values())
    side = max(math.ceil(math.sqrt(area)), max(max(p) for p in padded.values()))
    w = h = min(limit - padding, side)
    while True:
        rects = MaxRects(w, h)
        placed, rest = [], []
        for i in order:
            pos = rects.insert(*padded[i])
            if pos is None:
                rest.append(i)
            else:
                placed.append((i, pos[0] + padding, pos[1] + padding))
        if not rest or w == h == limit - padding:
            return placed, rest
        # grow the shorter side by a quarter (at least one pixel), never beyond the limit
        if w <= h:
            w = min(limit - padding, max(w + 1, w * 5 // 4))
        else:
            h = min(limit - padding, max(h + 1, h * 5 // 4))


def _render_page(
    entries: list[tuple[int, int, int]],
    items: list[_Item],
    sizes: list[tuple[int, int]],
    sprites: Sequence[Sprite],
    prepared: list[_Prepared],
    padding: int,
    extrude: int,
    pot: bool,
    page_no: int,
) -> Page:
    width = max(x + sizes[i][0] for i, x, _ in entries) + padding
    height = max(y + sizes[i][1] for i, _, y in entries) + padding
    if pot:
        width, height = _pot_ceil(width), _pot_ceil(height)
    sheet = np.zeros((height, width, 4), np.uint8)  # (H, W, RGBA), transparent
    for i, x, y in entries:
        it = items[i]
        it.page, it.x, it.y = page_no, x, y
        block = it.pixels
        if extrude:
            # repeat the edge pixels outward (corners too) so filtering at the rect edge sees them
            block = np.pad(block, ((extrude, extrude), (extrude, extrude), (0, 0)), mode="edge")
        sheet[y : y + block.shape[0], x : x + block.shape[1]] = block
    on_page = sorted(u for i, _, _ in entries for u in items[i].users)
    frames = [_frame(sprites[u], prepared[u], items[prepared[u].item], extrude) for u in on_page]
    return Page(image=Image.fromarray(sheet, "RGBA"), frames=frames)


def _frame(sprite: Sprite, prep: _Prepared, item: _Item, extrude: int) -> Frame:
    h, w = item.pixels.shape[:2]
    return Frame(
        name=sprite.name,
        x=item.x + extrude,
        y=item.y + extrude,
        w=w,
        h=h,
        source_w=prep.source_w,
        source_h=prep.source_h,
        offset_x=prep.offset_x,
        offset_y=prep.offset_y,
        label=sprite.label,
        meta=dict(sprite.meta),
        alias_of=None if item.first == sprite.name else item.first,
    )
