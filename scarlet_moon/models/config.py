"""The network's configuration: what it takes to rebuild the denoiser from a card (no training settings).

Stored flat inside the training config of every checkpoint (`card.config`), so `from_dict`
reads the network's keys and leaves the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from scarlet_moon.errors import BadInput

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
        """The network keys of a (flat) config; others are ignored, missing ones take the defaults."""
        picked = {k: d[k] for k in cls.names() if k in d}
        if "channel_mult" in picked:
            picked["channel_mult"] = tuple(picked["channel_mult"])
        return cls(**picked)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        return d

    def problems(self) -> list[tuple[str, str]]:
        """(setting, what is allowed) for each bad value."""
        out = []
        if self.arch not in ARCHS:
            out.append(("arch", ", ".join(ARCHS)))
        if not (isinstance(self.n_feat, int) and self.n_feat >= 8 and self.n_feat % 8 == 0):
            out.append(("n_feat", "a multiple of 8, >= 8"))
        if not (self.channel_mult and all(isinstance(m, int) and m >= 1 for m in self.channel_mult)):
            out.append(("channel_mult", "a non-empty list of whole numbers >= 1"))
        if not 0.0 <= self.dropout < 1.0:
            out.append(("dropout", "0 <= p < 1"))
        return out

    def check(self, source: str = "config") -> "ModelConfig":
        for name, allowed in self.problems():
            raise BadInput(f"bad {name}={getattr(self, name)!r} in {source}; allowed: {allowed}")
        return self
