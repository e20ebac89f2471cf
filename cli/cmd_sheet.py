"""`sm sheet`: generate sprites (or read a folder of PNGs) and pack them into a spritesheet
plus engine atlases. `pack_and_write` does the packing and writing for any list of Sprites.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.cmd_sample import generation_meta
from scarlet_moon.generation.names import file_names
from cli.console import console, echo, progress_disabled
from cli.paths import model_input
from cli.sampling import GenerationArgs, generation_options, run_generation, run_sharded

from exporters.limits import MAX_SHEET_SIDE

if TYPE_CHECKING:
    from exporters import PackOptions

OUT_DEFAULT = "sheet.png"


@dataclass(frozen=True)
class SheetTarget:
    """Where and how a sheet is written: checked once, before any sampling or packing."""

    out: Path
    formats: tuple[str, ...]
    force: bool

    @classmethod
    def check(cls, out: str | Path, formats: tuple[str, ...] | list[str], force: bool,
              inputs: list[str | Path | None] | None = None) -> "SheetTarget":
        """A .png path in a writable folder, known formats, no existing sheet unless `force`, not one of
        the run's `inputs` nor inside an input folder, and claimed for this run (scarlet_moon.outputs)."""
        from exporters import check_sheet_path, recover
        from scarlet_moon.errors import BadInput
        from scarlet_moon.outputs import check_output, claim, input_clash
        from scarlet_moon.sheets import check_formats

        folder = Path(out).parent
        try:
            path = check_sheet_path(out)
        except ValueError:
            raise BadInput(f"--out {str(out)!r} must be a .png file name (atlases are written next to it)") from None
        except FileNotFoundError:
            raise BadInput(f"--out {str(out)!r}: its folder {str(folder)!r} does not exist") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise BadInput(f"--out {str(out)!r}: its folder {str(folder)!r} is not writable")
        clash = input_clash(path, inputs or [])
        if clash is not None:
            raise BadInput(f"--out {str(out)!r} {clash}; choose an output outside the run's inputs")
        from scarlet_moon.world import world_from_env

        ctx, world = click.get_current_context(silent=True), world_from_env()
        if ctx is not None and (world is None or world.rank == 0):  # under torchrun, rank 0 writes the sheet
            ctx.with_resource(claim([path], "--out"))  # a second run on it is refused until this one has written
        recover(path)  # an earlier write of this sheet that a kill interrupted: rolled back (and said)
        if path.exists() or path.is_symlink():
            check_output(path, "--out", force=force)  # only a regular file, and only with --force
        return cls(path, check_formats(formats), force)


def pack_and_write(sprites: list[Any], target: SheetTarget, options: PackOptions | None = None,
                   app_meta: dict[str, Any] | None = None, jobs: int | None = None) -> list[Path]:
    """Pack `sprites` (exporters.Sprite) and write the sheet + atlases of `target` through the library's
    one path (scarlet_moon.sheets); the written paths. `jobs`: processes encoding and rendering the
    files (None: chosen from the sheet's size). Errors come back as BadInput (exit code 2)."""
    from scarlet_moon import sheets

    return sheets.pack_and_write(sprites, target.out, target.formats, options, target.force, app_meta, jobs)


def find_pngs(folder: str | Path) -> list[tuple[Path, str | None]]:
    """(png path, label) pairs, sorted by file name; labels from subfolders if there are any,
    else from the stem before its last "_" (hero_000 -> hero; no "_" -> no label)."""
    from scarlet_moon.errors import BadInput

    root = Path(folder)
    if not root.is_dir():
        raise BadInput(f"--from {str(folder)!r} is not a folder")

    def pngs(d: Path) -> list[Path]:
        return sorted((p for p in d.iterdir() if p.is_file() and p.suffix.lower() == ".png"
                       and not p.name.startswith(".")), key=lambda p: p.name)

    subdirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)
    found = [(p, d.name) for d in subdirs for p in pngs(d)]
    found += [(p, p.stem.rpartition("_")[0] or None) for p in pngs(root)]
    deeper = [p for d in subdirs for p in d.rglob("*.png") if p.parent != d]
    if deeper:  # said, not silently dropped: labels are one folder level deep
        logging.getLogger(__name__).warning("--from %r: %d PNG(s) in folders below its subfolders are not packed "
                                            "(labels are one folder deep), e.g. %r", str(folder), len(deeper),
                                            str(deeper[0]))
    if not found:
        raise BadInput(f"--from {str(folder)!r} has no .png files (looked in it and its direct subfolders)")
    return found


def read_sprites(folder: str | Path, quiet: bool = False) -> list[Any]:
    """Load every PNG of `folder` as an exporters.Sprite (frame name = file stem, see find_pngs), with
    the reader every command uses (16-bit and float images scaled, huge ones refused from their header)."""
    from PIL import Image
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from exporters import Sprite
    from scarlet_moon.data.images import read_image
    from scarlet_moon.errors import BadInput
    from scarlet_moon.limits import MAX_SPRITES

    found = find_pngs(folder)
    if len(found) > MAX_SPRITES:
        raise BadInput(f"--from {str(folder)!r} holds {len(found):,} PNGs; a sheet takes at most {MAX_SPRITES:,}")
    stems = [p.stem for p, _ in found]
    sprites = []
    with Progress(TextColumn("reading"), BarColumn(), MofNCompleteColumn(), console=console, transient=True,
                  disable=progress_disabled(quiet)) as bar:
        task = bar.add_task("read", total=len(found))
        for path, label in found:
            image = Image.fromarray(read_image(path), "RGBA")
            rel = path.relative_to(folder).as_posix()
            # a stem used in two subfolders (walk/000.png, idle/000.png) keeps its folder
            name = path.stem if stems.count(path.stem) == 1 else rel[: -len(path.suffix)]
            sprites.append(Sprite(name=name, image=image, label=label, meta={"source": rel}))
            bar.advance(task)
    return sprites


def generated_sprites(args: GenerationArgs, quiet: bool, out: Path, shards: list[Path],
                      options: PackOptions | None = None, jobs: int | None = None) -> list[Any] | None:
    """Generate as `sm sample` does; frames `label_000`..., each with what regenerates it.

    Under torchrun (WORLD_SIZE > 1) the chunks are shared out by rank (cli.sampling.run_sharded):
    ranks other than 0 return None; rank 0 appends the shard folder to `shards`."""
    from PIL import Image

    from exporters import Sprite
    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.chunks import CHUNK_SIZE
    from scarlet_moon.world import world_from_env

    from exporters import PackOptions
    from scarlet_moon.errors import BadInput

    card = read_card(args.model)
    req = args.request(card)
    opts = options or PackOptions()
    try:  # every check that can fail runs before sampling: the sprites must fit a page
        opts.check_fits(card.size[1], card.size[0], "a generated sprite")
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    from scarlet_moon import memory

    h, w = (side * opts.scale for side in card.size)  # the scaled copies and the pages that hold them
    memory.check(memory.image_bytes(len(req.labels), h, w, copies=3),
                 f"a sheet of {len(req.labels):,} sprites at scale {opts.scale} ({w}x{h} each)")
    world = world_from_env()
    if world is None:
        images = run_generation(card, req, args, quiet, jobs)
    else:
        images, folder = run_sharded(card, req, args, quiet, out, world)
        if images is None:
            return None
        shards.append(folder)
    meta = generation_meta(card, req, args)
    common = {**{k: meta[k] for k in ("seed", "sampler", "steps", "guidance")}, "count": len(req.labels),
              "chunk_size": CHUNK_SIZE, "model_fingerprint": meta["model_fingerprint"], "model_step": card.meta.get("step")}
    if req.edit.active:  # --init/--strength/--mask/--tileable regenerate the frame too
        common.update({k: meta[k] for k in ("init", "mask", "strength", "tileable")})
    sprites = []
    for i, (img, k, (stem, _)) in enumerate(zip(images, req.labels, file_names(card.label_names, req.labels))):
        label = card.label_names[k]
        meta = dict(common, label=label, label_index=k, batch_index=i)
        image = img if img.shape[-1] == 4 else Image.fromarray(img, "RGB")  # an RGBA array is packed as it is
        sprites.append(Sprite(name=stem, image=image, label=label, meta=meta))
    return sprites


def refuse_generation_options(ctx: click.Context) -> None:
    """--from packs PNGs as they are: a generation option beside it would be silently ignored."""
    from cli.sampling import GENERATION_KEYS
    from scarlet_moon.errors import BadInput

    given = [k for k in GENERATION_KEYS if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE]
    if given:
        flag = next(p.opts[0] for p in ctx.command.params if p.name == given[0])
        raise BadInput(f"{flag} does not apply with --from (its PNGs are packed as they are); drop one of them")


def list_formats() -> None:
    """One tab-separated line per format: name, suffix, engine ("-" when a plugin names none), description."""
    from exporters import available_formats

    for name, fmt in available_formats().items():
        engine = str(getattr(fmt, "engine", "") or "-").replace("\t", " ")
        echo(f"{name}\t{fmt.suffix}\t{engine}\t{fmt.description}")


@click.command()
@click.option("--from", "from_dir", default=None, metavar="DIR",
              help="Pack the PNGs of DIR (subfolders = animation labels) instead of generating.")
@generation_options
@click.option("--out", default=OUT_DEFAULT, show_default=True,
              help="Sheet PNG; several pages become NAME-0.png, NAME-1.png...")
@click.option("--format", "formats", multiple=True, default=("json-hash",), show_default=True,
              help="Atlas format; repeat or comma-separate for several (see --list-formats).")
@click.option("--padding", type=click.IntRange(0, MAX_SHEET_SIDE), default=1, show_default=True,
              help="Pixels between frames.")
@click.option("--extrude", type=click.IntRange(0, MAX_SHEET_SIDE), default=0, show_default=True,
              help="Repeat edge pixels N times around each frame.")
@click.option("--scale", type=click.IntRange(1, MAX_SHEET_SIDE), default=1, show_default=True,
              help="Nearest-neighbour factor.")
@click.option("--pot", is_flag=True, help="Round sheet sizes up to powers of two.")
@click.option("--max-size", type=click.IntRange(1, MAX_SHEET_SIDE), default=4096, show_default=True,
              help="Largest sheet side; more sprites go on further pages.")
@click.option("--trim/--no-trim", default=False, show_default=True, help="Crop transparent borders.")
@click.option("--dedupe/--no-dedupe", default=True, show_default=True, help="Store identical frames once.")
@click.option("--force", is_flag=True, help="Replace existing files.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes finishing the sprites (alpha, colours, clean-up) and encoding pages and atlases; "
                   "the files are the same bytes  [default: 1 for a small sheet or on a CPU backend, else one per CPU]")
@click.option("--list-formats", "show_formats", is_flag=True, help="List atlas formats (plugins too) and exit.")
@click.pass_context
def sheet(ctx: click.Context, from_dir: str | None, out: str, formats: tuple[str, ...], force: bool,
          show_formats: bool, padding: int, extrude: int, scale: int, pot: bool, max_size: int, trim: bool,
          dedupe: bool, jobs: int | None, **params: Any) -> None:
    """Generate sprites (bundled model by default) and pack them into a spritesheet plus engine
    atlases; prints every written file."""
    from exporters import PackOptions
    from scarlet_moon.backends import read_card
    from scarlet_moon.models.card import attribution_meta

    if show_formats:
        list_formats()
        return
    if from_dir is not None:
        refuse_generation_options(ctx)
    args = GenerationArgs.take(params)
    inputs = [from_dir] if from_dir is not None else [model_input(args.model), args.init, args.mask]
    target = SheetTarget.check(out, formats, force, inputs)   # before minutes of sampling
    options = PackOptions(padding, extrude, scale, pot, max_size, trim, dedupe)
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    shards: list[Path] = []
    sprites = read_sprites(from_dir, quiet) if from_dir is not None else \
        generated_sprites(args, quiet, target.out, shards, options, jobs)
    if sprites is None:
        return  # a torchrun rank other than 0: its chunks are written, rank 0 packs
    credit = {} if from_dir is not None else attribution_meta(read_card(args.model))
    for path in pack_and_write(sprites, target, options, app_meta=credit, jobs=jobs):
        echo(path)
    for folder in shards:  # written: the shards are no longer needed
        shutil.rmtree(folder, ignore_errors=True)
