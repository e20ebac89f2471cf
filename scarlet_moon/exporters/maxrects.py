"""MaxRects bin packing (Jukka Jylänki, "A Thousand Ways to Pack the Bin", best-short-side-fit).

Pure Python, no rotation (pixel art engines would need rotated UVs). Free rectangles are
(x, y, w, h) tuples; a placed rectangle splits every free one it overlaps into up to four
maximal pieces, and pieces contained in another are pruned.
"""

from __future__ import annotations

Rect = tuple[int, int, int, int]  # x, y, w, h


class MaxRects:
    """One bin of `width` x `height`; `insert` returns the top-left or None when it does not fit."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.free: list[Rect] = [(0, 0, width, height)]

    def insert(self, w: int, h: int) -> tuple[int, int] | None:
        best: Rect | None = None
        best_key = None
        for fx, fy, fw, fh in self.free:
            if w <= fw and h <= fh:
                # short leftover side first, long leftover side, then top-left-most for stability
                key = (min(fw - w, fh - h), max(fw - w, fh - h), fy, fx)
                if best_key is None or key < best_key:
                    best, best_key = (fx, fy, w, h), key
        if best is None:
            return None
        self._place(best)
        return best[0], best[1]

    def _place(self, used: Rect) -> None:
        kept: list[Rect] = []
        new: list[Rect] = []
        for free in self.free:
            if _overlap(free, used):
                new.extend(_split(free, used))
            else:
                kept.append(free)
        # Only the new pieces can be contained in something else or contain an old piece.
        new = [
            r
            for i, r in enumerate(new)
            if not any(_contains(o, r) and (o != r or j < i) for j, o in enumerate(new) if j != i)
        ]
        new = [r for r in new if not any(_contains(o, r) for o in kept)]
        kept = [o for o in kept if not any(_contains(r, o) for r in new)]
        self.free = kept + new


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _contains(outer: Rect, inner: Rect) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[0] + inner[2] <= outer[0] + outer[2]
        and inner[1] + inner[3] <= outer[1] + outer[3]
    )


def _split(free: Rect, used: Rect) -> list[Rect]:
    """The maximal parts of `free` left, right, above and below `used` (they may overlap)."""
    fx, fy, fw, fh = free
    ux, uy, uw, uh = used
    out: list[Rect] = []
    if ux > fx:
        out.append((fx, fy, ux - fx, fh))
    if ux + uw < fx + fw:
        out.append((ux + uw, fy, fx + fw - (ux + uw), fh))
    if uy > fy:
        out.append((fx, fy, fw, uy - fy))
    if uy + uh < fy + fh:
        out.append((fx, uy + uh, fw, fy + fh - (uy + uh)))
    return out
