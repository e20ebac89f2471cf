"""Typed, frozen generation options, each value checked once, where it enters (the constructor).

    SamplingOptions(sampler=None, steps=None, guidance=None, eta=0.0)   None: the model card's default
    PostOptions(alpha_threshold=128, palette=None, colors=None, snap_palette=True)
    EditOptions(init=None, mask=None, strength=None, tileable=False)    sources, read at the model's size

`SamplingOptions.resolve(card)` fills the card's defaults and checks what depends on the model
(steps up to its timesteps, eta only with ddim) before any sampling starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from scarlet_moon.diffusion.samplers import SAMPLERS
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import ModelCard

if TYPE_CHECKING:
    from scarlet_moon.diffusion.editing import Edit

PaletteLike = Union[np.ndarray, str, "os.PathLike[str]", None]


def whole(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def number(value: object) -> bool:
    """A finite int or float that is not a bool."""
    return (whole(value) or isinstance(value, (float, np.floating))) and math.isfinite(float(value))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Sampling:
    """SamplingOptions resolved against a model card: what the sampling loop runs."""

    sampler: str
    steps: int
    guidance: float  # the scale asked for (what the user sees)
    row_guidance: float  # the scale applied between the labelled and null rows (ModelCard.guidance_between_rows)
    eta: float
    clip_x0: bool


@dataclass(frozen=True)
class SamplingOptions:
    """How to sample; None takes the model card's default."""

    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    eta: float = 0.0

    def __post_init__(self) -> None:
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise BadInput(f"unknown {arg('sampler')} {self.sampler!r}; expected one of {', '.join(SAMPLERS)}")
        if self.steps is not None and not (whole(self.steps) and self.steps >= 1):
            raise BadInput(f"{arg('steps')} {self.steps!r}: expected a whole number >= 1")
        if self.guidance is not None and not number(self.guidance):
            raise BadInput(f"{arg('guidance')} {self.guidance!r}: expected a finite number (1 = no guidance)")
        if not (number(self.eta) and self.eta >= 0):
            raise BadInput(f"{arg('eta')} {self.eta!r}: expected a finite number >= 0")

    def resolve(self, card: ModelCard) -> Sampling:
        d = card.defaults()
        sampler = self.sampler or d["sampler"]
        steps = int(self.steps or d["steps"])
        guidance = float(d["guidance"] if self.guidance is None else self.guidance)
        if sampler not in SAMPLERS:
            raise BadInput(f"model {str(card.path)!r}: its card names an unknown sampler {sampler!r}")
        if self.eta != 0.0 and sampler != "ddim":
            raise BadInput(f"{arg('eta')} {self.eta}: applies to the ddim sampler only, not {sampler}")
        if steps > card.schedule.num_steps:
            raise BadInput(
                f"{arg('steps')} {steps}: this model has {card.schedule.num_steps} timesteps, "
                f"so at most {card.schedule.num_steps}"
            )
        return Sampling(
            sampler,
            steps,
            guidance,
            card.guidance_between_rows(guidance),
            float(self.eta),
            bool(card.config.get("clip_x0", True)),
        )


@dataclass(frozen=True, eq=False)
class PostOptions:
    """Pixel-perfect post-processing (scarlet_moon.data.pixels); `palette` may be a file to load.
    `cleanup` (data.neighbours): bench/results/fidelity.md measured it on the bundled model."""

    alpha_threshold: int = 128
    palette: np.ndarray | None = field(default=None)  # K x 3 uint8 once loaded
    colors: int | None = None
    snap_palette: bool = True  # the card's palette and colour cap by default
    cleanup: bool | None = None  # merge isolated near-duplicate shades, drop specks;
    # None: the card's (ModelCard.post_defaults), else on

    def __post_init__(self) -> None:
        from scarlet_moon.data.palettes import as_palette, load_palette

        if not (whole(self.alpha_threshold) and 1 <= self.alpha_threshold <= 255):
            raise BadInput(f"{arg('alpha_threshold')} {self.alpha_threshold!r}: expected a whole number 1..255")
        if self.cleanup is not None and not isinstance(self.cleanup, bool):
            raise BadInput(f"{arg('cleanup')} {self.cleanup!r}: expected true or false")
        if self.colors is not None and not (whole(self.colors) and self.colors >= 1):
            raise BadInput(f"{arg('colors')} {self.colors!r}: expected a whole number >= 1")
        if isinstance(self.palette, (str, os.PathLike)):
            object.__setattr__(self, "palette", load_palette(Path(self.palette)))
        elif self.palette is not None:
            object.__setattr__(self, "palette", as_palette(self.palette))


@dataclass(frozen=True, eq=False)
class EditOptions:
    """Editing inputs as the user gives them: `init` and `mask` a path, PIL image or uint8 array (read at
    the model's sprite size by `load`), `strength` in [0, 1] (None: 0.75, or 1 with a mask), `tileable`."""

    init: Any = None
    mask: Any = None
    strength: float | None = None
    tileable: bool = False

    def load(self, card: ModelCard) -> "Edit":
        """The checked diffusion.editing.Edit for `card`'s sprite size and channels."""
        from scarlet_moon.generation.edits import load_edit

        return load_edit(self.init, self.mask, self.strength, self.tileable, size=card.size, channels=card.channels)

    def meta(self, edit: "Edit") -> dict[str, Any]:
        """JSON-ready: the sources as given (paths as text) and the resolved strength."""
        from scarlet_moon.generation.edits import edit_meta

        return edit_meta(edit, self.init, self.mask)
