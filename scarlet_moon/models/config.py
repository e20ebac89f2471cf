"""The network's configuration: what it takes to rebuild the denoiser from a card (no training settings).

Stored flat inside the training config of every checkpoint (`card.config`), so `from_dict`
reads the network's keys and leaves the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from scarlet_moon.errors import BadInput
from scarlet_moon.limits import MAX_LEVELS, MAX_MULT, MAX_N_FEAT

ARCHS = ("seed", "unet")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "unet"               # "seed" (the ancestor's ContextUnet) | "unet" (ours)
    n_feat: int = 32                 # base channel count
    channel_mult: tuple[int, ...] = (1, 2, 4)  # "unet" only: channel multiplier per resolution level
    attention: bool = True           # "unet" only: self-attention at the lowest resolution
    dropout: float = 0.0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """The network keys of a (flat) config; others are ignored, missing ones take the defaults.
        Values are taken as they are: check() says which one is bad."""
        picked = {k: d[k] for k in cls.names() if k in d}
        if isinstance(picked.get("channel_mult"), list):
            picked["channel_mult"] = tuple(picked["channel_mult"])
        return cls(**picked)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        return d

    def problems(self) -> list[tuple[str, str]]:
        """(setting, what is allowed) for each bad value."""
        out = []
        whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
        if not isinstance(self.arch, str) or self.arch not in ARCHS:
            out.append(("arch", ", ".join(ARCHS)))
        if not (whole(self.n_feat) and 8 <= self.n_feat <= MAX_N_FEAT and self.n_feat % 8 == 0):
            out.append(("n_feat", f"a multiple of 8, 8..{MAX_N_FEAT}"))
        mult = self.channel_mult
        if not (isinstance(mult, tuple) and 1 <= len(mult) <= MAX_LEVELS
                and all(whole(m) and 1 <= m <= MAX_MULT for m in mult)):
            out.append(("channel_mult", f"a list of 1..{MAX_LEVELS} whole numbers 1..{MAX_MULT}"))
        if not isinstance(self.attention, bool):
            out.append(("attention", "true or false"))
        if not (isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool)
                and 0.0 <= self.dropout < 1.0):
            out.append(("dropout", "0 <= p < 1"))
        return out

    def check(self, source: str = "config") -> "ModelConfig":
        for name, allowed in self.problems():
            raise BadInput(f"bad {name}={getattr(self, name)!r} in {source}; allowed: {allowed}")
        return self
