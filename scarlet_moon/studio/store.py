"""What the studio holds in memory: generated sprites (to keep, vary, export) and uploaded palettes.

Both are bounded: the oldest entries go first. Ids are made here, never taken from a request as a path.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from scarlet_moon.errors import BadInput, arg

MAX_SPRITES_HELD = 20_000  # ~1 KiB each at 16x16 RGBA
MAX_PALETTES_HELD = 64

T = TypeVar("T")


@dataclass(frozen=True)
class SpriteRecord:
    """A generated sprite and what regenerates it: `settings` (JSON-ready), `command` (the equivalent
    `sm sample` line), `file` (the PNG that command writes); init/mask: the edit's inputs, if any."""

    id: str
    rgba: np.ndarray  # uint8 H x W x 4
    label: str
    settings: dict[str, Any]
    command: str
    file: str
    init: np.ndarray | None = None  # uint8 H x W x 4
    mask: np.ndarray | None = None  # bool H x W, True = generated
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Palette:
    id: str
    name: str  # the uploaded file's name, shown in the equivalent command
    colors: np.ndarray  # K x 3 uint8


class Bounded(Generic[T]):
    """An insertion-ordered dict that forgets its oldest entries past `limit`; thread-safe."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what = limit, what
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, value: T) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, key: object, param: str) -> T:
        """The entry of `key`; BadInput naming `param` when it is unknown (or forgotten)."""
        with self._lock:
            if isinstance(key, str) and key in self._items:
                return self._items[key]
        raise BadInput(
            f"unknown {arg(param)} {str(key)[:80]!r}: no such {self.what} here (the studio keeps the "
            f"latest {self.limit:,}; was it restarted?)"
        )


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(6)}"


class Store:
    def __init__(self) -> None:
        self.sprites: Bounded[SpriteRecord] = Bounded(MAX_SPRITES_HELD, "sprite")
        self.palettes: Bounded[Palette] = Bounded(MAX_PALETTES_HELD, "palette")
