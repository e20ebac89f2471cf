"""File names of generated sprites: `<label stem>_<NNN>.png`, as `sm sample` writes them and the studio
names them in the equivalent command."""

from __future__ import annotations

import re


def safe_name(name: str) -> str:
    """A label as a file-name stem: no path separators, no leading dots."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip(".") or "label"


def label_stems(names: list[str]) -> list[str]:
    """The file-name stem of each label: safe_name, and where two labels would share one (`a b` and
    `a_b`, or `Hero` and `hero` on a case-insensitive disk) each of those gets `-<label index>`."""
    stems = [safe_name(n) for n in names]
    taken: dict[str, int] = {}
    for s in stems:
        taken[s.lower()] = taken.get(s.lower(), 0) + 1
    return [f"{s}-{k}" if taken[s.lower()] > 1 else s for k, s in enumerate(stems)]
