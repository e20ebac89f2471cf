"""Type checks of a model card read from a file (checkpoint metadata or ONNX metadata).

A card is JSON that anyone can edit; every value the commands read from it is checked here
once, so a tampered or foreign file is a one-line BadInput instead of a traceback later on.
No torch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from scarlet_moon.diffusion.samplers import SAMPLERS
from scarlet_moon.diffusion.schedule import Schedule
from scarlet_moon.errors import BadInput
from scarlet_moon.limits import MAX_LABEL_CHARS, MAX_LABELS, MAX_PALETTE, MAX_SIDE, MAX_TIMESTEPS, check_sprite_size
from scarlet_moon.models.config import ModelConfig

Bad = Callable[[str, str], BadInput]  # (key, what is allowed) -> the error to raise
PREDICTIONS = ("eps", "v")


def _int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_card_meta(meta: Mapping[str, Any], where: str) -> None:
    """BadInput naming the first key of `meta` whose value a command could not use."""

    def bad(key: str, expected: str) -> BadInput:
        return BadInput(f"{where}: its card has a bad {key!r} ({_short(meta.get(key))}); expected {expected}")

    names = meta.get("label_names")
    if not (
        isinstance(names, list)
        and 0 < len(names) <= MAX_LABELS
        and all(isinstance(n, str) and n.strip() and len(n) <= MAX_LABEL_CHARS for n in names)
        and len(set(names)) == len(names)
    ):
        raise bad("label_names", f"a list of 1..{MAX_LABELS} distinct, non-empty label names")
    size = meta.get("image_size")
    if not (isinstance(size, list) and len(size) == 2 and all(_int(v, 1, MAX_SIDE) for v in size)):
        raise bad("image_size", f"[height, width], whole numbers 1..{MAX_SIDE}")
    check_sprite_size(size[0], size[1], what=f"{where}: sprite size")
    if not _int(meta.get("channels"), 1, 4):
        raise bad("channels", "a whole number 1..4")
    if meta.get("prediction") not in PREDICTIONS:
        raise bad("prediction", " or ".join(PREDICTIONS))
    _check_schedule(meta.get("schedule"), bad)
    palette = meta.get("palette")
    if palette is not None and not (
        isinstance(palette, list)
        and len(palette) <= MAX_PALETTE
        and all(isinstance(c, list) and len(c) == 3 and all(_int(v, 0, 255) for v in c) for c in palette)
    ):
        raise bad("palette", f"a list of at most {MAX_PALETTE} [r, g, b] colours, each 0..255")
    _check_config(meta.get("config", {}), where, bad)
    post = meta.get("post")
    if post is not None and not (
        isinstance(post, dict)
        and set(post) <= {"cleanup", "colors", "source"}
        and isinstance(post.get("cleanup", True), bool)
        and (post.get("colors") is None or _int(post.get("colors"), 1, MAX_PALETTE))
    ):
        raise bad("post", f"a table with cleanup (true or false) and colors (a whole number 1..{MAX_PALETTE})")
    dist = meta.get("distilled")
    scale = dist.get("guidance") if isinstance(dist, dict) else None
    if dist is not None and not (
        isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0
    ):
        raise bad("distilled", "a table whose 'guidance' is a number > 0 (scarlet_moon.training.distill)")


def _check_schedule(schedule: Any, bad: Bad) -> None:
    if not isinstance(schedule, dict):
        raise bad("schedule", "an object with kind and num_steps")
    try:
        steps = Schedule.from_dict(schedule).num_steps
    except (BadInput, TypeError, ValueError, OverflowError):
        raise bad("schedule", "an object with kind and num_steps (and betas)") from None
    if steps > MAX_TIMESTEPS:
        raise bad("schedule", f"num_steps up to {MAX_TIMESTEPS}")


def _check_config(config: Any, where: str, bad: Bad) -> None:
    """The sampler defaults a card gives (ModelCard.defaults) and the flags sampling reads."""
    if not isinstance(config, dict):
        raise bad("config", "an object")
    checks = (
        ("sample_steps", lambda v: _int(v, 1, MAX_TIMESTEPS), "a whole number >= 1"),
        ("guidance", _number, "a number"),
        ("sampler", lambda v: v in SAMPLERS, f"one of {', '.join(SAMPLERS)}"),
        ("clip_x0", lambda v: isinstance(v, bool), "true or false"),
    )
    for key, ok, expected in checks:
        if key in config and not ok(config[key]):
            raise BadInput(f"{where}: its card's config has a bad {key!r} ({_short(config[key])}); expected {expected}")
    for name, allowed in ModelConfig.from_dict(config).problems():  # what rebuilding the network needs
        raise BadInput(
            f"{where}: its card's config has a bad {name!r} ({_short(config.get(name))}); expected {allowed}"
        )
