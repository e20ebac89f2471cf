"""Labelled 16x16 RGBA sprite sets from outside sources, for the fine-tuning benchmark.

    python bench/sets.py NAME --out DIR [--sheet PNG]      (NAME: minetest, micropolis)

Downloads Debian packages with the ordinary client (`apt-get download`, after `apt-get update` once)
into a cache (~/.cache/scarlet-moon/bench-sets/, or $SCARLET_MOON_BENCH_CACHE), unpacks them with
`dpkg-deb -x`, and writes a PNG-folder set: DIR/<label>/<name>.png (16x16 RGBA) and DIR/README.md
(packages and versions, licence lines quoted from the packages' copyright files, attribution, how the
labels were derived, counts per label). Nothing is downscaled; fully transparent sprites and exact
duplicates are dropped (the first in sorted order is kept). Deterministic and idempotent: pinned
package versions, sorted order, DIR rebuilt whole on every run. `--sheet` also writes an 8x contact
sheet of 64 sprites picked with a fixed seed.

The sets are kept out of the package and the repository: their art is under other licences
(CC BY-SA, MIT, GPL...) and comes from outside sources; this script fetches it at run time.

- minetest: Minetest Game (Debian minetest-data) plus five Debian Minetest mods. Labels from the
  mods' own Lua: the texture is named in a minetest.register_tool / register_craftitem /
  register_node call (a plantlike drawtype node is "plantlike"). Textures named only through other
  helpers (beds, doors, stairs...) are dropped.
- micropolis: the 960-tile city sheet of Micropolis (GPL SimCity, Debian micropolis-data), cut in
  16x16 cells. Labels from the tile-number ranges of its "Character Mapping" table (sim.h). Opaque.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 16
CACHE = Path(os.environ.get("SCARLET_MOON_BENCH_CACHE", "~/.cache/scarlet-moon/bench-sets")).expanduser()
MARKER = ".bench-set"  # marks a folder this script wrote, so that a rebuild may replace it

Sprite = tuple[str, str, np.ndarray]  # (label, name, 16x16x4 uint8)


@dataclass(frozen=True)
class Package:
    name: str
    version: str  # pinned: Debian 12 (bookworm)


@dataclass(frozen=True)
class SetSpec:
    name: str
    title: str
    packages: tuple[Package, ...]
    collect: Callable[[dict[str, Path]], list[Sprite]]
    licence: str  # markdown: licence and the copyright-file lines it rests on
    labels_doc: str  # markdown: how labels were derived


# ---------------------------------------------------------------- packages


def fetch(pkg: Package, cache: Path = CACHE) -> Path:
    """Download one .deb (pinned version) into the cache and unpack it; return the unpacked root."""
    root = cache / "root" / f"{pkg.name}_{pkg.version}"
    if (root / ".done").exists():
        return root
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    deb = find_deb(debs, pkg)
    if deb is None:
        run(
            ["apt-get", "download", f"{pkg.name}={pkg.version}"],
            cwd=debs,
            hint="run `apt-get update` once, and check the version is still in the archive",
        )
        deb = find_deb(debs, pkg)
        if deb is None:
            raise SystemExit(f"apt-get download left no .deb for {pkg.name} in {debs}")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    run(["dpkg-deb", "-x", str(deb), str(root)])
    (root / ".done").write_text(deb.name + "\n")
    return root


def find_deb(folder: Path, pkg: Package) -> Path | None:
    """The cached .deb of pkg, if any (apt names it NAME_VERSION_ARCH.deb, ':' as %3a)."""
    version = pkg.version.replace(":", "%3a")
    hits = sorted(folder.glob(f"{pkg.name}_{version}_*.deb"))
    return hits[0] if hits else None


def run(cmd: list[str], cwd: Path | None = None, hint: str = "") -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}" + (f"\n{hint}" if hint else "")
        )


def copyright_file(root: Path, pkg: str) -> Path:
    return root / "usr/share/doc" / pkg / "copyright"


# ---------------------------------------------------------------- images


def to_rgba(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()


def keep(sprites: Iterator[Sprite]) -> list[Sprite]:
    """Drop fully transparent sprites and exact pixel duplicates (first one kept)."""
    seen: set[bytes] = set()
    out = []
    for label, name, px in sprites:
        if px.shape != (SIZE, SIZE, 4) or not px[..., 3].any():
            continue
        key = hashlib.sha1(px.tobytes()).digest()
        if key not in seen:
            seen.add(key)
            out.append((label, name, px))
    return out


def read_xpm(path: Path) -> np.ndarray:
    """An XPM (1 char per pixel, #RGB of any width or None) as RGBA: Pillow misreads 48-bit colours."""
    rows = re.findall(r'"([^"]*)"', path.read_text(encoding="latin-1"))
    w, h, ncolors, cpp = (int(v) for v in rows[0].split()[:4])
    if cpp != 1:
        raise ValueError(f"{path}: {cpp} chars per pixel not handled")
    colours: dict[str, tuple[int, int, int, int]] = {}
    for line in rows[1 : 1 + ncolors]:
        key, spec = line[0], line[1:].split()
        value = spec[spec.index("c") + 1]
        colours[key] = (0, 0, 0, 0) if value.lower() == "none" else hex_rgba(value)
    pixels = rows[1 + ncolors : 1 + ncolors + h]
    return np.array([[colours[c] for c in row[:w]] for row in pixels], dtype=np.uint8)


def hex_rgba(value: str) -> tuple[int, int, int, int]:
    digits = value.lstrip("#")
    n = len(digits) // 3
    r, g, b = (int(digits[i * n : (i + 1) * n], 16) >> (4 * n - 8) for i in range(3))
    return r, g, b, 255


# ---------------------------------------------------------------- minetest

MT_CALL = re.compile(
    r"\b(minetest\.register_node|minetest\.register_tool|minetest\.register_craftitem"
    r"|farming\.register_hoe)\s*\("
)
LUA_TOKEN = r'(?:"[^"\n]*"|[A-Za-z_][\w.]*(?:\[[^\]\n]*\])?)'
LUA_CHAIN = re.compile(LUA_TOKEN + r"(?:\s*\.\.\s*" + LUA_TOKEN + r")*")
PNG_NAME = re.compile(r"[A-Za-z0-9_\x00]+\.png")
DRAWTYPE = re.compile(r'drawtype\s*=\s*"(\w+)"')
PLANTLIKE = {"plantlike", "plantlike_rooted", "firelike"}
HOLE = "\x00"  # a Lua expression inside a concatenated texture name

MT_GAME = "usr/share/games/minetest/games/minetest_game/mods"
MT_MODS = "usr/share/games/minetest/mods"


@dataclass
class TextureUses:
    """Which registration kinds name a texture: exactly, or through a concatenation pattern."""

    exact: dict[str, Counter[str]]
    patterns: list[tuple[Path, re.Pattern[str], int, Counter[str]]]  # (mod dir, regex, literal length, kinds)


def call_span(text: str, open_paren: int) -> str:
    """The text of a call from its '(' to the matching ')' (strings are not special-cased)."""
    depth = 0
    for j in range(open_paren, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return text[open_paren : j + 1]
    return text[open_paren:]


def texture_names(body: str) -> Iterator[str]:
    """Texture names in a Lua call body; a concatenated part (`"dye_" .. name .. ".png"`) becomes HOLE."""
    for m in LUA_CHAIN.finditer(body):
        if ".png" not in m.group(0):
            continue
        parts = re.findall(LUA_TOKEN, m.group(0))
        template = "".join(p[1:-1] if p.startswith('"') else HOLE for p in parts)
        yield from PNG_NAME.findall(template)


def registration_kind(call: str, body: str) -> str:
    kind = call.rsplit("_", 1)[-1]
    if kind == "hoe":
        return "tool"
    if kind == "node":
        m = DRAWTYPE.search(body)
        return "plantlike" if m and m.group(1) in PLANTLIKE else "node"
    return kind


def mod_dir(path: Path) -> Path:
    """The Minetest mod a file belongs to: the nearest folder above it with an init.lua."""
    for parent in path.parents:
        if (parent / "init.lua").is_file():
            return parent
    return path.parent


def scan_lua(mod_roots: list[Path]) -> TextureUses:
    exact: dict[str, Counter[str]] = defaultdict(Counter)
    pats: dict[tuple[Path, str], Counter[str]] = defaultdict(Counter)
    for root in mod_roots:
        for lua in sorted(root.rglob("*.lua")):
            text = lua.read_text(encoding="utf-8", errors="replace")
            for m in MT_CALL.finditer(text):
                body = call_span(text, m.end() - 1)
                kind = registration_kind(m.group(1), body)
                for name in texture_names(body):
                    if HOLE not in name:
                        exact[name][kind] += 1
                    elif re.match(r"[A-Za-z0-9_]{3,}" + HOLE, name):  # a literal prefix, not "x .. '.png'"
                        pats[(mod_dir(lua), name)][kind] += 1
    patterns = [
        (mod, re.compile(re.escape(p).replace(HOLE, "[A-Za-z0-9_]*") + "$"), len(p.replace(HOLE, "")), kinds)
        for (mod, p), kinds in sorted(pats.items())
    ]
    return TextureUses(dict(exact), patterns)


def minetest_label(uses: TextureUses, texture: Path) -> str | None:
    """An exact mention wins; else the most specific pattern from the texture's own mod; else None."""
    kinds = uses.exact.get(texture.name)
    if kinds is None:
        mod = mod_dir(texture)
        hits = [(length, k) for m, rx, length, k in uses.patterns if m == mod and rx.match(texture.name)]
        if not hits:
            return None
        kinds = max(hits, key=lambda h: h[0])[1]
    return sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def minetest_roots(roots: dict[str, Path]) -> list[Path]:
    """Mod folders in package order: Minetest Game first (its textures win a name clash)."""
    out = [roots["minetest-data"] / MT_GAME]
    out += [roots[p.name] / MT_MODS for p in MINETEST.packages[1:]]
    return out


def collect_minetest(roots: dict[str, Path]) -> list[Sprite]:
    mod_roots = minetest_roots(roots)
    uses = scan_lua(mod_roots)
    seen: set[str] = set()
    sprites: list[Sprite] = []
    for root in mod_roots:
        for png in sorted(root.rglob("*.png"), key=lambda p: p.relative_to(root).as_posix()):
            if "textures" not in png.relative_to(root).parts or png.name in seen:
                continue
            seen.add(png.name)
            with Image.open(png) as img:
                if img.size != (SIZE, SIZE):
                    continue
                px = to_rgba(img)
            label = minetest_label(uses, png)
            if label is not None:
                sprites.append((label, png.stem, px))
    return keep(iter(sprites))


# ---------------------------------------------------------------- micropolis

# Tile-number ranges of the "Character Mapping" table in Micropolis' src/sim/headers/sim.h
# (DIRT 0 .. LASTFIRE 63, ROADBASE 64 .. LASTRAIL 238 + 239, RESBASE 240, COMBASE 423, INDBASE 612,
# PORTBASE 693 .. LASTZONE 826). 827..959 (lightning, animated bridges, radar, fountain, smoke,
# explosions, stadium games) are animation frames laid over other tiles: left out.
MICROPOLIS_RANGES: tuple[tuple[str, int, int], ...] = (
    ("terrain", 0, 63),  # dirt, river, trees/woods, rubble, flood, radiation, fire
    ("transport", 64, 239),  # roads and bridges (with traffic frames), power lines, rail
    ("residential", 240, 422),  # RESBASE .. (houses, hospital, church)
    ("commercial", 423, 611),  # COMBASE ..
    ("industrial", 612, 692),  # INDBASE ..
    ("special", 693, 826),  # seaport, airport, coal and nuclear plants, fire/police stations, stadium
)
MICROPOLIS_SHEET = "usr/share/games/micropolis/images/tiles.xpm"


def collect_micropolis(roots: dict[str, Path]) -> list[Sprite]:
    sheet = read_xpm(roots["micropolis-data"] / MICROPOLIS_SHEET)
    sprites = []
    for label, lo, hi in MICROPOLIS_RANGES:
        for tile in range(lo, hi + 1):
            sprites.append((label, f"tile_{tile:03d}", sheet[tile * SIZE : (tile + 1) * SIZE, :SIZE]))
    return keep(iter(sprites))


# ---------------------------------------------------------------- the sets

MINETEST = SetSpec(
    name="minetest",
    title="Minetest Game + five Minetest mods (Debian 12)",
    packages=(
        Package("minetest-data", "5.6.1+dfsg+~1.9.0mt8+dfsg-2"),
        Package("minetest-mod-ethereal", "20210923-1"),
        Package("minetest-mod-nether", "3.3-1"),
        Package("minetest-mod-mobs-redo", "20210923-1"),
        Package("minetest-mod-basic-materials", "20210130-2"),
        Package("minetest-mod-quartz", "1.0.0-5"),
    ),
    collect=collect_minetest,
    licence="""\
Per package, from `usr/share/doc/<package>/copyright`:

- minetest-data (Minetest Game, `games/minetest_game/mods`): "Files: *.ogg *.png ... License:
  CC-BY-SA-3.0 ... According to the main README file all Minetest textures and sounds are licensed
  under CC-BY-SA-3.0 with the notable exceptions below"; exceptions in the same file: a few textures
  CC-BY-3.0 or CC-BY-SA-4.0 (e.g. "Files: mtg/mods/default/textures/default_desert_cobble.png
  Copyright: PenguinDad License: CC-BY-SA-4.0"), and dye/doors/farming/flowers/tnt/vessels/xpanes
  code MIT. Copyright: celeron55 (Perttu Ahola), Kahrl, erlehmann, BlockMen, Fernando Zapata,
  PilzAdam, Zeg9, thetoon, PavelS, sofar, Vanessa Ezekowitz, paramat, yyt16384, Thomas-S, red-001,
  kilbith, RHRhino, Gambit, ShadowNinja, Wuzzy, Napiophelios, Extex101, xyz, TumeniNodes and
  contributors.
- minetest-mod-ethereal: "Files: * Copyright: 2015-2018 TenPlus1 License: Expat" (MIT).
- minetest-mod-nether: "Files: textures/* Copyright: 2013 PilzAdam License: CC-BY-SA-3.0", some
  textures by Treer (CC-BY-SA-4.0), BlockMen, Gambit, Extex101, Zeg9 (CC-BY-SA-3.0).
- minetest-mod-mobs-redo: "Files: * Copyright: 2016-2021 TenPlus1 License: Expat" (MIT).
- minetest-mod-basic-materials: "Files: models/* textures/* Copyright: 2018-2021 Vanessa Ezekowitz
  License: CC-BY-SA-4.0".
- minetest-mod-quartz: "Files: * Copyright: 2016-2017 EvergreenTree License: Expat" (MIT).

Attribution: "Textures from Minetest Game (celeron55 and the Minetest contributors, CC BY-SA 3.0),
ethereal and mobs_redo (TenPlus1, MIT), nether (PilzAdam et al., CC BY-SA 3.0/4.0), basic_materials
(Vanessa Ezekowitz, CC BY-SA 4.0), quartz (EvergreenTree, MIT), as packaged by Debian."
Share-alike: sprites or derived sprite sets redistributed must stay under CC BY-SA.""",
    labels_doc="""\
From the mods' own Lua, for every 16x16 PNG under a mod's `textures/` folder (`devtest`, the
engine's test game, is not used): the texture's name appears in a `minetest.register_tool` (or
`farming.register_hoe`) call -> `tool`; in `minetest.register_craftitem` -> `craftitem`; in
`minetest.register_node` -> `node`, or `plantlike` when that call sets `drawtype` to plantlike,
plantlike_rooted or firelike. A name built by concatenation (`"dye_" .. name .. ".png"`) counts as
a pattern, matched only against textures of the same mod, the longest literal part winning. When
several kinds name a texture, the most frequent wins (ties: alphabetical). Textures named only
through other helpers (beds, doors, stairs, fences, rails, buckets, chests...) get no
label and are dropped; so are textures of other sizes.""",
)

MICROPOLIS = SetSpec(
    name="micropolis",
    title="Micropolis city tiles (Debian 12 micropolis-data)",
    packages=(Package("micropolis-data", "0.0.20071228-10"),),
    collect=collect_micropolis,
    licence="""\
From `usr/share/doc/micropolis-data/copyright`: "Files: * Copyright: 1989-2007, Electronic Arts Inc.
2007, Don Hopkins License: GPL-3+", with "According to the README file, the copyright notice applies
to ... all of the non-text files in this source code release, including: ... images/* All graphical
images". GPL-3+ with EA's additional terms per GPL section 7 (no SimCity trademark rights; modified
versions must be marked as such).

Attribution: "Micropolis tiles, Copyright (C) 1989-2007 Electronic Arts Inc., GPL-3+ (Micropolis,
the GPL release of the original SimCity, by Don Hopkins / OLPC), as packaged by Debian."
These sprites are cut from `images/tiles.xpm` unchanged; sets derived from them stay GPL-3+.""",
    labels_doc="""\
`images/tiles.xpm` is one 16x15360 column of 960 tiles; tile N is rows 16N..16N+15. Labels are the
tile-number ranges of the "Character Mapping" table in Micropolis' `src/sim/headers/sim.h`:
terrain 0-63 (DIRT .. LASTFIRE: dirt, river, woods, rubble, flood, radiation, fire), transport
64-239 (ROADBASE .. LASTRAIL: roads and bridges with traffic frames, power lines, rail),
residential 240-422 (RESBASE), commercial 423-611 (COMBASE), industrial 612-692 (INDBASE),
special 693-826 (PORTBASE .. LASTZONE: seaport, airport, power plants, fire and police stations,
stadium). Tiles 827-959 (animation frames drawn over other tiles) are left out. All tiles are
opaque; the 14-colour palette's 48-bit XPM colours are read at 8 bits.""",
)

SETS: dict[str, SetSpec] = {s.name: s for s in (MINETEST, MICROPOLIS)}


# ---------------------------------------------------------------- writing


def package_versions(roots: dict[str, Path]) -> dict[str, str]:
    """The version each unpacked package declares (its deb's name, recorded in .done)."""
    out = {}
    for name, root in roots.items():
        deb = (root / ".done").read_text().strip()
        out[name] = deb.split("_")[1].replace("%3a", ":")
    return out


def readme(spec: SetSpec, roots: dict[str, Path], sprites: list[Sprite]) -> str:
    counts = Counter(label for label, _, _ in sprites)
    versions = package_versions(roots)
    lines = [
        f"# {spec.name}: {spec.title}",
        "",
        f"{len(sprites)} sprites, 16x16 RGBA PNG, in {len(counts)} label folders. Built by "
        f"`python bench/sets.py {spec.name} --out DIR` (Scarlet Moon); not part of the package.",
        "",
        "## Source",
        "",
    ]
    lines += [
        f"- Debian package `{name}` {version} (`apt-get download {name}={version}`)"
        for name, version in versions.items()
    ]
    lines += [
        "",
        "## Licence and attribution",
        "",
        spec.licence,
        "",
        "## Labels",
        "",
        spec.labels_doc,
        "",
        "Fully transparent sprites and exact pixel duplicates are dropped (first in sorted order kept).",
        "",
        "| label | sprites |",
        "| --- | ---: |",
    ]
    lines += [f"| {label} | {n} |" for label, n in sorted(counts.items())]
    lines += [f"| total | {len(sprites)} |", ""]
    return "\n".join(lines)


def write_set(spec: SetSpec, roots: dict[str, Path], out_dir: Path) -> Path:
    sprites = spec.collect(roots)
    if out_dir.exists():
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise SystemExit(f"{out_dir} is not empty and was not written by bench/sets.py: not touching it")
        shutil.rmtree(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for label, name, px in sprites:
        (tmp / label).mkdir(exist_ok=True)
        Image.fromarray(px, "RGBA").save(tmp / label / f"{name}.png", optimize=False)
    (tmp / "README.md").write_text(readme(spec, roots, sprites), encoding="utf-8")
    (tmp / MARKER).write_text(spec.name + "\n")
    tmp.rename(out_dir)
    return out_dir


def build(name: str, out_dir: str | Path, cache: Path = CACHE) -> Path:
    """Fetch the packages of set `name`, write the set at out_dir, return out_dir."""
    if name not in SETS:
        raise SystemExit(f"unknown set {name!r}; known: {', '.join(SETS)}")
    spec = SETS[name]
    roots = {p.name: fetch(p, cache) for p in spec.packages}
    return write_set(spec, roots, Path(out_dir))


def contact_sheet(set_dir: Path, out_png: Path, count: int = 64, zoom: int = 8, seed: int = 0) -> Path:
    """count sprites picked with a fixed seed, in a square grid, nearest-neighbour x zoom, on a checkerboard."""
    files = sorted(set_dir.glob("*/*.png"))
    picks = random.Random(seed).sample(files, min(count, len(files)))
    cols = int(np.ceil(np.sqrt(len(picks))))
    rows = int(np.ceil(len(picks) / cols))
    cell, gap = SIZE * zoom, 4
    w, h = cols * (cell + gap) + gap, rows * (cell + gap) + gap
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // 8) + (xx // 8)) % 2 == 0, 170, 140).astype(np.uint8)
    sheet = Image.fromarray(np.dstack([board, board, board, np.full_like(board, 255)]), "RGBA")
    for i, path in enumerate(picks):
        with Image.open(path) as img:
            big = img.convert("RGBA").resize((cell, cell), Image.Resampling.NEAREST)
        x, y = gap + (i % cols) * (cell + gap), gap + (i // cols) * (cell + gap)
        sheet.alpha_composite(big, (x, y))
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.convert("RGB").save(out_png)
    return out_png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(SETS))
    ap.add_argument("--out", required=True, type=Path, help="folder to write the set to (rebuilt whole)")
    ap.add_argument("--sheet", type=Path, help="also write an 8x contact sheet of 64 sprites here")
    args = ap.parse_args(argv)
    out = build(args.name, args.out)
    counts = Counter(p.parent.name for p in out.glob("*/*.png"))
    print(
        f"{args.name}: {sum(counts.values())} sprites at {out}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    if args.sheet:
        print(f"contact sheet: {contact_sheet(out, args.sheet)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
