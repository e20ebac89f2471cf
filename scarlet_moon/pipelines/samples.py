"""`sm sample`'s use case: sprites as PNG files in a folder (`<label>_NNN.png`), with x`scale` copies and
a preview grid, every output checked by the one policy (scarlet_moon.outputs) before any sampling.

    files = save_samples(GenerationSpec(labels=("hero",), count=8), "samples", grid="grid.png")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.generation.spec import GenerationSpec
from scarlet_moon.progress import SILENT, Report


@dataclass(frozen=True)
class Samples:
    files: list[dict[str, Any]]  # {"path", "label", "label_index", "index"[, "scaled"]} per sprite
    meta: dict[str, Any]  # GenerationSpec.meta: what regenerates them
    grid: Path | None


def _check_folder(target: Path, names: list[str]) -> None:
    """A folder where a sprite's file goes is the user's path in the way."""
    for name in names:
        if (target / name).is_dir():
            raise BadInput(
                f"{arg('out')} {str(target)!r}: {name!r} there is a folder; expected a file name free for a PNG"
            )


def save_samples(
    spec: GenerationSpec,
    out: str | Path = "samples",
    *,
    grid: str | Path | None = None,
    scale: int = 1,
    force: bool = False,
    report: Report = SILENT,
) -> Samples:
    """Generate `spec` into `out` (made if missing): one PNG per sprite, plus `<stem>_x<scale>.png` when
    scale > 1 and a preview grid; an existing file is replaced only with `force`."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.names import file_names
    from scarlet_moon.outputs import check_output, input_clash, writable_folder

    card = read_card(spec.model)  # a .onnx model carries its own card: no torch
    req = spec.request(card)
    inputs = spec.inputs()
    target = Path(out)
    writable_folder(target, arg("out"))  # made below, once every check has passed
    names = file_names(card.label_names, req.labels)
    suffixes = [""] + ([f"_x{scale}"] if scale > 1 else [])
    sprite_files = [target / f"{stem}{x}.png" for stem, _ in names for x in suffixes]
    if grid is not None:
        if input_clash(Path(grid), sprite_files):
            raise BadInput(
                f"{arg('grid')} {str(grid)!r} is one of the sprite files this run writes; choose another name"
            )
        check_output(grid, arg("grid"), inputs=inputs, force=force, suffix=".png")
    if target.exists():
        _check_folder(target, [p.name for p in sprite_files])
        for path in sprite_files:  # the one output policy, file by file (inputs, force, regular files)
            check_output(path, arg("out"), inputs=inputs, force=force)
    made = not target.exists()
    target.mkdir(exist_ok=True)
    try:
        return _write_samples(spec, card, req, target, names, scale, grid, report)
    except BaseException:
        if made and not any(target.iterdir()):  # a failed run leaves no empty folder of its own behind
            target.rmdir()
        raise


def _write_samples(
    spec: GenerationSpec,
    card: Any,
    req: Any,
    target: Path,
    names: list[tuple[str, int]],
    scale: int,
    grid: str | Path | None,
    report: Report,
) -> Samples:
    from scarlet_moon.data.pixels import make_grid, upscale
    from scarlet_moon.data.png import save_png
    from scarlet_moon.outputs import claim
    from scarlet_moon.pipelines.sprites import generate_sprites

    with claim([target] + ([Path(grid)] if grid is not None else []), arg("out")):  # one lock for the folder
        gen = generate_sprites(spec, card=card, request=req, report=report)
        files = []
        for img, k, (stem, n) in zip(gen.images, req.labels, names):
            entry: dict[str, Any] = {
                "path": str(save_png(img, target / f"{stem}.png")),
                "label": card.label_names[k],
                "label_index": k,
                "index": n,
            }
            if scale > 1:
                entry["scaled"] = str(save_png(upscale(img[None], scale)[0], target / f"{stem}_x{scale}.png"))
            files.append(entry)
        if grid is not None:
            save_png(make_grid(gen.images, ncols=min(8, len(gen.images))), grid)
    return Samples(files, gen.meta, None if grid is None else Path(grid))
