"""A generate request's JSON -> a checked library Request, with the library's own checks and messages,
and the equivalent `sm sample` command of each sprite it makes.

    {"model": "bundled", "label": "hero", "count": 16, "seed": 0, "sampler": null, "steps": null,
     "guidance": null, "palette": "training" | "none" | <palette id>, "colors": null,
     "init": <sprite id>, "strength": 0.6, "mask": [0, 1, ...] (H*W, 1 = generate), "tileable": false}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.studio.models import ModelRef, ModelShelf
from scarlet_moon.studio.store import Palette, Store

if TYPE_CHECKING:
    from scarlet_moon.generation.request import Request
    from scarlet_moon.models.card import ModelCard

MAX_STUDIO_COUNT = 1024  # sprites per studio request (sent to the page as PNGs); `sm sample` for more
FIELDS = (
    "model",
    "label",
    "count",
    "seed",
    "sampler",
    "steps",
    "guidance",
    "palette",
    "colors",
    "init",
    "strength",
    "mask",
    "tileable",
)
OUT = "samples"


@dataclass(frozen=True)
class GenerateSpec:
    """A checked generate request: the model, the library Request, and what the command line needs."""

    ref: ModelRef
    card: ModelCard
    req: Request
    label: str
    palette: Palette | None
    snap: bool
    init: np.ndarray | None  # uint8 H x W x 4 (the kept sprite being edited)
    mask: np.ndarray | None  # bool H x W, True = generate
    source: str | None  # the id of the init sprite

    @property
    def count(self) -> int:
        return len(self.req.labels)


def _check_fields(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("expected a JSON object of generation settings")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadInput(f"unknown setting {unknown[0]!r}; allowed: {', '.join(FIELDS)}")
    return body


def _label(value: object, card: ModelCard) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadInput(
            f"{arg('label')} {value!r}: expected a label name or index; labels: {', '.join(card.label_names)}"
        )
    from scarlet_moon.models.card import resolve_labels

    return card.label_names[resolve_labels([value], card.label_names)[0]]


def _mask(value: object, size: tuple[int, int]) -> np.ndarray | None:
    if value is None:
        return None
    h, w = size
    if (
        not isinstance(value, list)
        or len(value) != h * w
        or any(v not in (0, 1) or isinstance(v, float) for v in value)
    ):
        raise BadInput(f"{arg('mask')}: expected {h * w} values 0 or 1 (a {w}x{h} mask, 1 = generate)")
    return np.array(value, bool).reshape(h, w)


def _palette(value: object, store: Store) -> tuple[Palette | None, bool]:
    """(uploaded palette, snap to the model's palette): "training" (default), "none", or an upload's id."""
    if value in (None, "training"):
        return None, True
    if value == "none":
        return None, False
    return store.palettes.get(value, "palette"), True


def parse_generate(body: object, shelf: ModelShelf, store: Store) -> GenerateSpec:
    """Every check `sm sample` makes (the library's), before the job is queued; BadInput otherwise."""
    from scarlet_moon.generation.edits import load_edit
    from scarlet_moon.generation.request import Request
    from scarlet_moon.options import PostOptions, SamplingOptions

    b = _check_fields(body)
    ref = shelf.ref(b.get("model", shelf.refs()[0].id))
    card = shelf.card(ref)
    if card.meta.get("anim") is not None:
        raise BadInput(f"{arg('model')} {ref.id!r} is an animation model: it draws whole characters (/api/anim)")
    count = b.get("count", 16)
    if count is None:  # an empty Count field
        raise BadInput(f"{arg('count')} is empty: enter how many sprites to make, 1..{MAX_STUDIO_COUNT:,}")
    if isinstance(count, int) and not isinstance(count, bool) and count > MAX_STUDIO_COUNT:
        raise BadInput(
            f"{arg('count')} {count}: the studio makes at most {MAX_STUDIO_COUNT:,} sprites per request "
            "(sm sample makes more)"
        )
    label = _label(b.get("label", 0), card)
    palette, snap = _palette(b.get("palette"), store)
    source = b.get("init")
    init = None if source is None else store.sprites.get(source, "init").rgba
    mask = _mask(b.get("mask"), card.size)
    tileable = b.get("tileable", False)
    if not isinstance(tileable, bool):
        raise BadInput(f"{arg('tileable')} {tileable!r}: expected true or false")
    edit = load_edit(init, mask, b.get("strength"), tileable, size=card.size, channels=card.channels)
    req = Request.plan(
        card,
        label,
        count,
        b.get("seed", 0),
        sampling=SamplingOptions(b.get("sampler"), b.get("steps"), b.get("guidance")),
        post=PostOptions(
            palette=None if palette is None else palette.colors, colors=b.get("colors"), snap_palette=snap
        ),
        edit=edit,
    )
    return GenerateSpec(ref, card, req, label, palette, snap, init, mask, source)


def settings_of(spec: GenerateSpec) -> dict[str, Any]:
    """The resolved settings (the model's defaults filled in), JSON-ready."""
    s = spec.req.sampling.resolve(spec.card)
    e = spec.req.edit
    return {
        "model": spec.ref.id,
        "label": spec.label,
        "count": spec.count,
        "seed": spec.req.seed,
        "sampler": s.sampler,
        "steps": s.steps,
        "guidance": s.guidance,
        "palette": spec.palette.name if spec.palette else ("training" if spec.snap else "none"),
        "colors": spec.req.post.colors,
        "strength": e.strength,
        "tileable": bool(e.tileable),
        "init": spec.source,
        "inpaint": spec.mask is not None,
    }


def input_files(job_id: str) -> tuple[str, str]:
    """Where the export zip puts an edit's init sprite and mask (the command names them)."""
    return f"inputs/{job_id}_init.png", f"inputs/{job_id}_mask.png"


def sample_params(spec: GenerateSpec, job_id: str) -> dict[str, Any]:
    """What regenerates this request's sprites, as scarlet_moon.generate's parameters (None: left out);
    `out`: the folder `sm sample` writes to, one per job (sprite i becomes file_of(spec, i, job_id) there),
    so that running every command of an export writes every sprite, none over another."""
    st = settings_of(spec)
    init_file, mask_file = input_files(job_id)
    return {
        "model": spec.ref.source,
        "label": spec.label,
        "count": spec.count,
        "seed": spec.req.seed,
        "sampler": st["sampler"],
        "steps": st["steps"],
        "guidance": st["guidance"],
        "palette": spec.palette.name if spec.palette else None,
        "snap_palette": spec.snap,
        "colors": st["colors"],
        "init": init_file if spec.init is not None else None,
        "strength": st["strength"] if spec.init is not None else None,
        "mask": mask_file if spec.mask is not None else None,
        "tileable": st["tileable"],
        "out": f"{OUT}-{job_id}",
    }


# scarlet_moon.generate's option groups: the typed dataclass each of sample_params' keys goes in
CALL_GROUPS = {
    "sampling": ("SamplingOptions", ("sampler", "steps", "guidance")),
    "post": ("PostOptions", ("palette", "snap_palette", "colors")),
    "edit": ("EditOptions", ("init", "strength", "mask", "tileable")),
}


def python_call(params: dict[str, Any], index: int) -> str:
    """The scarlet_moon.generate call whose `index`-th image is the sprite (the studio's default way
    to show how a sprite is made again), its options in their typed groups."""
    defaults = {"snap_palette": True, "tileable": False}
    given = {k: v for k, v in params.items() if v is not None and k != "out" and defaults.get(k, object()) != v}
    grouped = {k for _, keys in CALL_GROUPS.values() for k in keys}
    args = [f"{k}={v!r}" for k, v in given.items() if k not in grouped]
    for group, (cls, keys) in CALL_GROUPS.items():
        inner = ", ".join(f"{k}={given[k]!r}" for k in keys if k in given)
        if inner:
            args.append(f"{group}=scarlet_moon.{cls}({inner})")
    return f"scarlet_moon.generate({', '.join(args)})[{index}]"


def file_of(spec: GenerateSpec, index: int, job_id: str) -> str:
    """The PNG `sm sample` writes for sprite `index` of this request (one label: index = its number),
    in the job's own folder."""
    from scarlet_moon.generation.names import label_stems

    stem = label_stems(spec.card.label_names)[spec.req.labels[0]]
    return f"{OUT}-{job_id}/{stem}_{index:03d}.png"
