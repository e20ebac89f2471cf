"""Write a PackResult: the page PNGs plus one atlas per requested format, all or nothing.

File names for out="dir/hero.png": one page -> hero.png; several -> hero-0.png, hero-1.png, ...
Atlases: hero<suffix> (hero.json, hero.tres, hero.godot4.tres, hero.atlas, ...); per-page
formats with several pages -> hero-0.json, hero-1.json, ... Every byte is produced in memory
first, existing files are refused before anything is written (unless force), then all files
are written atomically as one set (scarlet_moon.exporters.atomic). With force, the files an earlier set of the
same name had and this one has not (pages beyond the new count, their per-page atlases) are removed
in the same commit, so no stale page stays beside the new atlases.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scarlet_moon.exporters.atomic import recover, write_files
from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget
from scarlet_moon.exporters.model import PackResult
from scarlet_moon.exporters.parallel import Job, atlas_bytes, auto_workers, check_workers, png_bytes, produce
from scarlet_moon.exporters.registry import formats_for

MULTI_TRIGGERS = ("json-hash", "json-array")  # with several pages these also get phaser-multi


def check_sheet_path(out: str | Path) -> Path:
    """A sheet path ends in .png and its folder exists (ValueError / FileNotFoundError)."""
    out = Path(out)
    if out.suffix.lower() != ".png" or out.stem in ("", "."):
        raise ValueError(f"the sheet path must end in .png, got {str(out)!r}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(out.parent)!r} does not exist")
    return out


def prepare_sheet_path(out: str | Path) -> Path:
    """check_sheet_path, then a write of this sheet's set that a kill interrupted rolled back (and the
    leftovers of dead writers removed: exporters.atomic.recover). Idempotent: `sm sheet` calls it before
    sampling (so a run refused for an existing sheet still cleans up), write_atlases again before writing."""
    out = check_sheet_path(out)
    recover(out)
    return out


def write_atlases(
    result: PackResult,
    out: str | Path,
    formats: Sequence[str] = ("json-hash",),
    *,
    force: bool = False,
    app_meta: dict[str, Any] | None = None,
    workers: int | None = None,
) -> list[Path]:
    """Write the sheet(s) and atlases next to `out` (a .png path); return every written path.

    workers: processes that encode the pages and render the atlases (scarlet_moon.exporters.parallel); None picks
    1 for a small sheet, else one per CPU. The files are byte for byte the same whatever the number.
    Raises ValueError (bad out name, unknown format, two formats writing the same file, bad workers),
    FileNotFoundError (no such folder), FileExistsError naming the first existing target
    when force is False. Companion files (Godot 3 .png.import) are written only when absent.
    """
    check_workers(workers)
    out = prepare_sheet_path(out)
    folder = out.parent
    chosen = resolve_formats(formats, multipage=len(result.pages) > 1)
    images = [out.name] if len(result.pages) == 1 else [f"{out.stem}-{i}.png" for i in range(len(result.pages))]
    app_meta = app_meta or {}
    meta = {"app": "scarlet-moon", "version": app_meta["version"] if "version" in app_meta else _version(), **app_meta}

    names: list[Path] = [folder / name for name in images]
    jobs: list[Job] = [(png_bytes, (page.image,)) for page in result.pages]
    targets: list[tuple[AtlasFormat, AtlasTarget]] = []
    for fmt in chosen:
        for target in _targets(fmt, result, images, out.stem, meta):
            names.append(folder / target.atlas_name)
            jobs.append((atlas_bytes, (fmt, target)))
            targets.append((fmt, target))
    if workers is None:
        workers = auto_workers(sum(p.size[0] * p.size[1] for p in result.pages), len(jobs))
    plan: list[tuple[Path, bytes]] = list(zip(names, produce(jobs, workers)))
    extras: dict[Path, bytes] = {}
    for fmt, target in targets:
        for name, data in fmt.companions(target).items():
            if Path(name).name != name:
                raise ValueError(f"format {fmt.name!r}: companion file {name!r} must be a plain file name")
            extras.setdefault(folder / name, _encode(data))
    _check_targets(plan, force)
    planned = {p for p, _ in plan}
    plan += [(p, data) for p, data in extras.items() if p not in planned and not p.exists()]
    stale = _stale_files(folder, out.stem, len(result.pages), chosen, {p.name for p, _ in plan}) if force else []
    write_files(plan, remove=stale)
    return [p for p, _ in plan]


def _stale_files(folder: Path, stem: str, n_pages: int, chosen: list[AtlasFormat], planned: set[str]) -> list[Path]:
    """Files of an earlier set named `stem` that this one replaces without rewriting: its pages (stem.png, or
    stem-0.png, stem-1.png... while they run on) and the chosen formats' atlases and companions of them."""
    old_pages = [f"{stem}.png"] if (folder / f"{stem}.png").is_file() else []
    i = 0
    while (folder / f"{stem}-{i}.png").is_file():
        old_pages.append(f"{stem}-{i}.png")
        i += 1
    names = set()
    for page in old_pages:
        if page in planned:
            continue
        names.add(page)
        tag = page[len(stem) : -len(".png")]  # "" or "-i"
        names |= {f"{stem}{tag}{fmt.suffix}" for fmt in chosen if fmt.per_page or not tag}
        names.add(f"{page}.import")  # the Godot 3 companion of a page
    if n_pages == 1 and any(f.name in MULTI_TRIGGERS for f in chosen):
        names.add(f"{stem}.multi.json")
    return sorted(folder / n for n in names - planned if (folder / n).is_file())


def resolve_formats(names: Sequence[str], *, multipage: bool = False) -> list[AtlasFormat]:
    """Formats by name, in the order given, duplicates dropped; ValueError names an unknown one."""
    registry = formats_for([*names, *(["phaser-multi"] if multipage else [])])
    chosen: list[AtlasFormat] = []
    for name in names:
        if name not in registry:
            raise ValueError(f"unknown atlas format {name!r}; available: {', '.join(sorted(registry))}")
        if registry[name] not in chosen:
            chosen.append(registry[name])
    if multipage and any(f.name in MULTI_TRIGGERS for f in chosen) and registry["phaser-multi"] not in chosen:
        chosen.append(registry["phaser-multi"])
    return chosen


def _targets(
    fmt: AtlasFormat, result: PackResult, images: list[str], stem: str, meta: dict[str, Any]
) -> Iterator[AtlasTarget]:
    if getattr(fmt, "per_page", False) and len(result.pages) > 1:
        names = [f"{stem}-{i}{fmt.suffix}" for i in range(len(result.pages))]
        for i, (page, name) in enumerate(zip(result.pages, names)):
            yield AtlasTarget([page], [images[i]], name, [n for n in names if n != name], dict(meta))
    else:
        yield AtlasTarget(list(result.pages), list(images), f"{stem}{fmt.suffix}", [], dict(meta))


def _check_targets(plan: list[tuple[Path, bytes]], force: bool) -> None:
    seen: set[Path] = set()
    for path, _ in plan:
        if path in seen:
            raise ValueError(f"two outputs would both be written to {str(path)!r}; pick fewer formats")
        seen.add(path)
        if path.is_dir():
            raise IsADirectoryError(f"{str(path)!r} is a folder")
        if not force and (path.exists() or path.is_symlink()):
            raise FileExistsError(errno.EEXIST, "file exists; pass force=True to replace it", str(path))


def _encode(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # ~35 ms of imports: not at import time

    try:
        return version("scarlet-moon")
    except PackageNotFoundError:
        return "0"
