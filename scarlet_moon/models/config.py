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
# What a card without `channel_mult` was built with: the default before the depth followed the size.
LEGACY_CHANNEL_MULT = (1, 2, 4)


def channel_mult_for(height: int, width: int) -> tuple[int, ...]:
    """The "unet" depth a sprite size gets: halve until the lowest resolution would drop below 4
    pixels on the shorter side (or stop dividing evenly); multipliers 1, 2, 4, 4, ...
    8x8 -> (1, 2); 16x16 and 24x24 -> (1, 2, 4) (the bundled model's); 32x32 -> (1, 2, 4, 4); 64x64 -> 5 levels."""
    downs = 0
    while min(height, width) >> (downs + 1) >= 4 and height % (2 << downs) == 0 and width % (2 << downs) == 0:
        downs += 1
    return tuple(min(2**i, 4) for i in range(downs + 1))


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "unet"  # "seed" (the ancestor's ContextUnet) | "unet" (ours)
    n_feat: int = 32  # base channel count
    # "unet" only: channel multiplier per resolution level; None = by the sprite size (channel_mult_for),
    # fixed when a run starts (for_size), so every card records the one it was built with
    channel_mult: tuple[int, ...] | None = None
    attention: bool = True  # "unet" only: self-attention at the lowest resolution
    dropout: float = 0.0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """The network keys of a (flat) config; others are ignored, missing ones take the defaults.
        Values are taken as they are: check() says which one is bad."""
        picked = {k: d[k] for k in cls.names() if k in d}
        if picked.get("channel_mult") is None:  # a card from before the depth followed the size
            picked["channel_mult"] = LEGACY_CHANNEL_MULT
        if isinstance(picked.get("channel_mult"), list):
            picked["channel_mult"] = tuple(picked["channel_mult"])
        return cls(**picked)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channel_mult"] = None if self.channel_mult is None else list(self.channel_mult)
        return d

    def for_size(self, height: int, width: int) -> "ModelConfig":
        """This config with the depth fixed: channel_mult as given, else the one the size gets."""
        if self.channel_mult is not None:
            return self
        return dataclasses.replace(self, channel_mult=channel_mult_for(height, width))

    def problems(self) -> list[tuple[str, str]]:
        """(setting, what is allowed) for each bad value."""
        out = []
        whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
        if not isinstance(self.arch, str) or self.arch not in ARCHS:
            out.append(("arch", ", ".join(ARCHS)))
        if not (whole(self.n_feat) and 8 <= self.n_feat <= MAX_N_FEAT and self.n_feat % 8 == 0):
            out.append(("n_feat", f"a multiple of 8, 8..{MAX_N_FEAT}"))
        mult = self.channel_mult
        if mult is not None and not (
            isinstance(mult, tuple)
            and 1 <= len(mult) <= MAX_LEVELS
            and all(whole(m) and 1 <= m <= MAX_MULT for m in mult)
        ):
            out.append(("channel_mult", f"a list of 1..{MAX_LEVELS} whole numbers 1..{MAX_MULT}"))
        if not isinstance(self.attention, bool):
            out.append(("attention", "true or false"))
        if not (
            isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool) and 0.0 <= self.dropout < 1.0
        ):
            out.append(("dropout", "0 <= p < 1"))
        return out

    def check(self, source: str = "config") -> "ModelConfig":
        for name, allowed in self.problems():
            raise BadInput(f"bad {name}={getattr(self, name)!r} in {source}; allowed: {allowed}")
        return self
