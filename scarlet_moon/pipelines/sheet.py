"""A spritesheet: generate (or read a folder of PNGs), pack, and write the sheet + engine atlases.

    paths = make_sheet(GenerationSpec(labels=(5,), count=64), "hero.png", formats=("json-hash",))
    paths = pack_folder("frames/", "walk.png", formats=("phaser-multi",))
    paths = write_sheet(sprites, SheetTarget.check("out.png", ["json-hash"], force=False))

The output is checked once, before any sampling (scarlet_moon.outputs: not an input, replaced only with
`force`, only a regular file), and claimed until its files are written (a second run is refused).
The exporters' ValueErrors come back as BadInput naming the parameter (`out`, `formats`, `force`).
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.generation.spec import GenerationSpec
from scarlet_moon.progress import SILENT, Report

if TYPE_CHECKING:
    from scarlet_moon.exporters import PackOptions, Sprite
    from scarlet_moon.models.card import ModelCard

Inputs = Sequence[object]  # paths are checked; an image or array given to the API is skipped


def split_formats(formats: Sequence[str]) -> list[str]:
    """Formats may be repeated and/or comma-separated: ("json-hash,godot3", "libgdx"); none -> json-hash."""
    if isinstance(formats, str):  # one name (or a comma-separated list), not a sequence of letters
        formats = [formats]
    return [n.strip() for item in formats for n in item.split(",") if n.strip()] or ["json-hash"]


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The format names, split and checked against the installed formats (plugins too)."""
    from scarlet_moon.exporters import resolve_formats

    names = tuple(split_formats(formats))
    try:
        resolve_formats(names)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return names


@dataclass(frozen=True)
class SheetTarget:
    """Where and how a sheet is written: checked once, before any sampling or packing."""

    out: Path
    formats: tuple[str, ...]
    force: bool

    @classmethod
    def check(cls, out: str | Path, formats: Sequence[str], force: bool = False, inputs: Inputs = ()) -> "SheetTarget":
        """A .png path in a writable folder, known formats, not one of the run's `inputs` nor inside an
        input folder, and an existing sheet only with `force` (and only a regular file)."""
        from scarlet_moon.exporters import check_sheet_path, prepare_sheet_path
        from scarlet_moon.outputs import check_folder_writable, check_output, input_clash

        folder = Path(out).parent
        try:
            path = check_sheet_path(out)
        except ValueError:
            raise BadInput(
                f"{arg('out')} {str(out)!r} must be a .png file name (atlases are written next to it)"
            ) from None
        except FileNotFoundError:
            raise BadInput(f"{arg('out')} {str(out)!r}: its folder {str(folder)!r} does not exist") from None
        check_folder_writable(folder, arg("out"), out)
        clash = input_clash(path, inputs)
        if clash is not None:
            raise BadInput(f"{arg('out')} {str(out)!r} {clash}; choose an output outside the run's inputs")
        try:  # an interrupted earlier write of it rolled back, even if this run is refused below
            prepare_sheet_path(path)
        except OSError as exc:
            raise BadInput(f"{arg('out')} {str(out)!r}: its folder cannot be used ({exc.strerror or exc})") from None
        if path.exists() or path.is_symlink():
            check_output(path, arg("out"), force=force)
        return cls(path, check_formats(formats), force)

    @contextlib.contextmanager
    def claimed(self, writer: bool = True) -> Iterator["SheetTarget"]:
        """Held while the sheet is made: a second run on it is refused. `writer` False (a torchrun rank
        that does not write) claims nothing."""
        from scarlet_moon.outputs import claim

        with claim([self.out] if writer else [], arg("out")):
            yield self


def write_sheet(
    sprites: list[Sprite],
    target: SheetTarget,
    pack: PackOptions | None = None,
    app_meta: dict[str, Any] | None = None,
    jobs: int | None = None,
) -> list[Path]:
    """Pack `sprites` and write the sheet + atlases of `target`; the written paths. `app_meta`: extra
    atlas meta (an attribution); `jobs`: processes encoding the files (None: chosen from the size)."""
    from scarlet_moon.exporters import pack as pack_sprites
    from scarlet_moon.exporters import write_atlases

    try:
        result = pack_sprites(sprites, pack)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    try:
        return write_atlases(result, target.out, target.formats, force=target.force, app_meta=app_meta, workers=jobs)
    except FileExistsError as exc:
        raise BadInput(f"{exc.filename!r} already exists; pass {arg('force')} to replace it") from None
    except ValueError as exc:
        raise BadInput(f"{arg('out')} {str(target.out)!r}: {exc}") from None
    except OSError as exc:
        raise BadInput(f"{arg('out')} {str(target.out)!r} cannot be written: {exc}") from None


def check_pack(pack: object) -> PackOptions:
    """`pack` as PackOptions (None: the defaults); anything else is BadInput naming it."""
    from scarlet_moon.exporters import PackOptions

    if pack is None:
        return PackOptions()
    if not isinstance(pack, PackOptions):
        raise BadInput(f"{arg('pack')}: expected a scarlet_moon.exporters.PackOptions, got {type(pack).__name__}")
    return pack


def check_sprite_fits(card: ModelCard, count: int, pack: PackOptions) -> None:
    """A generated sprite fits a page at `pack`'s scale, and `count` of them fit the memory budget."""
    from scarlet_moon import memory

    try:
        pack.check_fits(card.size[1], card.size[0], "a generated sprite")
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    h, w = (side * pack.scale for side in card.size)  # the scaled copies and the pages that hold them
    memory.check(
        memory.image_bytes(count, h, w, copies=3), f"a sheet of {count:,} sprites at scale {pack.scale} ({w}x{h} each)"
    )


def make_sheet(
    spec: GenerationSpec,
    out: str | Path,
    *,
    formats: Sequence[str] = ("json-hash",),
    pack: PackOptions | None = None,
    force: bool = False,
    report: Report = SILENT,
    jobs: int | None = None,
) -> list[Path]:
    """`sm sheet`: generate `spec`'s sprites, pack them and write `out` + atlases; the written paths.
    Every check (model, labels, options, output, memory) runs before sampling. Under torchrun the ranks
    share the sampling and rank 0 writes (the others return [])."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.models.card import attribution_meta
    from scarlet_moon.pipelines.sprites import generate_sharded, generate_sprites
    from scarlet_moon.world import world_from_env

    pack = check_pack(pack)
    target = SheetTarget.check(out, formats, force, spec.inputs())
    card = read_card(spec.model)
    req = spec.request(card)
    check_sprite_fits(card, len(req.labels), pack)
    world = world_from_env()
    with target.claimed(writer=world is None or world.rank == 0):
        if world is None:
            gen = generate_sprites(spec, card=card, request=req, report=report, jobs=jobs)
            return write_sheet(gen.sprites(), target, pack, attribution_meta(card), jobs)
        gathered, shards = generate_sharded(spec, card, req, target.out, world, report)
        if gathered is None:
            return []  # its chunks are written; rank 0 packs
        written = write_sheet(gathered.sprites(), target, pack, attribution_meta(card), jobs)
        shutil.rmtree(shards, ignore_errors=True)  # written: the shards are no longer needed
        return written


def read_sprites(folder: str | Path, report: Report = SILENT) -> list[Sprite]:
    """Every PNG of `folder` (data.folders' rule: label subfolders, then loose PNGs labelled by their stem)
    as an exporters.Sprite named by its stem, read like every command reads images (16-bit and float
    scaled, huge ones refused from their header)."""
    from PIL import Image

    from scarlet_moon.data.folders import png_folder
    from scarlet_moon.data.images import read_image
    from scarlet_moon.exporters import Sprite
    from scarlet_moon.limits import MAX_SPRITES

    if not Path(folder).is_dir():
        raise BadInput(f"{arg('folder')} {str(folder)!r} is not a folder")
    found = png_folder(folder).files()
    if not found:
        raise BadInput(f"{arg('folder')} {str(folder)!r} has no .png files (looked in it and its direct subfolders)")
    if len(found) > MAX_SPRITES:
        raise BadInput(
            f"{arg('folder')} {str(folder)!r} holds {len(found):,} PNGs; a sheet takes at most {MAX_SPRITES:,}"
        )
    stems = [p.stem for p, _ in found]
    sprites = []
    with report.bar("reading") as update:
        for i, (path, label) in enumerate(found):
            rel = path.relative_to(folder).as_posix()
            # a stem used in two subfolders (walk/000.png, idle/000.png) keeps its folder
            name = path.stem if stems.count(path.stem) == 1 else rel[: -len(path.suffix)]
            sprites.append(
                Sprite(name=name, image=Image.fromarray(read_image(path), "RGBA"), label=label, meta={"source": rel})
            )
            update(i + 1, len(found))
    return sprites


def pack_folder(
    folder: str | Path,
    out: str | Path,
    *,
    formats: Sequence[str] = ("json-hash",),
    pack: PackOptions | None = None,
    force: bool = False,
    report: Report = SILENT,
    jobs: int | None = None,
) -> list[Path]:
    """`sm sheet --from`: the PNGs of `folder` packed as they are into `out` + atlases (never inside
    `folder`: a second run would pack the first one's sheet); the written paths."""
    pack = check_pack(pack)
    target = SheetTarget.check(out, formats, force, [folder])
    with target.claimed():
        return write_sheet(read_sprites(folder, report), target, pack, None, jobs)
