"""Build scarlet_moon/bundled/angband32 from Debian's angband packages (bookworm, 3.5.1).

    apt-get download angband-data angband && for f in angband*.deb; do dpkg-deb -x "$f" x; done
    python tools/make_angband32.py x          # writes scarlet_moon/bundled/angband32/

The sheet is David Gervais' 32x32 tiles (`usr/share/angband/xtra/graf/32x32.png`, CC-BY-3.0 per
the package's copyright file), 128 x 30 cells. Each cell is labelled from the game's own tables,
the way the 16x16 set was: `graf-dvg.prf` (F terrain features, K object kinds, R monster races,
GF spell effects), `flvr-dvg.prf` (L flavours: potions, rings...), `xtra-dvg.prf` (R:0, the
player by race and class), with `edit/monster.txt`, `monster_base.txt`, `flavor.txt` for names
and kinds. The first table to name a cell labels it (features, objects, flavours, monsters,
spells); empty cells and cells no table names are left out. Alpha is thresholded at 128 (the
sheet's 0.07% of partly transparent pixels), so sprites have real, crisp transparency.
Writes only labelled sprites, packed 32 per row in `tiles.png`, with `labels.csv` (row, col,
label, name, src_row, src_col: the cell in the original sheet) and `labels.txt`.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ("creature", "item", "consumable", "spell", "terrain", "hero")
HERO_BASES = {"player", "person", "humanoid", "townsfolk"}  # drawn as people: p, h, t and the player
CONSUMABLE_TVALS = {"food", "potion", "mushroom", "scroll", "magic book", "prayer book", "flask"}
CELL, PER_ROW = 32, 32
OUT = Path(__file__).resolve().parents[1] / "scarlet_moon" / "bundled" / "angband32"


def records(path: Path) -> list[list[str]]:
    """The non-comment lines of an Angband text file, split on ':'."""
    lines = path.read_text(encoding="latin-1").splitlines()
    return [ln.strip().split(":") for ln in lines if ln.strip() and not ln.startswith("#")]


def cell(attr: str, char: str) -> tuple[int, int]:
    return int(attr, 16) - 0x80, int(char, 16) - 0x80


def monsters(edit: Path) -> dict[str, tuple[str, str]]:
    """race index -> (name, base)."""
    out, idx = {}, None
    for rec in records(edit / "monster.txt"):
        if rec[0] == "N":
            idx, name = rec[1], ":".join(rec[2:])
            out[idx] = (name, "")
        elif rec[0] == "T" and idx is not None:
            out[idx] = (out[idx][0], rec[1])
    return out


def flavours(edit: Path) -> dict[str, tuple[str, str]]:
    """flavour index -> (name, kind): 'Clear', 'potion'."""
    out, kind = {}, None
    for rec in records(edit / "flavor.txt"):
        if rec[0] == "kind":
            kind = rec[1]
        elif rec[0] == "flavor" and kind:
            out[rec[1]] = (rec[-1], kind)
        elif rec[0] == "fixed" and kind:
            out[rec[1]] = (rec[-1], kind)
    return out


def labelled_cells(root: Path) -> dict[tuple[int, int], tuple[str, str]]:
    pref, edit = root / "etc/angband/pref", root / "etc/angband/edit"
    found: dict[tuple[int, int], tuple[str, str]] = {}
    races, flav = monsters(edit), flavours(edit)

    def add(rc: tuple[int, int], label: str, name: str) -> None:
        found.setdefault(rc, (label, name))

    graf = records(pref / "graf-dvg.prf")
    for rec in graf:
        if rec[0] == "F" and len(rec) == 5:
            add(cell(rec[3], rec[4]), "terrain", f"feature {rec[1]}")
    for rec in graf:
        if rec[0] == "K" and len(rec) == 5 and rec[1] != "0":
            add(cell(rec[3], rec[4]), "consumable" if rec[1] in CONSUMABLE_TVALS else "item", rec[2])
    for rec in records(pref / "flvr-dvg.prf"):
        if rec[0] == "L" and len(rec) == 4 and rec[1] in flav:
            name, kind = flav[rec[1]]
            add(cell(rec[2], rec[3]), "consumable" if kind in CONSUMABLE_TVALS else "item", f"{name} {kind}")
    monster_recs = [r for r in graf if r[0] == "R"] + [r for r in records(pref / "xtra-dvg.prf") if r[0] == "R"]
    for rec in monster_recs:
        if len(rec) == 4 and rec[1] in races:
            name, base = races[rec[1]]
            add(cell(rec[2], rec[3]), "hero" if base in HERO_BASES else "creature", name)
    for rec in graf:
        if rec[0] == "GF" and len(rec) == 5:
            add(cell(rec[3], rec[4]), "spell", f"spell {rec[1]}")
    return found


def main(root: str) -> None:
    base = Path(root)
    sheet = np.array(Image.open(base / "usr/share/angband/xtra/graf/32x32.png").convert("RGBA"))
    rows, cols = sheet.shape[0] // CELL, sheet.shape[1] // CELL
    kept = []
    for (r, c), (label, name) in sorted(labelled_cells(base).items()):
        if not (0 <= r < rows and 0 <= c < cols):
            continue
        px = sheet[r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL].copy()
        px[..., 3] = np.where(px[..., 3] >= 128, 255, 0)
        px[px[..., 3] == 0] = 0
        if px[..., 3].any():
            kept.append((r, c, label, name, px))
    n_rows = -(-len(kept) // PER_ROW)
    out = np.zeros((n_rows * CELL, PER_ROW * CELL, 4), np.uint8)
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "col", "label", "name", "src_row", "src_col"])
        for i, (r, c, label, name, px) in enumerate(kept):
            rr, cc = divmod(i, PER_ROW)
            out[rr * CELL : (rr + 1) * CELL, cc * CELL : (cc + 1) * CELL] = px
            w.writerow([rr, cc, label, name, r, c])
    Image.fromarray(out, "RGBA").save(OUT / "tiles.png", optimize=True)
    (OUT / "labels.txt").write_text("\n".join(LABELS) + "\n")
    counts = {k: sum(1 for x in kept if x[2] == k) for k in LABELS}
    print(f"{len(kept)} sprites, {counts}, tiles.png {out.shape[1]}x{out.shape[0]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "x")
