"""The models the studio offers: the bundled one (or the path given at start), the bundled 32x32 one, and
the runs of the runs folder.

A model is named by an id (`bundled`, `bundled-32`, `start`, `run:<name>`), never by a path from a request: a run
id is looked up as `<runs_dir>/<name>/model.safetensors`, `name` a plain folder name.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import BUNDLED_MODELS

if TYPE_CHECKING:
    from scarlet_moon.backends.base import Denoiser
    from scarlet_moon.models.card import ModelCard

RUN_MODEL = "model.safetensors"


@dataclass(frozen=True)
class ModelRef:
    """One model: its id, its path (None: bundled), a display name, and the `model` value that names it
    in a command (None: the bundled default)."""

    id: str
    path: Path | None
    name: str
    source: str | None


class ModelShelf:
    """Model ids -> cards and (lazily opened, cached) denoisers."""

    def __init__(self, start_model: str | Path | None, runs_dir: Path) -> None:
        self.start_model = None if start_model is None else str(start_model)
        self.runs_dir = runs_dir
        self._cards: dict[str, ModelCard] = {}
        self._dens: dict[str, Denoiser] = {}
        self._lock = threading.Lock()

    def refs(self) -> list[ModelRef]:
        """Every model on offer, the start model (or the bundled one) first."""
        out = (
            [ModelRef("start", Path(self.start_model), Path(self.start_model).name, self.start_model)]
            if self.start_model
            else [ModelRef("bundled", None, "bundled", None)]
        )
        for name, label in (("bundled-25", "bundled, 25 steps"), ("bundled-32", "bundled 32x32")):
            if BUNDLED_MODELS[name].is_file():  # when this install has it
                out.append(ModelRef(name, BUNDLED_MODELS[name], label, name))
        for name in self.run_names():
            out.append(
                ModelRef(
                    f"run:{name}",
                    self.runs_dir / name / RUN_MODEL,
                    f"run {name}",
                    str(self.runs_dir / name / RUN_MODEL),
                )
            )
        return out

    def run_names(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            d.name for d in self.runs_dir.iterdir() if not d.name.startswith(".") and (d / RUN_MODEL).is_file()
        )

    def ref(self, model_id: object) -> ModelRef:
        """The model of `model_id`; BadInput naming the ids on offer otherwise."""
        refs = {r.id: r for r in self.refs()}
        if not isinstance(model_id, str) or model_id not in refs:
            raise BadInput(f"unknown {arg('model')} {model_id!r}; available: {', '.join(refs)}")
        return refs[model_id]

    def card(self, ref: ModelRef) -> ModelCard:
        from scarlet_moon.backends import read_card

        with self._lock:
            if ref.id not in self._cards:
                self._cards[ref.id] = read_card(ref.path)
            return self._cards[ref.id]

    def denoiser(self, ref: ModelRef) -> Denoiser:
        """Opened once per model (the default backend, as `sm sample` picks it); only the model's
        job worker calls this, so one denoiser is never used by two threads at once."""
        from scarlet_moon.backends import open_denoiser

        card = self.card(ref)
        with self._lock:
            if ref.id not in self._dens:
                self._dens[ref.id] = open_denoiser(card)
            return self._dens[ref.id]

    def describe(self, ref: ModelRef) -> dict[str, Any]:
        from scarlet_moon.diffusion.samplers import SAMPLERS

        card = self.card(ref)
        return {
            "id": ref.id,
            "name": ref.name,
            "labels": card.label_names,
            "size": list(card.size),
            "defaults": card.defaults(),
            "samplers": list(SAMPLERS),
            "max_steps": card.schedule.num_steps,
            "has_palette": card.palette is not None,
            "anim": card.meta.get("anim"),  # an animation model: {"directions", "frames"}; None for sprites
        }
