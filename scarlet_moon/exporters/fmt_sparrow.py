"""Sparrow / Starling texture-atlas XML, as read by HaxeFlixel (FlxAtlasFrames.fromSparrow), OpenFL,
Starling (TextureAtlas) and Phaser 3 (load.atlasXML, textures/parsers/AtlasXML.js).

    <TextureAtlas imagePath="hero.png">
      <SubTexture name="walk_000" x="1" y="1" width="16" height="16"/>
      <SubTexture name="idle_000" x="18" y="1" width="10" height="9" frameX="-3" frameY="-4"
                  frameWidth="16" frameHeight="16"/>
    </TextureAtlas>

One file per page (the format names a single image). frameX/frameY are the NEGATED trim offsets
(Starling's convention: where the original frame starts relative to the stored pixels); Phaser takes
their absolute value, HaxeFlixel and Starling negate them. Frames come grouped by label with their
own names (label_000, label_001...), so prefix lookups (HaxeFlixel addByPrefix, Starling
getTextures) find each animation in order.
XML 1.0 cannot hold some characters at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF): a
name holding them is written with "_" in their place, kept distinct from every other name.
"""

from __future__ import annotations

import re

from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget, by_label
from scarlet_moon.exporters.model import Frame

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_ESCAPE = re.compile('[&<>"\t\n\r]')


def xml_attr(text: str) -> str:
    """A double-quoted attribute value that an XML parser reads back as `text` (tabs and newlines too:
    a parser normalises literal ones to spaces, character references survive)."""
    return '"' + _ESCAPE.sub(lambda m: _ESCAPES[m.group()], text) + '"'


def unique_names(frames: list[Frame]) -> dict[str, str]:
    """frame name -> a name XML can hold; distinct frames keep distinct names."""
    out: dict[str, str] = {}
    taken = {f.name for f in frames if not _NOT_XML.search(f.name)}
    for f in frames:
        if not _NOT_XML.search(f.name):
            out[f.name] = f.name
            continue
        base = candidate = _NOT_XML.sub("_", f.name)
        k = 2
        while candidate in taken:
            candidate, k = f"{base}_{k}", k + 1
        taken.add(candidate)
        out[f.name] = candidate
    return out


class Sparrow(AtlasFormat):
    reads_pixels = False  # page sizes only: renderable in a worker
    name = "sparrow"
    description = "Sparrow/Starling texture-atlas XML, one per page (trim as frameX/frameY)"
    suffix = ".xml"
    engine = "HaxeFlixel, OpenFL, Starling, Phaser 3 (load.atlasXML)"
    per_page = True

    def render(self, target: AtlasTarget) -> str:
        page, image = target.pages[0], target.images[0]
        if _NOT_XML.search(image):
            raise ValueError(f"Sparrow XML cannot name the page image {image!r} (a character XML cannot hold)")
        names = unique_names(page.frames)
        app = target.app_meta
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f"<!-- {_comment(app.get('app', ''))} {_comment(app.get('version', ''))} -->",
            f"<TextureAtlas imagePath={xml_attr(image)}>",
        ]
        for f in by_label(page.frames):
            attrs = f'name={xml_attr(names[f.name])} x="{f.x}" y="{f.y}" width="{f.w}" height="{f.h}"'
            if f.trimmed:
                attrs += (
                    f' frameX="{-f.offset_x}" frameY="{-f.offset_y}"'
                    f' frameWidth="{f.source_w}" frameHeight="{f.source_h}"'
                )
            out.append(f"  <SubTexture {attrs}/>")
        out += ["</TextureAtlas>", ""]
        return "\n".join(out)


def _comment(value: object) -> str:
    """Text safe inside an XML comment (no "--", no characters XML cannot hold)."""
    return _NOT_XML.sub("_", str(value)).replace("--", "-_").rstrip("-")
