"""Two-terrain corner Wang tilesets: 16 tiles, one per choice of terrain A/B at the four corners.

    ts = corner_tileset(den, "terrain", seed=0)        # den: scarlet_moon.backends.open_denoiser(...)
    ts.tiles[n].corners == CORNERS[n]                  # (tl, tr, br, bl), 0 = terrain A, 1 = terrain B

Construction (tiles H x W, border w = `border` pixels; every sprite through generate_all, the one
generation path, with the editing modes of diffusion.editing):

1. Base tiles A and B: sampled with tileable=True (or given as init images, used as they are),
   each the best of BASE_CANDIDATES sprites sampled at once: the one whose wrap seam shows least
   (wrap_ratio; palette snapping and clean-up, which do not wrap, can leave a seam). Without a
   second label B is, of the candidates whose seam shows no more than A's, the one whose mean
   colour is farthest from A's: a second terrain, not a look-alike of the first.
2. Seam strips. Two tiles side by side meet along a vertical edge whose terrains are the corners
   it joins, (top, bottom). For each such pair there is one H x 2w strip V(top, bottom): its left w
   columns are the right border of every tile left of such an edge, its right w columns the left
   border of every tile right of it. Likewise one 2w x W strip Hs(left, right) per horizontal edge
   (upper half: bottom border of the tile above; lower half: top border of the tile below).
   - V(c, c) is base c's own wrap-around seam: columns W-w..W-1 then 0..w-1 of base c (seamless
     since base c is tileable); Hs(c, c) likewise with rows.
   - V(a, b), a != b: a canvas whose upper half is base a and lower half base b, each rolled by
     W//2 across so that its wrap seam runs down the middle; its top and bottom w rows are kept
     (inpainting mask) and the rows between are generated (init = the canvas, `strength`); the
     strip is the canvas's middle 2w columns. Its kept ends are exactly base a's and base b's wrap
     seams there, i.e. the pixels V(a, a) and V(b, b) have at those rows. Hs(a, b): the same across.
     Each is the best of STRIP_CANDIDATES canvases (one request): the one whose middle line, the
     future tile border, shows least against the lines beside it (centre_ratio).
3. Tiles. Tile (tl, tr, br, bl) gets its border ring from the strips: left w columns from
   V(tl, bl), right w columns from V(tr, br), top w rows from Hs(tl, tr), bottom w rows from
   Hs(bl, br). The w x w corner blocks where two of these overlap agree: both are the corner's
   terrain base around its own wrap point (the 2w x 2w block where four tiles meet is base c's
   wrapped corner). The ring is kept (inpainting mask) and the interior generated, starting from
   the four base tiles by quadrant (init, `strength`). Tiles A-A-A-A and B-B-B-B are the bases.

So the pixels along an edge are a pure function of that edge's two corner terrains, by
construction: every tile's right w columns equal those of every other tile with the same
(tr, br), and any two tiles whose shared corners agree meet in a strip that was made in one
piece (a tileable base's own wrap, or one generated canvas), never in two unrelated halves.
Transitions are generated with terrain A's label (B's where a tile has more B corners).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.generation.chunks import chunk_seed, generate_all
from scarlet_moon.generation.edits import ImageLike, load_edit, load_init
from scarlet_moon.generation.request import Request, check_seed
from scarlet_moon.models.card import ModelCard, resolve_labels
from scarlet_moon.options import PostOptions, SamplingOptions, number, whole

KINDS = ("corner2",)
BORDER = 2  # pixels of each tile's border ring taken from the seam strips
STRENGTH = 0.6  # transition strips and tile interiors: how far from their composite init
Corners = tuple[int, int, int, int]  # (top-left, top-right, bottom-right, bottom-left), 0 = A, 1 = B
CORNERS: tuple[Corners, ...] = tuple(((n >> 3) & 1, (n >> 2) & 1, (n >> 1) & 1, n & 1) for n in range(16))
STRIP_PARTS = {("v", 0, 1): 2, ("v", 1, 0): 3, ("h", 0, 1): 4, ("h", 1, 0): 5}  # part index of each mixed strip
BASE_CANDIDATES = 4  # each base terrain is the best of this many tileable sprites
STRIP_CANDIDATES = 4  # each mixed seam strip is the best of this many
TILE_PART0 = 6  # tile n's interior is part TILE_PART0 + n
Progress = Callable[[int, int], None]  # (parts done, parts in all)


def part_seed(seed: int, part: int) -> int:
    """The sampling seed of one part of a tileset (base, strip, tile): `seed` itself for part 0, else
    53 bits derived from (seed, part) as chunk seeds are."""
    return chunk_seed(seed, part)


@dataclass(frozen=True)
class Tile:
    """One tile: its corners, uint8 H x W x C pixels, and what made it."""

    corners: Corners
    image: np.ndarray
    role: str  # "base" (a base terrain) or "transition"
    seed: int | None  # sampling seed of its pixels (None: a base given as an init image)
    label: str  # the label it was generated with
    strength: float | None  # init strength of its interior (None for a base)


@dataclass(frozen=True)
class Tileset:
    """16 tiles in CORNERS order plus the settings that regenerate them."""

    tiles: list[Tile]
    labels: tuple[str, str]  # the names of terrain A and terrain B
    seed: int
    border: int
    strength: float
    part_seeds: dict[str, int | None]  # "base_a", "base_b", "v01", "v10", "h01", "h10" -> seed

    def tile_meta(self, tile: Tile) -> dict[str, Any]:
        """JSON-ready per-tile metadata: the corners as "wang" [tl, tr, br, bl] (0 = A, 1 = B) and
        what regenerates the tile."""
        return {
            "wang": list(tile.corners),
            "role": tile.role,
            "seed": tile.seed,
            "label": tile.label,
            "strength": tile.strength,
            "terrains": list(self.labels),
            "tileset_seed": self.seed,
            "border": self.border,
            "part_seeds": dict(self.part_seeds),
            "kind": "corner2",
        }


@dataclass(frozen=True)
class _Job:
    """Everything fixed before sampling: the model, labels, options, checked."""

    den: Any
    card: ModelCard
    labels: tuple[int, int]
    seed: int
    sampling: SamplingOptions
    post: PostOptions
    border: int
    strength: float
    given: bool  # the bases are the caller's init images

    def base_seed(self, c: int) -> int | None:
        return None if self.given else part_seed(self.seed, c)

    def sample(
        self,
        label: int,
        part: int,
        init: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        tileable: bool = False,
        count: int = 1,
    ) -> np.ndarray:
        """`count` sprites through the generation loop: uint8 count x H x W x C (one sprite: H x W x C)."""
        edit = load_edit(
            init,
            mask,
            None if init is None else self.strength,
            tileable,
            size=self.card.size,
            channels=self.card.channels,
        )
        req = Request.plan(
            self.card, label, count, part_seed(self.seed, part), sampling=self.sampling, post=self.post, edit=edit
        )
        out = generate_all(self.den, req)
        return out[0] if count == 1 else out


def check_options(card: ModelCard, kind: str, border: int, strength: float) -> None:
    """BadInput naming the first unusable value."""
    if kind not in KINDS:
        raise BadInput(f"{arg('kind')} {kind!r}: expected one of {', '.join(KINDS)} (two terrains, 16 corner tiles)")
    h, w = card.size
    top = min(h, w) // 4
    if not whole(border) or not 1 <= border <= top:
        raise BadInput(f"{arg('border')} {border!r}: must be 1..{top} for {w}x{h} tiles")
    if not number(strength) or not 0.0 < float(strength) <= 1.0:
        raise BadInput(f"{arg('strength')} {strength!r}: must be in (0, 1]")


def corner_tileset(
    den: Any,
    label: str | int = "terrain",
    second_label: str | int | None = None,
    *,
    seed: int = 0,
    init: tuple[ImageLike, ImageLike] | None = None,
    sampling: SamplingOptions | None = None,
    post: PostOptions | None = None,
    kind: str = "corner2",
    border: int = BORDER,
    strength: float = STRENGTH,
    terrains: tuple[str, str] | None = None,
    progress: Progress | None = None,
) -> Tileset:
    """A 16-tile corner Wang set of terrain A (`label`) and terrain B (`second_label`; None: the same
    label at another seed), or of the two base tiles given as `init` (paths, PIL images or arrays of
    the model's size, used as they are). `den` is an open denoiser (backends.open_denoiser);
    `terrains` names A and B in the metadata (default: their labels).
    Every input is checked before anything is sampled."""
    card = den.card
    check_options(card, kind, border, strength)
    idx = resolve_labels([label, label if second_label is None else second_label], card.label_names)
    bases = None if init is None else _load_bases(init, card)
    job = _Job(
        den,
        card,
        (idx[0], idx[1]),
        check_seed(seed),
        sampling or SamplingOptions(),
        post or PostOptions(),
        int(border),
        float(strength),
        bases is not None,
    )
    job.sampling.resolve(card)
    total = (0 if bases else 1) + len(STRIP_PARTS) + 14
    done = [0]

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    if bases is None:
        bases = _bases_sampled(job, distinct=second_label is None)
        step()
    v, h = _strips(job, bases, step)
    tiles = [_tile(job, n, bases, v, h, step) for n in range(16)]
    names = card.label_names
    seeds = {"base_a": job.base_seed(0), "base_b": job.base_seed(1)}
    seeds.update({f"{d}{a}{b}": part_seed(job.seed, p) for (d, a, b), p in STRIP_PARTS.items()})
    named = terrains if terrains is not None else (names[idx[0]], names[idx[1]])
    return Tileset(tiles, (str(named[0]), str(named[1])), job.seed, job.border, job.strength, seeds)


def wrap_ratio(image: np.ndarray) -> float:
    """How visible a tile's wrap-around seam is: the mean colour distance between its opposite edges'
    pixels over the mean distance between 4-neighbour pixels inside it (about 1 when it tiles)."""
    px = image.astype(np.float64)
    inside = np.concatenate(
        [np.linalg.norm(px[:, 1:] - px[:, :-1], axis=-1).ravel(), np.linalg.norm(px[1:] - px[:-1], axis=-1).ravel()]
    ).mean()
    wrap = np.concatenate([np.linalg.norm(px[:, 0] - px[:, -1], axis=-1), np.linalg.norm(px[0] - px[-1], axis=-1)])
    return float(wrap.mean() / inside) if inside > 0 else (0.0 if wrap.max() == 0 else float("inf"))


def centre_ratio(canvas: np.ndarray, axis: int) -> float:
    """How visible the line down the middle of a strip canvas is: the mean colour distance across it
    (between the lines n//2 - 1 and n//2 along `axis`) over that of the pairs one line to either side."""
    px = np.moveaxis(canvas.astype(np.float64), axis, 0)
    n = px.shape[0] // 2
    jump = [float(np.linalg.norm(px[i + 1] - px[i], axis=-1).mean()) for i in (n - 2, n - 1, n)]
    near = (jump[0] + jump[2]) / 2
    return jump[1] / near if near > 0 else (0.0 if jump[1] == 0 else float("inf"))


def _bases_sampled(job: _Job, distinct: bool) -> list[np.ndarray]:
    """Base A: of BASE_CANDIDATES tileable sprites (one request, seed part 0), the one whose wrap seam
    shows least (wrap_ratio). Base B likewise (part 1) among those whose seam shows no more than
    A's or 1, and with A's label (`distinct`), of those the one whose mean colour is farthest
    from A's, so that B is another terrain rather than a look-alike."""
    bases: list[np.ndarray] = []
    for c in (0, 1):
        cands = list(job.sample(job.labels[c], c, tileable=True, count=BASE_CANDIDATES))
        ratios = [wrap_ratio(x) for x in cands]
        best = int(np.argmin(ratios))
        if c == 1 and distinct:
            ok = [i for i, r in enumerate(ratios) if r <= max(1.0, ratios[best], wrap_ratio(bases[0]))]
            mean_a = bases[0].reshape(-1, bases[0].shape[-1]).mean(axis=0)
            best = max(ok, key=lambda i: float(np.linalg.norm(cands[i].reshape(-1, mean_a.size).mean(axis=0) - mean_a)))
        bases.append(cands[best])
    return bases


def _load_bases(init: Any, card: ModelCard) -> list[np.ndarray]:
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise BadInput(
            f"{arg('init')}: give two base tiles (terrain A, terrain B), got "
            f"{len(init) if isinstance(init, (tuple, list)) else type(init).__name__}"
        )
    return [load_init(src, card.size, card.channels) for src in init]


def wrap_strip(base: np.ndarray, w: int, axis: int) -> np.ndarray:
    """Base c's own seam strip across `axis` (1: V(c, c), H x 2w; 0: Hs(c, c), 2w x W)."""
    n = base.shape[axis]
    rolled = np.roll(base, n // 2, axis=axis)
    return np.take(rolled, range(n // 2 - w, n // 2 + w), axis=axis)


def strip_canvas(first: np.ndarray, second: np.ndarray, w: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(init, mask) of a mixed strip across `axis`: halves along the other axis from `first` and
    `second`, each rolled by half a tile across; mask True (generate) except the w pixels at both ends."""
    along = 1 - axis
    n_along, n_across = first.shape[along], first.shape[axis]
    canvas = np.roll(first, n_across // 2, axis=axis).copy()
    half = [slice(None)] * 2
    half[along] = slice(n_along // 2, None)
    canvas[tuple(half)] = np.roll(second, n_across // 2, axis=axis)[tuple(half)]
    mask = np.zeros(first.shape[:2], bool)
    keep = [slice(None)] * 2
    keep[along] = slice(w, n_along - w)
    mask[tuple(keep)] = True
    return canvas, mask


def _strips(job: _Job, bases: list[np.ndarray], step: Callable[[], None]) -> tuple[dict, dict]:
    """V[(top, bottom)] (H x 2w) and Hs[(left, right)] (2w x W) for the four terrain pairs each."""
    w = job.border
    out: dict[str, dict[tuple[int, int], np.ndarray]] = {"v": {}, "h": {}}
    for d, axis in (("v", 1), ("h", 0)):
        for c in (0, 1):
            out[d][(c, c)] = wrap_strip(bases[c], w, axis)
    for (d, a, b), part in STRIP_PARTS.items():
        axis = 1 if d == "v" else 0
        init, mask = strip_canvas(bases[a], bases[b], w, axis)
        cands = job.sample(job.labels[0], part, init=init, mask=mask, tileable=True, count=STRIP_CANDIDATES)
        canvas = min(cands, key=lambda x: centre_ratio(x, axis))
        n = canvas.shape[axis]
        out[d][(a, b)] = np.take(canvas, range(n // 2 - w, n // 2 + w), axis=axis)
        step()
    return out["v"], out["h"]


def tile_ring(corners: Corners, v: dict, h: dict, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, mask) of a tile's border ring from the strips; mask True on the interior (generate)."""
    tl, tr, br, bl = corners
    left, right, top, bottom = v[(tl, bl)], v[(tr, br)], h[(tl, tr)], h[(bl, br)]
    rows, cols = left.shape[0], top.shape[1]
    img = np.zeros((rows, cols, left.shape[2]), np.uint8)
    img[:, :w], img[:, cols - w :] = left[:, w:], right[:, :w]
    img[:w, :], img[rows - w :, :] = top[w:, :], bottom[:w, :]
    mask = np.zeros((rows, cols), bool)
    mask[w : rows - w, w : cols - w] = True
    return img, mask


def quadrant_composite(corners: Corners, bases: list[np.ndarray]) -> np.ndarray:
    """Each quadrant of the tile from the base of its corner's terrain (same coordinates)."""
    tl, tr, br, bl = corners
    rows, cols = bases[0].shape[:2]
    out = bases[tl].copy()
    r, c = rows // 2, cols // 2
    out[:r, c:], out[r:, c:], out[r:, :c] = bases[tr][:r, c:], bases[br][r:, c:], bases[bl][r:, :c]
    return out


def _tile(job: _Job, n: int, bases: list[np.ndarray], v: dict, h: dict, step: Callable[[], None]) -> Tile:
    corners = CORNERS[n]
    names = job.den.card.label_names
    if len(set(corners)) == 1:
        c = corners[0]
        return Tile(corners, bases[c], "base", job.base_seed(c), names[job.labels[c]], None)
    ring, mask = tile_ring(corners, v, h, job.border)
    init = np.where(mask[..., None], quadrant_composite(corners, bases), ring)
    label = job.labels[1] if sum(corners) > 2 else job.labels[0]
    image = job.sample(label, TILE_PART0 + n, init=init, mask=mask, tileable=True)
    step()
    return Tile(corners, image, "transition", part_seed(job.seed, TILE_PART0 + n), names[label], job.strength)
