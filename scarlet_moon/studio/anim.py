"""The studio's animation view: characters of an animation model drawn at once and played as GIFs.

    POST /api/anim  {"model": id, "label": name, "count": 1..16, "seed": int, "fps": 1..60}
      -> {"fps", "directions", "frames", "characters": [{"name", "gif"}]}   gif: a data URL, 4x, a row
         per direction, the walk cycle played in place

One request draws synchronously in a worker thread (an animation model is not a sprite denoiser: it
has no job queue); one at a time per studio, a second meanwhile is Busy.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.studio.jobs import Busy
from scarlet_moon.studio.models import ModelShelf

MAX_CHARACTERS = 16


def _int(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadInput(f"{arg(key)} {value!r}: expected a whole number {low}..{high}")
    return value


class AnimView:
    def __init__(self, shelf: ModelShelf) -> None:
        self.shelf = shelf
        self._lock = threading.Lock()
        self._nets: dict[str, Any] = {}  # model id -> its network, loaded once (used under _lock only)

    def draw(self, body: object) -> dict[str, Any]:
        """The request's characters as GIFs (a row per direction, the frames played in place)."""
        from scarlet_moon.generation.anim import AnimOptions, anim_shape_of, draw_characters, load_anim_net
        from scarlet_moon.generation.anim_preview import preview_gif
        from scarlet_moon.models.card import resolve_labels

        if not isinstance(body, dict):
            raise BadInput("expected a JSON object of settings")
        ref = self.shelf.ref(body.get("model"))
        card = self.shelf.card(ref)
        shape = anim_shape_of(card)
        label = resolve_labels([str(body.get("label", "0"))], card.label_names)[0]
        count = _int(body, "count", 4, 1, MAX_CHARACTERS)
        seed = _int(body, "seed", 0, 0, 2**31 - 1)
        fps = _int(body, "fps", 8, 1, 60)
        if not self._lock.acquire(blocking=False):
            raise Busy("characters are being drawn; try again when they are shown")
        try:
            if ref.id not in self._nets:
                self._nets[ref.id] = load_anim_net(card)
            chars = draw_characters(card, [label] * count, AnimOptions(seed=seed), net=self._nets[ref.id])
        finally:
            self._lock.release()
        name = card.label_names[label]
        out = []
        for k, char in enumerate(chars):
            gif = preview_gif(char[None], max(1, round(1000 / fps)), zoom=4)
            out.append({"name": f"{name}_{k}", "gif": "data:image/gif;base64," + base64.b64encode(gif).decode()})
        return {"fps": fps, "directions": list(shape.directions), "frames": shape.frames, "characters": out}
