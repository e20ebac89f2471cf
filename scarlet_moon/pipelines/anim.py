"""`sm anim`: draw characters with an animation model and pack their walk cycles into a spritesheet whose
atlases carry one animation per character and direction, plus an animated GIF preview.

Names: character `<label>_<k>` (k counts the run's characters from 0), animation `<character>_<direction>`,
frame `<character>_<direction>_<i>`; every frame lasts 1000 / fps ms (Sprite.meta["duration"]), which the
atlas formats with animations carry (Phaser/Pixi `animations`, Aseprite tags and durations, Godot 3
speed, Godot 4 durations, LÖVE's quads and anim8 grid).

Editing: `keep` names a sheet `sm anim` wrote (its json-hash atlas beside it) and `character` one of its
characters; the directions in `redraw` are drawn again with the run's seed, everything else is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.generation.anim import AnimOptions
from scarlet_moon.progress import SILENT, Report

CHUNK = 16  # characters drawn per sampler call: bounds the memory whatever the count
MAX_CHARACTERS = 4096
MAX_ATLAS_BYTES = 64 << 20  # a kept sheet's json-hash atlas; sm anim writes a few hundred bytes a frame
PREVIEW_CHARACTERS = 32  # the GIF shows the first ones (at 4x: a few hundred pixels wide per row of 8)


@dataclass(frozen=True)
class AnimRequest:
    model: str | Path
    labels: Sequence[str | int] = ("0",)
    count: int = 8
    fps: int = 8
    preview: bool = True
    keep: str | Path | None = None  # a sheet `sm anim` wrote, to edit one character of
    character: str | None = None
    redraw: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_CHARACTERS:
            raise BadInput(f"{arg('count')} {self.count!r}: expected 1..{MAX_CHARACTERS} characters")
        if not 1 <= self.fps <= 60:
            raise BadInput(f"{arg('fps')} {self.fps!r}: expected 1..60 frames per second")
        if (self.keep is None) != (self.character is None) or (self.keep is None) != (not self.redraw):
            raise BadInput(
                f"editing takes {arg('keep')} SHEET, {arg('character')} NAME and at least one {arg('redraw')} "
                f"DIRECTION together"
            )


def make_anim(
    req: AnimRequest,
    out: str | Path,
    opts: AnimOptions = AnimOptions(),
    *,
    formats: Sequence[str] = ("json-hash",),
    pack: Any = None,
    force: bool = False,
    report: Report = SILENT,
) -> list[Path]:
    """Draw, pack and write; the written paths (sheet, atlases, GIF). Every check runs before sampling."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.anim import anim_shape_of, draw_characters, load_anim_net
    from scarlet_moon.models.card import model_path
    from scarlet_moon.pipelines.sheet import SheetTarget, check_pack, write_sheet

    pack = check_pack(pack)
    card = read_card(req.model)
    shape = anim_shape_of(card)
    inputs = [model_path(req.model), req.keep, *([_atlas_of(req.keep)] if req.keep else [])]
    target = SheetTarget.check(out, formats, force, inputs)
    gif = _gif_target(target.out, force, inputs) if req.preview else None
    h, w = card.size
    _check_memory(req.count * shape.slots, h * pack.scale, w * pack.scale)
    if req.keep is not None:
        names = [str(req.character)]
        kept: np.ndarray | None = read_kept(req.keep, str(req.character), shape.directions, shape.frames, card.size)
        labels = [_label_of(str(req.character), card.label_names)]
    else:
        labels = _labels(req, card.label_names)
        names = [f"{card.label_names[y]}_{k}" for k, y in enumerate(labels)]
        kept = None
    net = load_anim_net(card)
    parts = []
    chunks = range(0, len(labels), CHUNK)
    with target.claimed(), report.bar("characters") as update:
        for i, start in enumerate(chunks):
            update(i, len(chunks))
            part = labels[start : start + CHUNK]
            keep = None if kept is None else kept[start : start + CHUNK]
            parts.append(draw_characters(card, part, opts, keep=keep, redraw=req.redraw, net=net, first=start))
        update(len(chunks), len(chunks))
        chars = np.concatenate(parts)
        sprites = anim_sprites(chars, names, shape.directions, req.fps)
        written = write_sheet(sprites, target, pack, {"model": str(card.path.name)})
        if gif is not None:
            written.append(_write_gif(gif, chars, req.fps))
    return written


def anim_sprites(chars: np.ndarray, names: Sequence[str], directions: Sequence[str], fps: int) -> list[Any]:
    """Exporter Sprites of N x D x F x H x W x 4 characters: one label (animation) per character and direction."""
    from scarlet_moon.exporters import Sprite

    ms = max(1, round(1000 / fps))
    return [
        Sprite(
            name=f"{name}_{direction}_{f}",
            image=chars[c, d, f],
            label=f"{name}_{direction}",
            meta={"duration": ms, "character": name, "direction": direction, "frame": f},
        )
        for c, name in enumerate(names)
        for d, direction in enumerate(directions)
        for f in range(chars.shape[2])
    ]


def _labels(req: AnimRequest, names: Sequence[str]) -> list[int]:
    from scarlet_moon.models.card import resolve_labels, split_count

    chosen = resolve_labels(list(req.labels), names)
    return [y for y, k in zip(chosen, split_count(req.count, len(chosen))) for _ in range(k)]


def _label_of(character: str, names: Sequence[str]) -> int:
    label = character.rsplit("_", 1)[0]
    if label not in names:
        raise BadInput(f"{arg('character')} {character!r}: not a `sm anim` name <label>_<k> of this model's labels")
    return list(names).index(label)


def _atlas_of(sheet: str | Path) -> Path:
    return Path(sheet).with_suffix(".json")


def read_kept(
    sheet: str | Path, character: str, directions: Sequence[str], frames: int, size: tuple[int, int]
) -> np.ndarray:
    """The frames of `character` from a sheet `sm anim` wrote and its json-hash atlas: 1 x D x F x H x W x 4."""
    from scarlet_moon.data.images import read_image_alpha

    atlas = _atlas_of(sheet)
    if not Path(sheet).is_file() or not atlas.is_file():
        raise BadInput(
            f"{arg('keep')} {str(sheet)!r}: editing needs the sheet and its json-hash atlas {str(atlas)!r} "
            f"(what `sm anim` writes by default)"
        )
    if atlas.stat().st_size > MAX_ATLAS_BYTES:
        raise BadInput(f"{arg('keep')} {str(sheet)!r}: its atlas {str(atlas)!r} is over {MAX_ATLAS_BYTES >> 20} MB")
    try:
        entries = json.loads(atlas.read_text(encoding="utf-8"))["frames"]
        img, _ = read_image_alpha(Path(sheet))
        h, w = size
        out = np.zeros((1, len(directions), frames, h, w, 4), np.uint8)
        for d, direction in enumerate(directions):
            for f in range(frames):
                name = f"{character}_{direction}_{f}"
                if name not in entries:
                    raise BadInput(f"{arg('character')} {character!r}: {str(atlas)!r} has no frame {name!r}")
                r = entries[name]["frame"]
                x, y = int(r["x"]), int(r["y"])
                if (int(r["w"]), int(r["h"])) != (w, h) or x < 0 or y < 0:
                    raise BadInput(f"{str(atlas)!r}: frame {name!r} is not a {w}x{h} frame of this model")
                cell = img[y : y + h, x : x + w]
                if cell.shape[:2] != (h, w):
                    raise BadInput(f"{str(atlas)!r}: frame {name!r} lies outside {str(sheet)!r}")
                out[0, d, f] = cell
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadInput(f"{arg('keep')} {str(sheet)!r}: its atlas {str(atlas)!r} cannot be read ({exc})") from None
    return out


def _gif_target(out: Path, force: bool, inputs: Sequence[object]) -> Path:
    from scarlet_moon.outputs import check_output, input_clash

    gif = out.with_suffix(".gif")
    clash = input_clash(gif, inputs)
    if clash is not None:
        raise BadInput(f"the preview {str(gif)!r} {clash}; choose another {arg('out')}")
    if gif.exists() or gif.is_symlink():
        check_output(gif, arg("out"), force=force)
    return gif


def _write_gif(path: Path, chars: np.ndarray, fps: int) -> Path:
    from scarlet_moon.exporters.atomic import write_file
    from scarlet_moon.generation.anim_preview import preview_gif

    write_file(path, preview_gif(chars[:PREVIEW_CHARACTERS], max(1, round(1000 / fps)), zoom=4))
    return path


def _check_memory(frames: int, h: int, w: int) -> None:
    from scarlet_moon import memory

    memory.check(memory.image_bytes(frames, h, w, copies=4), f"{frames:,} frames of {w}x{h}")
