"""Drawing characters with an animation model (models.anim): the sampler passes, the finishing, and
redrawing some directions of a kept character.

Frames are uint8 N x D x F x H x W x 4 (character, direction, frame), as data.anim reads them. Every
(character, slot) draws its own noise from (seed, character, slot), so a character does not change
with the count asked for, and a redrawn direction changes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.anim import AnimShape
from scarlet_moon.models.card import ModelCard

OPAQUE = 128
DEFAULT_STEPS = 25
CHARACTER_COLOURS = 16  # a character's palette (the anchor's colours, k-means): most real ones use fewer
EXTRA_COLOURS = 4  # a direction's own colours on top, where a part of it is far from every anchor colour
FAR_COLOUR = 48.0  # RGB distance beyond which a pixel counts as a colour the anchor lacks
MIN_EXTRA_PIXELS = 6  # ... when at least this many (and 5% of the direction's opaque pixels) are


@dataclass(frozen=True)
class AnimOptions:
    steps: int = DEFAULT_STEPS
    guidance: float | None = None  # None: the model's
    seed: int = 0
    lock_palette: bool = True  # every frame in the anchor's colours (at most CHARACTER_COLOURS)
    alpha_threshold: int = OPAQUE

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise BadInput(f"{arg('steps')} {self.steps!r}: expected 1..1000")
        if not 1 <= self.alpha_threshold <= 255:
            raise BadInput(f"{arg('alpha_threshold')} {self.alpha_threshold!r}: expected 1..255")
        if self.guidance is not None and not 0 <= self.guidance <= 30:
            raise BadInput(f"{arg('guidance')} {self.guidance!r}: expected 0..30")


def anim_shape_of(card: ModelCard) -> AnimShape:
    shape = AnimShape.from_meta(card.meta)
    if shape is None:
        raise BadInput(
            f"{arg('model')} {str(card.path)!r} draws single sprites, not animations; an animation model "
            "is trained on an animated set (docs/animation.md)"
        )
    return shape


def load_anim_net(card: ModelCard) -> Any:
    """The card's network with its sampling weights, in eval mode (torch)."""
    import torch

    from scarlet_moon.models.checkpoint import load_checkpoint
    from scarlet_moon.training.anim import build_anim_network
    from scarlet_moon.training.config import TrainConfig

    shape = anim_shape_of(card)
    cfg = TrainConfig.from_dict(card.config)
    cfg.model.check(f"{arg('model')} {str(card.path)!r}")
    weights = load_checkpoint(card.path, with_optim=False).weights
    with torch.device("meta"):  # the card's network counted without allocating it: a tampered card is refused first
        want = sum(p.numel() for p in build_anim_network(cfg, shape, card.size, len(card.label_names)).parameters())
    stored = sum(int(w.numel()) for w in weights.values())
    if want != stored:
        raise BadInput(
            f"{arg('model')} {str(card.path)!r}: its card describes a network of {want:,} parameters, the file "
            f"stores {stored:,}; the card or the weights were altered"
        )
    net = build_anim_network(cfg, shape, card.size, len(card.label_names))
    try:
        net.load_state_dict({k: v.float() for k, v in weights.items()})
    except RuntimeError as exc:
        raise BadInput(f"{arg('model')} {str(card.path)!r}: its weights do not fit its card ({exc})") from None
    return net.eval()


def _noise(seed: int, char: int, slot: int, shape: tuple[int, int, int]) -> Any:
    """The starting noise of one (character, slot): its own stream, whatever else is drawn with it."""
    import torch

    return torch.randn(shape, generator=torch.Generator().manual_seed(hash((seed, char, slot)) & 0x7FFF_FFFF))


def _pass(
    net: Any,
    card: ModelCard,
    shape: AnimShape,
    x: Any,
    todo: list[tuple[int, int]],
    labels: Any,
    opts: AnimOptions,
    first: int = 0,
) -> None:
    """Draw the (character, slot) pairs of `todo` into x (N x S x 4 x H x W, torch, [-1, 1])."""
    import torch

    from scarlet_moon.diffusion.guidance import make_denoiser
    from scarlet_moon.diffusion.samplers import run_sampler
    from scarlet_moon.models.anim import conditions

    chars = torch.tensor([c for c, _ in todo])
    slots = torch.tensor([s for _, s in todo])
    refs = [shape.refs(s) for _, s in todo]

    def pick(has: Any, which: int) -> Any:  # the reference frames (zeros where a slot has none)
        idx = torch.tensor([0 if r[which] is None else r[which] for r in refs])
        return x[chars, idx] * has.view(-1, 1, 1, 1)

    has_a = torch.tensor([a is not None for a, _ in refs], dtype=torch.float32)
    has_k = torch.tensor([k is not None for _, k in refs], dtype=torch.float32)
    cond = conditions(pick(has_a, 0), pick(has_k, 1), has_a, has_k, slots, shape.slots)
    guidance = float(card.defaults()["guidance"]) if opts.guidance is None else opts.guidance
    y = labels[chars]
    both = torch.cat([y, torch.full_like(y, len(card.label_names))]) if guidance != 1.0 else y
    cond2 = torch.cat([cond, cond]) if guidance != 1.0 else cond

    def run(xin: Any, t: int) -> Any:
        return net(torch.cat([xin, cond2], 1), torch.full((len(xin),), float(t)), both)

    den = make_denoiser(
        run,
        len(todo),
        guidance,
        card.schedule.alphas_cumprod(),
        card.prediction,
        concat=lambda p, q: torch.cat([p, q]),
        finite=lambda p: bool(torch.isfinite(p).all()),
    )
    h, w = card.size
    start = torch.stack([_noise(opts.seed, first + c, s, (4, h, w)) for c, s in todo])
    with torch.no_grad():
        out = run_sampler("ddim", den, start, card.schedule, opts.steps, clip_x0=True)
    x[chars, slots] = out.clamp(-1, 1)


def draw_characters(
    card: ModelCard,
    labels: Sequence[int],
    opts: AnimOptions = AnimOptions(),
    *,
    keep: np.ndarray | None = None,
    redraw: Sequence[str] = (),
    net: Any = None,
    progress: Callable[[int, int], None] | None = None,
    first: int = 0,
) -> np.ndarray:
    """N characters of `labels` as uint8 N x D x F x H x W x 4. With `keep` (frames of N characters
    this model could have drawn), only the frames of the directions in `redraw` are drawn again
    (the anchor stays: it is what the character is); every other frame is kept as it is. `first`: the
    index of the first character in a longer run (its noise: a run drawn in chunks is the same run)."""
    import torch

    shape = anim_shape_of(card)
    net = load_anim_net(card) if net is None else net
    h, w = card.size
    n = len(labels)
    x = torch.zeros(n, shape.slots, 4, h, w)
    redo = set(range(shape.slots))
    if keep is not None:
        check_kept(keep, shape, card)
        x[:] = (
            torch.from_numpy(keep.reshape(n, shape.slots, h, w, 4).transpose(0, 1, 4, 2, 3).copy()).float() / 127.5 - 1
        )
        unknown = [d for d in redraw if d not in shape.directions]
        if unknown:
            raise BadInput(f"{arg('redraw')} {unknown[0]!r}: the model's directions are {', '.join(shape.directions)}")
        redo = {shape.slot(shape.directions.index(d), f) for d in redraw for f in range(shape.frames)} - {0}
    y = torch.tensor(list(labels), dtype=torch.long)
    passes = [[s for s in p if s in redo] for p in shape.passes()]
    passes = [p for p in passes if p]
    for k, slots in enumerate(passes):
        _pass(net, card, shape, x, [(c, s) for s in slots for c in range(n)], y, opts, first)
        if progress:
            progress(k + 1, len(passes))
    frames = x.numpy().reshape(n, len(shape.directions), shape.frames, 4, h, w).transpose(0, 1, 2, 4, 5, 3)
    out = finish_frames(np.clip(np.rint((frames + 1) * 127.5), 0, 255).astype(np.uint8), opts)
    if keep is not None:  # kept frames stay byte for byte
        kept = np.ones(shape.slots, bool)
        kept[list(redo)] = False
        flat, src = out.reshape(n, shape.slots, h, w, 4), keep.reshape(n, shape.slots, h, w, 4)
        flat[:, kept] = src[:, kept]
    return out


def check_kept(keep: np.ndarray, shape: AnimShape, card: ModelCard) -> None:
    want = (len(shape.directions), shape.frames, *card.size, 4)
    if keep.ndim != 6 or keep.shape[1:] != want or keep.dtype != np.uint8:
        raise BadInput(f"kept frames of shape {keep.shape}: this model draws characters of {want}")


def finish_frames(frames: np.ndarray, opts: AnimOptions) -> np.ndarray:
    """Hard alpha at opts.alpha_threshold (transparent pixels become 0); with lock_palette every opaque
    pixel of a character takes the nearest of its anchor's colours (k-means of the anchor frame, at most
    CHARACTER_COLOURS): one palette per character, so its frames cannot drift apart in colour."""
    out = frames.copy()
    opaque = out[..., 3] >= opts.alpha_threshold
    out[..., 3] = np.where(opaque, 255, 0)
    out[~opaque] = 0
    return lock_palettes(out) if opts.lock_palette else out


def lock_palettes(frames: np.ndarray) -> np.ndarray:
    """Each character of N x D x F x H x W x 4 finished frames in its anchor's colours (finish_frames)."""
    out = frames.copy()
    for c in range(len(out)):
        out[c] = _locked(out[c], out[c][..., 3] >= OPAQUE)
    return out


def _reps(colours: np.ndarray, k: int) -> np.ndarray:
    """At most k representative colours (K x 3 float) of M x 3 colours: weighted k-means, each centre
    snapped to a colour that occurs (data.kmeans)."""
    from scarlet_moon.data.kmeans import kmeans_reps

    uniq, counts = np.unique(colours, axis=0, return_counts=True)
    if len(uniq) <= k:
        return uniq
    reps = kmeans_reps(uniq.T[:, None, :], counts[None].astype(np.float32), np.ones((1, len(uniq)), bool), k)[0]
    return uniq[np.unique(reps)]


def _locked(char: np.ndarray, opaque: np.ndarray) -> np.ndarray:
    """One character's frames (D x F x H x W x 4) in its palette: the anchor's colours (at most
    CHARACTER_COLOURS), plus for each direction up to EXTRA_COLOURS of its own where a part of it is far
    from every anchor colour (a back view shows hair or a cape the front hides). Every frame of a
    direction shares that direction's palette."""
    from scarlet_moon.data.kmeans import nearest

    anchor = char[0, 0][opaque[0, 0]][:, :3].astype(np.float32)  # M x 3
    if len(anchor) == 0:
        anchor = char[opaque][:, :3].astype(np.float32)
    if len(anchor) == 0:
        return char
    base = _reps(anchor, CHARACTER_COLOURS)
    out = char.copy()
    for d in range(len(char)):
        px = char[d][opaque[d]][:, :3].astype(np.float32)  # P x 3, every frame of the direction
        if not len(px):
            continue
        near = nearest(px.T[:, None, :], base.T[:, None, :])[0]
        far = np.square(px - base[near]).sum(1) > FAR_COLOUR**2
        palette = base
        if far.sum() >= max(MIN_EXTRA_PIXELS, 0.05 * len(px)):
            palette = np.concatenate([base, _reps(px[far], EXTRA_COLOURS)])
        idx = nearest(px.T[:, None, :], palette.T[:, None, :])[0]
        frames = out[d]
        frames[opaque[d], :3] = palette[idx].astype(np.uint8)
    return out
