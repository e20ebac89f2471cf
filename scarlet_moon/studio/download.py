"""The kept sprites as one zip: the sheet(s) + atlases (scarlet_moon.pipelines.sheet, the `sm sheet` path), each
sprite's PNG, the inputs of edited sprites and the `sm sample` command of each.

    {"sprites": [<sprite id>, ...], "name": "sprites", "formats": ["json-hash"], "padding": 1,
     "extrude": 0, "scale": 1, "pot": false, "max_size": 4096, "trim": false, "dedupe": true}
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.studio.store import SpriteRecord, Store

if TYPE_CHECKING:
    from scarlet_moon.exporters import PackOptions

PACK_FIELDS = ("padding", "extrude", "scale", "pot", "max_size", "trim", "dedupe")
FIELDS = ("sprites", "name", "formats") + PACK_FIELDS
MAX_EXPORT = 4096
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _records(body: dict[str, Any], store: Store) -> list[SpriteRecord]:
    ids = body.get("sprites")
    if not isinstance(ids, list) or not ids:
        raise BadInput(f"{arg('sprites')}: keep at least one sprite to export")
    if not all(isinstance(i, str) for i in ids):
        raise BadInput(f"{arg('sprites')}: expected a list of sprite ids (text)")
    if len(ids) > MAX_EXPORT:
        raise BadInput(f"{arg('sprites')}: {len(ids):,} sprites, at most {MAX_EXPORT:,} per export")
    return [store.sprites.get(i, "sprites") for i in dict.fromkeys(ids)]


def _pack_options(body: dict[str, Any]) -> PackOptions:
    from scarlet_moon.exporters import PackOptions

    try:
        return PackOptions(**{k: body[k] for k in PACK_FIELDS if k in body})
    except (TypeError, ValueError) as exc:
        raise BadInput(str(exc)) from None


def frame_names(records: list[SpriteRecord]) -> list[str]:
    """`<label>_000`, `<label>_001`... per label, in the kept order: generation.names' rule, the one
    `sm sheet` and `sm sample` follow (two labels that would share a stem get `-<label index>`). Sprites
    of one model take its label list, as `sm sheet` does; of several models, the labels kept."""
    from scarlet_moon.generation.names import file_names

    lists: set[tuple[str, ...] | None] = {r.extra.get("label_names") for r in records}
    only = next(iter(lists)) if len(lists) == 1 else None
    names = list(only) if only is not None else list(dict.fromkeys(r.label for r in records))
    return [stem for stem, _ in file_names(names, [names.index(r.label) for r in records])]


def export_zip(body: object, store: Store) -> tuple[str, bytes]:
    """(zip file name, its bytes); BadInput for a bad request (checked before anything is packed)."""
    from PIL import Image

    from scarlet_moon.exporters import Sprite
    from scarlet_moon.pipelines.sheet import SheetTarget, check_formats, write_sheet

    if not isinstance(body, dict) or set(body) - set(FIELDS):
        raise BadInput(f"expected a JSON object with {', '.join(FIELDS)}")
    name = body.get("name", "sprites")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise BadInput(f"{arg('name')} {str(name)[:80]!r}: expected 1-64 letters, digits, '_' or '-'")
    formats = body.get("formats", ["json-hash"])
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise BadInput(f"{arg('formats')}: expected a list of atlas format names")
    if not formats:  # every box unticked: say so rather than pick one
        raise BadInput(f"{arg('formats')}: none chosen; tick at least one atlas format")
    names, options, records = check_formats(formats), _pack_options(body), _records(body, store)
    frames = frame_names(records)
    # each frame's meta is what `sm sheet` writes for it: the same request gives the same atlas bytes
    sprites = [
        Sprite(name=f, image=Image.fromarray(r.rgba, "RGBA"), label=r.label, meta=r.extra.get("frame", {}))
        for f, r in zip(frames, records)
    ]
    with tempfile.TemporaryDirectory(prefix="sm-studio-") as tmp:
        credits = sorted({r.extra["attribution"] for r in records if r.extra.get("attribution")})
        credit = {"attribution": "; ".join(credits)} if credits else {}
        written = write_sheet(sprites, SheetTarget.check(Path(tmp) / f"{name}.png", names), options, credit)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in written:
                z.write(p, p.relative_to(tmp).as_posix())
            _add_sprites(z, frames, records)
    return f"{name}.zip", buf.getvalue()


def _add_sprites(z: zipfile.ZipFile, frames: list[str], records: list[SpriteRecord]) -> None:
    """sprites/<frame>.png, inputs/ of edited sprites, commands.txt (frame: command -> file it writes)."""
    from PIL import Image

    from scarlet_moon.data.images import png_bytes

    lines, inputs = [], set()
    for frame, r in zip(frames, records):
        z.writestr(f"sprites/{frame}.png", png_bytes(Image.fromarray(r.rgba, "RGBA")))
        for key, arr in (("init_file", r.init), ("mask_file", r.mask)):
            path = r.extra.get(key)
            if arr is not None and path and path not in inputs:
                inputs.add(path)
                img = Image.fromarray(arr, "RGBA") if arr.ndim == 3 else Image.fromarray(arr.astype("uint8") * 255, "L")
                z.writestr(path, png_bytes(img))
        lines.append(f"# {frame}: written as {r.file}\n{r.command}\n")
    z.writestr("commands.txt", "\n".join(lines))
