"""LÖVE 11: a Lua module of data (hero.lua) describing the sheet's quads, for require("hero").

    local atlas = require("hero")
    local image = love.graphics.newImage(atlas.image)   -- atlas.pages[p].image with several pages
    image:setFilter("nearest", "nearest")
    local quads = atlas.quads(love)                     -- quads[i] and quads[name]: love Quads
    love.graphics.draw(image, quads.walk_000, x, y)

Fields: pages {image, width, height}; frames[i] {name, label, page, x, y, w, h, sourceW, sourceH,
offsetX, offsetY, duration (seconds), aliasOf}; index[name] = i; labels (first-appearance order);
animations[label] = {i, ...} (frame indices, in order). When every frame sits on one uniform grid of
one page (the packer's layout for same-size untrimmed sprites), `grid` holds the arguments of
anim8.newGrid(frameWidth, frameHeight, imageWidth, imageHeight, left, top, border), each frame gets
its 1-based col/row, and grid.animations[label] = {col, row, col, row, ...} for grid(...).
anim8 puts cell (c, r) at x = left + (c-1)*frameWidth + c*border, so left = first x - border (it is
negative with --extrude).

The module requires nothing: literal pages and frames (written in functions of CHUNK_ROWS rows: LuaJIT,
LÖVE's Lua, refuses a function of more than 65536 constants; 70000 frames in one table failed to load),
a loop deriving index/labels/animations from the frames, and one helper taking `love` as an
argument. Plain Lua 5.1 syntax (LuaJIT and Lua 5.4 alike). Every string is a double-quoted Lua literal
whose bytes outside printable ASCII are decimal escapes, so no label (quotes, newlines, "]]") can end
it early; comments hold fixed text only.
"""

from __future__ import annotations

from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget, duration_ms
from scarlet_moon.exporters.model import Frame

CHUNK_ROWS = 1000  # rows per function: LuaJIT (LOVE) allows 65536 constants per function; a row has 1-3 strings

# index, labels, animations (and grid.animations) follow from the frames; built on load, not written out.
DERIVED = """\
-- index[name] = i; labels in first-appearance order; animations[label] = {i, ...} in frame order;
-- with a grid, grid.animations[label] = {col, row, col, row, ...}: anim8 grid(unpack(...)).
atlas.index, atlas.labels, atlas.animations = {}, {}, {}
if atlas.grid then atlas.grid.animations = {} end
for i, f in ipairs(atlas.frames) do
  atlas.index[f.name] = i
  if f.label ~= nil then
    local anim = atlas.animations[f.label]
    if anim == nil then
      anim = {}
      atlas.animations[f.label] = anim
      atlas.labels[#atlas.labels + 1] = f.label
      if atlas.grid then atlas.grid.animations[f.label] = {} end
    end
    anim[#anim + 1] = i
    if atlas.grid then
      local cells = atlas.grid.animations[f.label]
      cells[#cells + 1], cells[#cells + 2] = f.col, f.row
    end
  end
end
"""

QUADS_HELPER = """\
-- quads[i] and quads[name]: a love.graphics Quad per frame (pass the `love` table).
function atlas.quads(love)
  local quads = {}
  for i, f in ipairs(atlas.frames) do
    local p = atlas.pages[f.page]
    local q = love.graphics.newQuad(f.x, f.y, f.w, f.h, p.width, p.height)
    quads[i], quads[f.name] = q, q
  end
  return quads
end
"""


def lua_str(text: str) -> str:
    """A Lua string literal reading back as the UTF-8 bytes of `text` (Lua 5.1+/LuaJIT syntax)."""
    out = []
    for b in text.encode("utf-8", "surrogatepass"):
        if 0x20 <= b < 0x7F and b not in (0x22, 0x5C):
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")  # three digits: a following digit cannot extend the escape
    return '"' + "".join(out) + '"'


def lua_value(value: object) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return lua_str(str(value))


def uniform_grid(target: AtlasTarget) -> dict[str, int] | None:
    """anim8 grid arguments when all frames are equal-size, untrimmed cells of one grid on one page."""
    if len(target.pages) != 1 or not target.frames:
        return None
    frames = target.frames
    w, h = frames[0].w, frames[0].h
    if any(f.trimmed or (f.w, f.h) != (w, h) for f in frames):
        return None
    xs, ys = sorted({f.x for f in frames}), sorted({f.y for f in frames})
    gaps = {b - a - w for a, b in zip(xs, xs[1:])} | {b - a - h for a, b in zip(ys, ys[1:])}
    if len(gaps) > 1 or any(g < 0 for g in gaps):
        return None
    border = gaps.pop() if gaps else 0
    if any((x - xs[0]) % (w + border) for x in xs) or any((y - ys[0]) % (h + border) for y in ys):
        return None
    page_w, page_h = target.pages[0].size
    return {
        "frameWidth": w,
        "frameHeight": h,
        "imageWidth": page_w,
        "imageHeight": page_h,
        "left": xs[0] - border,
        "top": ys[0] - border,
        "border": border,
    }


def _cell(f: Frame, grid: dict[str, int]) -> tuple[int, int]:
    """1-based (col, row) of a frame in the grid."""
    return (
        (f.x - grid["left"] - grid["border"]) // (grid["frameWidth"] + grid["border"]) + 1,
        (f.y - grid["top"] - grid["border"]) // (grid["frameHeight"] + grid["border"]) + 1,
    )


def chunked(target: str, rows: list[str]) -> list[str]:
    """Lua that sets `target` to the list of `rows` (table constructors), CHUNK_ROWS per function so no
    function exceeds LuaJIT's constant limit however many rows there are."""
    out = [f"{target} = {{}}", "for _, part in ipairs({"]
    for start in range(0, len(rows), CHUNK_ROWS):
        out.append("  function() return {")
        out += [f"    {row}," for row in rows[start : start + CHUNK_ROWS]]
        out.append("  } end,")
    return out + ["}) do", f"  for _, row in ipairs(part()) do {target}[#{target} + 1] = row end", "end"]


def _table(fields: dict[str, object]) -> str:
    """{ key = value, ... } for identifier keys with scalar values (nil ones left out)."""
    return "{ " + ", ".join(f"{k} = {lua_value(v)}" for k, v in fields.items() if v is not None) + " }"


class Love(AtlasFormat):
    reads_pixels = False  # page sizes only: renderable in a worker
    name = "love"
    description = "LÖVE Lua module: quads per frame and per label, anim8 grid when the sheet is a grid"
    suffix = ".lua"
    engine = "LÖVE 11 (love.graphics.newQuad, anim8)"

    def render(self, target: AtlasTarget) -> str:
        grid = uniform_grid(target)
        page_of = {id(f): p for p, page in enumerate(target.pages, start=1) for f in page.frames}
        app = target.app_meta
        out = [
            "-- LOVE 11 atlas (data; requires nothing). Usage: see atlas.quads below and the README.",
            "local atlas = {}",
            f"atlas.app = {lua_value(app.get('app'))}",
            f"atlas.version = {lua_value(app.get('version'))}",
            f"atlas.image = {lua_str(target.images[0])}",
        ]
        out += chunked(
            "atlas.pages",
            [
                _table({"image": image, "width": page.size[0], "height": page.size[1]})
                for page, image in zip(target.pages, target.images)
            ],
        )
        rows = []
        for f in target.frames:
            fields: dict[str, object] = {
                "name": f.name,
                "label": f.label,
                "page": page_of[id(f)],
                "x": f.x,
                "y": f.y,
                "w": f.w,
                "h": f.h,
                "sourceW": f.source_w,
                "sourceH": f.source_h,
                "offsetX": f.offset_x,
                "offsetY": f.offset_y,
                "duration": duration_ms(f) / 1000,
                "aliasOf": f.alias_of,
            }
            if grid is not None:
                fields["col"], fields["row"] = _cell(f, grid)
            rows.append(_table(fields))
        out += chunked("atlas.frames", rows)
        if grid is None:
            out.append("atlas.grid = nil  -- not a uniform grid: use the quads")
        else:
            out += [
                "-- anim8.newGrid(g.frameWidth, g.frameHeight, g.imageWidth, g.imageHeight, g.left, g.top, g.border)",
                f"atlas.grid = {_table(dict(grid))}",
            ]
        out += [DERIVED, QUADS_HELPER, "return atlas", ""]
        return "\n".join(out)
