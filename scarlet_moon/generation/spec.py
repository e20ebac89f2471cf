"""What to generate, as one typed value: the model, labels and count, seed, and the option groups.

    spec = GenerationSpec(labels=("hero",), count=64, seed=0, sampling=SamplingOptions(steps=8))

`sm sample`, `sm sheet`, the studio and `scarlet_moon.generate` build one of these; the pipelines
(scarlet_moon.pipelines) turn it into sprites.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scarlet_moon.backends import BackendOptions
from scarlet_moon.options import EditOptions, PostOptions, SamplingOptions

if TYPE_CHECKING:
    from scarlet_moon.generation.request import Request
    from scarlet_moon.models.card import ModelCard


@dataclass(frozen=True, eq=False)
class GenerationSpec:
    """`count` sprites split over `labels` (names or indices) from `model` (a .safetensors, an .onnx or
    None: the bundled model); `batch`: sprites per sampled batch (None: the device's default)."""

    model: str | Path | None = None
    labels: Sequence[str | int] = (0,)
    count: int = 16
    seed: int = 0
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    post: PostOptions = field(default_factory=PostOptions)
    edit: EditOptions = field(default_factory=EditOptions)
    backend: BackendOptions = field(default_factory=BackendOptions)
    batch: int | None = None

    def __post_init__(self) -> None:
        """Each option group must be its dataclass (a dict or a string would fail deep inside)."""
        from scarlet_moon.errors import BadInput, arg

        groups = {"sampling": SamplingOptions, "post": PostOptions, "edit": EditOptions, "backend": BackendOptions}
        for name, cls in groups.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise BadInput(f"{arg(name)}: expected a scarlet_moon.{cls.__name__}, got {type(value).__name__}")
        if isinstance(self.labels, (str, bytes)) or not isinstance(self.labels, Sequence):
            raise BadInput(f"{arg('label')} {self.labels!r}: expected a label name or index, or a list of them")

    def inputs(self) -> list[object]:
        """What the run reads, for the output policy (scarlet_moon.outputs): the model file (bundled names
        resolved), and the init and mask (paths; an image or array given to the API has no file)."""
        from scarlet_moon.models.card import model_path

        return [model_path(self.model), self.edit.init, self.edit.mask]

    def request(self, card: ModelCard) -> Request:
        """The library Request for `card`: labels resolved, init and mask read at its sprite size, the
        backend options checked against it (everything before any output is made)."""
        from scarlet_moon.generation.request import Request

        req = Request.plan(
            card,
            list(self.labels),
            self.count,
            self.seed,
            sampling=self.sampling,
            post=self.post,
            edit=self.edit.load(card),
        )
        self.backend.for_model(card)
        return req

    def meta(self, card: ModelCard, req: Request) -> dict[str, Any]:
        """What regenerates these sprites: model, seed, sampler, steps, guidance, size and the edit."""
        s = req.sampling.resolve(card)
        meta = {
            "model": str(card.path),
            "model_fingerprint": card.fingerprint(),
            "data_fingerprint": card.meta.get("data_fingerprint"),
            "seed": req.seed,
            "sampler": s.sampler,
            "steps": s.steps,
            "guidance": s.guidance,
            "size": list(card.size),
        }
        return {**meta, **self.edit.meta(req.edit)}
