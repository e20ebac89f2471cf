"""Godot SpriteFrames resources (.tres): Godot 3 (format=2) and Godot 4 (format=3).

One animation per label (unlabelled frames form "default"), one AtlasTexture sub-resource per
frame, one ext_resource per page. The page path is the bare PNG file name: Godot resolves a
relative ext_resource path against the .tres folder (verified in Godot 3.2.3), so the pair can
be dropped into any project folder. Trim offsets become AtlasTexture.margin, whose size is the
padding added back around the region (source size - region size).
Strings are written with json.dumps: Godot's variant parser reads the same escapes.
"""

from __future__ import annotations

import json

from scarlet_moon.exporters.base import DEFAULT_DURATION_MS, AtlasFormat, AtlasTarget, by_label, duration_ms
from scarlet_moon.exporters.model import Frame

FPS = 1000.0 / DEFAULT_DURATION_MS  # 10 fps; Godot 4 durations are multiples of 1/FPS

# Godot 3 pixel art needs filter off at import; the importer honours a pre-seeded .import file.
GODOT3_IMPORT = (
    '[remap]\n\nimporter="texture"\ntype="StreamTexture"\n\n[params]\n\nflags/filter=false\nflags/mipmaps=false\n'
)


def q(text: str) -> str:
    """A Godot string literal."""
    return json.dumps(text, ensure_ascii=False)


def _animations(target: AtlasTarget) -> list[tuple[str, list[tuple[int, int, Frame]]]]:
    """[(animation name, [(sub-resource number from 1, page index, frame)])]."""
    page_of = {id(f): p for p, page in enumerate(target.pages) for f in page.frames}
    anims: dict[str, list[tuple[int, int, Frame]]] = {}
    for n, f in enumerate(by_label(target.frames), start=1):  # by_label keeps each label contiguous
        anims.setdefault(f.label if f.label is not None else "default", []).append((n, page_of[id(f)], f))
    return list(anims.items())


def _speed(entries: list[tuple[int, int, Frame]]) -> float:
    """Godot 3 has one speed (fps) per animation: 1000 / its frames' mean duration (10 without durations)."""
    mean = sum(duration_ms(f) for _, _, f in entries) / max(1, len(entries))
    fps = 1000.0 / mean if mean > 0 else FPS
    return float(f"{fps:.6g}")


class Godot3(AtlasFormat):
    reads_pixels = False  # page sizes only: renderable in a worker
    name = "godot3"
    description = "Godot 3 SpriteFrames .tres (format=2) + hero.png.import with filter off"
    suffix = ".tres"
    engine = "Godot 3 (SpriteFrames)"

    def render(self, target: AtlasTarget) -> str:
        anims = _animations(target)
        count = sum(len(e) for _, e in anims)
        out = [f'[gd_resource type="SpriteFrames" load_steps={len(target.images) + count + 1} format=2]', ""]
        for p, image in enumerate(target.images, start=1):
            out += [f'[ext_resource path={q(image)} type="Texture" id={p}]']
        out.append("")
        for _, entries in anims:
            for n, page, f in entries:
                out += [
                    f'[sub_resource type="AtlasTexture" id={n}]',
                    f"atlas = ExtResource( {page + 1} )",
                    f"region = Rect2( {f.x}, {f.y}, {f.w}, {f.h} )",
                ]
                if f.trimmed:
                    out.append(f"margin = Rect2( {f.offset_x}, {f.offset_y}, {f.source_w - f.w}, {f.source_h - f.h} )")
                out.append("")
        blocks = []
        for name, entries in anims:
            refs = ", ".join(f"SubResource( {n} )" for n, _, _ in entries)
            speed = _speed(entries)
            blocks.append(f'{{\n"frames": [ {refs} ],\n"loop": true,\n"name": {q(name)},\n"speed": {speed}\n}}')
        out += ["[resource]", f"animations = [ {', '.join(blocks)} ]", ""]
        return "\n".join(out)

    def companions(self, target: AtlasTarget) -> dict[str, str | bytes]:
        return {f"{image}.import": GODOT3_IMPORT for image in target.images}


class Godot4(AtlasFormat):
    reads_pixels = False  # page sizes only: renderable in a worker
    name = "godot4"
    description = "Godot 4 SpriteFrames .tres (format=3); set the canvas texture filter to Nearest"
    suffix = ".godot4.tres"
    engine = "Godot 4 (SpriteFrames)"

    def render(self, target: AtlasTarget) -> str:
        anims = _animations(target)
        count = sum(len(e) for _, e in anims)
        out = [f'[gd_resource type="SpriteFrames" load_steps={len(target.images) + count + 1} format=3]', ""]
        for p, image in enumerate(target.images, start=1):
            out.append(f'[ext_resource type="Texture2D" path={q(image)} id="{p}_sheet"]')
        out.append("")
        for _, entries in anims:
            for n, page, f in entries:
                out += [
                    f'[sub_resource type="AtlasTexture" id="AtlasTexture_{n}"]',
                    f'atlas = ExtResource("{page + 1}_sheet")',
                    f"region = Rect2({f.x}, {f.y}, {f.w}, {f.h})",
                ]
                if f.trimmed:
                    out.append(f"margin = Rect2({f.offset_x}, {f.offset_y}, {f.source_w - f.w}, {f.source_h - f.h})")
                out.append("")
        blocks = []
        for name, entries in anims:
            frames = ", ".join(
                f'{{\n"duration": {duration_ms(f) / DEFAULT_DURATION_MS},\n'
                f'"texture": SubResource("AtlasTexture_{n}")\n}}'
                for n, _, f in entries
            )
            blocks.append(f'{{\n"frames": [{frames}],\n"loop": true,\n"name": {q(name)},\n"speed": {FPS}\n}}')
        out += ["[resource]", f"animations = [{', '.join(blocks)}]", ""]
        return "\n".join(out)
