"""File names of generated sprites: `<label stem>_<NNN>.png`, as `sm sample` writes them and the studio
names them in the equivalent command."""

from __future__ import annotations

import re
from collections.abc import Sequence


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


def file_names(label_names: list[str], labels: Sequence[int]) -> list[tuple[str, int]]:
    """(file stem, index within its label) for each sprite in order: ("hero_000", 0), ("hero_001", 1)...
    The names `sm sample` gives its PNGs and `sm sheet` its frames."""
    counters: dict[int, int] = {}
    stems, out = label_stems(label_names), []
    for k in labels:
        n = counters[k] = counters.get(k, -1) + 1
        out.append((f"{stems[k]}_{n:03d}", n))
    return out
