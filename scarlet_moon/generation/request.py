"""A generation request: which sprites (labels, in order), from which seed, sampled and finished how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from scarlet_moon.diffusion.editing import Edit
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.limits import MAX_COUNT, MAX_SEED
from scarlet_moon.models.card import ModelCard, resolve_labels, split_count
from scarlet_moon.options import PostOptions, SamplingOptions, whole


def check_seed(seed: object) -> int:
    if not whole(seed) or int(seed) < 0:  # type: ignore[call-overload]
        raise BadInput(f"{arg('seed')} {seed!r}: must be an integer >= 0")
    if int(seed) > MAX_SEED:  # type: ignore[call-overload]
        raise BadInput(f"{arg('seed')} {seed!r}: must be at most {MAX_SEED}")
    return int(seed)  # type: ignore[call-overload]


def plan_labels(card: ModelCard, labels: Sequence[str | int], count: int) -> tuple[int, ...]:
    """`count` sprites split over the given labels (names or indices), in label order."""
    if not whole(count) or count < 1:
        raise BadInput(f"{arg('count')} {count!r}: must be at least 1")
    if count > MAX_COUNT:
        raise BadInput(f"{arg('count')} {count}: at most {MAX_COUNT:,} sprites per request")
    idx = resolve_labels(labels, card.label_names)
    if not idx:
        raise BadInput(f"{arg('label')}: give at least one label")
    per = split_count(int(count), len(idx))
    return tuple(k for k, n in zip(idx, per) for _ in range(n))


@dataclass(frozen=True, eq=False)
class Request:
    """`labels` holds one label index per sprite; sprite i of a request is the same wherever it is made."""

    labels: tuple[int, ...]
    seed: int = 0
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    post: PostOptions = field(default_factory=PostOptions)
    edit: Edit = field(default_factory=Edit)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check_seed(self.seed))
        labels = tuple(int(k) for k in self.labels)
        if not labels or min(labels) < 0:
            raise BadInput(f"labels must be label indices >= 0, at least one; got {self.labels[:8]!r}")
        object.__setattr__(self, "labels", labels)

    @classmethod
    def plan(
        cls,
        card: ModelCard,
        label: str | int | Sequence[str | int] = 0,
        count: int = 16,
        seed: int = 0,
        *,
        sampling: SamplingOptions | None = None,
        post: PostOptions | None = None,
        edit: Edit | None = None,
    ) -> "Request":
        """`count` sprites of `label` (a name, an index, or a list of them: the count is split), checked
        against `card` (labels, and sampling settings that depend on the model) before any sampling."""
        labels = [label] if isinstance(label, (str, int, np.integer)) else list(label)
        req = cls(
            plan_labels(card, labels, count),
            seed=seed,
            sampling=sampling or SamplingOptions(),
            post=post or PostOptions(),
            edit=edit or Edit(),
        )
        req.sampling.resolve(card)
        return req

    def check_fits(self, card: ModelCard) -> None:
        """Every label exists in `card`."""
        if max(self.labels) >= len(card.label_names):
            raise BadInput(
                f"label {max(self.labels)} is out of range for a model with labels 0..{len(card.label_names) - 1}"
            )
