"""Animated character sets from outside sources, in the `frames` layout `sm data inspect --layout
frames` reads (scarlet_moon.data.anim): DIR/<label>/<character>/<direction>/<frame>.png.

    python bench/anim_sets.py crossfire --out DIR [--split]

--split writes DIR/train and DIR/held instead: the characters of each label shuffled with seed 0, a fifth
of them (at least one) held out (the split bench/anim_bench.py scores against and the documented model
trains on).

- crossfire: the 32x32 images of the Crossfire client (Debian crossfire-client-images, GPL; kept out
  of the package and the repository, fetched at run time like bench/sets.py's sets). They are PNGs
  concatenated in `crossfire.base` as `IMAGE <bytes> <path>` records; a name ends in
  `.<part><direction><frame>`: part 1, direction 1 (north: up), 3 (east: right), 5 (south: down),
  7 (west: left), frame 1..2. A character is every archetype with both frames of all four directions
  (players' races and classes, monsters). Labels: `player` (arch/player/...) and `monster`
  (arch/monster/...); the others (spell effects, map connectors) are dropped. Two frames per
  direction: a step, not a long walk cycle.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sets import CACHE, MARKER, Package, copyright_file, fetch, package_versions  # noqa: E402

CROSSFIRE = Package("crossfire-client-images", "1.70.0-2")
DIRECTIONS = {"down": "5", "left": "7", "right": "3", "up": "1"}  # Crossfire's direction digits
FRAMES = ("1", "2")
LABELS = {"player": "./arch/player/", "monster": "./arch/monster/"}
RECORD = re.compile(rb"IMAGE (\d+) (\S+)\n")


def records(blob: bytes) -> dict[str, bytes]:
    """name -> PNG bytes of every `IMAGE <len> <name>` record of a crossfire.base file."""
    out, pos = {}, 0
    while (m := RECORD.search(blob, pos)) is not None:
        start = m.end()
        out[m.group(2).decode()] = blob[start : start + int(m.group(1))]
        pos = start + int(m.group(1))
    return out


def characters(images: dict[str, bytes]) -> list[tuple[str, str, np.ndarray]]:
    """(label, name, 4 x 2 x 32 x 32 x 4 uint8 in DIRECTIONS order) of every complete 4-direction archetype."""
    out = []
    stems = sorted({n.rpartition(".")[0] for n in images})
    for stem in stems:
        label = next((k for k, prefix in LABELS.items() if stem.startswith(prefix)), None)
        names = [[f"{stem}.1{d}{f}" for f in FRAMES] for d in DIRECTIONS.values()]
        if label is None or not all(n in images for row in names for n in row):
            continue
        frames = [[np.asarray(Image.open(io.BytesIO(images[n])).convert("RGBA")) for n in row] for row in names]
        if any(f.shape != (32, 32, 4) for row in frames for f in row):
            continue
        out.append((label, stem.rpartition("/")[2], np.array(frames, np.uint8)))
    return out


def write(chars: list[tuple[str, str, np.ndarray]], out_dir: Path, versions: dict[str, str], licence: str) -> Path:
    if out_dir.exists():
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise SystemExit(f"{out_dir} is not empty and was not written by bench/anim_sets.py: not touching it")
        shutil.rmtree(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for label, name, frames in chars:
        for d, direction in enumerate(DIRECTIONS):
            folder = tmp / label / name / direction
            folder.mkdir(parents=True)
            for f in range(len(FRAMES)):
                Image.fromarray(frames[d, f], "RGBA").save(folder / f"{f}.png")
    counts = Counter(label for label, _, _ in chars)
    lines = [
        "# crossfire: 4-direction characters of the Crossfire client, 32x32",
        "",
        f"{len(chars)} characters x 4 directions (down, left, right, up) x 2 frames, 32x32 RGBA PNG, "
        "layout `frames` (`sm data inspect DIR --layout frames`). Built by `python bench/anim_sets.py "
        "crossfire --out DIR` (Scarlet Moon); not part of the package.",
        "",
        *[f"- Debian package `{n}` {v} (`apt-get download {n}={v}`)" for n, v in versions.items()],
        "",
        "## Licence and attribution",
        "",
        "GPL (the package's copyright file: `" + licence + "`). Art by the Crossfire Development Team.",
        "",
        "| label | characters |",
        "| --- | ---: |",
        *[f"| {k} | {n} |" for k, n in sorted(counts.items())],
        "",
    ]
    (tmp / "README.md").write_text("\n".join(lines), encoding="utf-8")
    (tmp / MARKER).write_text("crossfire\n")
    tmp.rename(out_dir)
    return out_dir


def build_crossfire(out_dir: str | Path, cache: Path = CACHE) -> Path:
    root = fetch(CROSSFIRE, cache)
    base = next(root.rglob("crossfire.base"))
    text = copyright_file(root, CROSSFIRE.name).read_text(encoding="utf-8", errors="replace")
    licence = next((line.strip() for line in text.splitlines() if "GPL" in line), "GPL")
    return write(
        characters(records(base.read_bytes())), Path(out_dir), package_versions({CROSSFIRE.name: root}), licence
    )


def held_out(labels: dict[str, list[str]], share: float = 0.2, seed: int = 0) -> set[tuple[str, str]]:
    """(label, character) pairs held out: per label (sorted names) a seeded shuffle's first fifth, at least one."""
    rng = np.random.default_rng(seed)
    held = set()
    for label in sorted(labels):
        names = sorted(labels[label])
        order = rng.permutation(len(names))
        held |= {(label, names[i]) for i in order[: max(1, int(round(share * len(names))))]}
    return held


def split(src: Path, out_dir: Path) -> tuple[Path, Path]:
    """Copy `src` (label/character folders) into out_dir/train and out_dir/held (held_out), each with
    the source's README."""
    labels = {p.name: [c.name for c in p.iterdir() if c.is_dir()] for p in src.iterdir() if p.is_dir()}
    held = held_out(labels)
    for part in ("train", "held"):
        for label, names in labels.items():
            for name in names:
                if ((label, name) in held) == (part == "held"):
                    shutil.copytree(src / label / name, out_dir / part / label / name)
        shutil.copy(src / "README.md", out_dir / part / "README.md")
    return out_dir / "train", out_dir / "held"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=["crossfire"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", action="store_true", help="write OUT/train and OUT/held")
    args = ap.parse_args()
    out = Path(args.out)
    if not args.split:
        print(build_crossfire(out))
        return
    if out.exists():
        sys.exit(f"{str(out)!r} exists; choose a new folder")
    full = build_crossfire(out.with_name(out.name + ".full"))
    print(*split(full, out), sep="\n")
    shutil.rmtree(full)


if __name__ == "__main__":
    main()
