"""An animation model: one sprite denoiser that draws a character's frames one slot at a time, each
conditioned on frames already drawn, so every frame is the same character on the same anchor.

A character has D directions x F frames = S slots, slot s = d * F + f. The network is a SpriteUNet
predicting 4 RGBA channels from the noisy frame plus `cond_channels(S)` planes:

    [anchor RGBA (4), has-anchor (1), key RGBA (4), has-key (1), slot one-hot (S)]

- anchor: slot 0 (first direction, first frame), drawn with no reference (both flags 0);
- a direction's first frame (d, 0), d > 0: conditioned on the anchor;
- a later frame (d, f), f > 0: conditioned on the anchor and on its direction's first frame (the key).

So a whole character takes three passes of the sampler (anchor; first frames; the rest), each batched
over characters. The reference planes are aligned pixel for pixel with the frame being drawn: the
network copies colours and the silhouette's place from them, which is what keeps identity and anchors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from scarlet_moon.errors import BadInput

REF_PLANES = 10  # anchor RGBA + flag, key RGBA + flag
MAX_SLOTS = 64  # directions x frames a model may hold


def cond_channels(slots: int) -> int:
    return REF_PLANES + slots


@dataclass(frozen=True)
class AnimShape:
    """What an animation model draws: its directions (names, in order) and frames per direction."""

    directions: tuple[str, ...]
    frames: int

    def __post_init__(self) -> None:
        if not self.directions or not 1 <= self.frames or self.slots > MAX_SLOTS:
            raise BadInput(
                f"an animation model holds 1..{MAX_SLOTS} slots (directions x frames), "
                f"got {len(self.directions)} x {self.frames}"
            )

    @property
    def slots(self) -> int:
        return len(self.directions) * self.frames

    def slot(self, direction: int, frame: int) -> int:
        return direction * self.frames + frame

    def passes(self) -> list[list[int]]:
        """The slots each sampler pass draws, in order: the anchor; every other direction's first frame;
        every later frame (an empty pass is left out)."""
        firsts = [self.slot(d, 0) for d in range(1, len(self.directions))]
        rest = [self.slot(d, f) for d in range(len(self.directions)) for f in range(1, self.frames)]
        return [p for p in ([0], firsts, rest) if p]

    def refs(self, slot: int) -> tuple[int | None, int | None]:
        """(anchor slot, key slot) a slot is conditioned on; None: that reference is empty."""
        d, f = divmod(slot, self.frames)
        if slot == 0:
            return None, None
        return 0, (self.slot(d, 0) if f > 0 else None)

    def mirrored(self) -> list[int]:
        """Slot order of a left-right mirrored character: 'left' and 'right' swap, other directions stay."""
        swap = list(range(len(self.directions)))
        if "left" in self.directions and "right" in self.directions:
            lt, rt = self.directions.index("left"), self.directions.index("right")
            swap[lt], swap[rt] = rt, lt
        return [self.slot(swap[d], f) for d in range(len(self.directions)) for f in range(self.frames)]

    def to_dict(self) -> dict[str, Any]:
        return {"directions": list(self.directions), "frames": self.frames}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "AnimShape | None":
        """The shape a card's metadata records under "anim"; None for a still-sprite model."""
        anim = meta.get("anim")
        if anim is None:
            return None
        try:
            return cls(tuple(str(d) for d in anim["directions"]), int(anim["frames"]))
        except (KeyError, TypeError, ValueError):
            raise BadInput(f"the model's 'anim' entry is malformed: {anim!r}") from None


def conditions(ref_anchor: Any, ref_key: Any, has_anchor: Any, has_key: Any, slot: Any, slots: int) -> Any:
    """The conditioning planes of a batch (torch): refs [B,4,H,W] in [-1, 1] (zeros where absent),
    has_* [B] float 0/1, slot [B] long -> [B, cond_channels(slots), H, W]."""
    import torch

    b, _, h, w = ref_anchor.shape
    onehot = torch.nn.functional.one_hot(slot.long(), slots).to(ref_anchor.dtype)
    flags = [has_anchor.view(b, 1, 1, 1), has_key.view(b, 1, 1, 1)]
    planes = [ref_anchor, flags[0].expand(b, 1, h, w), ref_key, flags[1].expand(b, 1, h, w)]
    return torch.cat([*planes, onehot.view(b, slots, 1, 1).expand(b, slots, h, w)], 1)
