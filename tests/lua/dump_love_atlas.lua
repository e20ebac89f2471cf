-- lua5.4 dump_love_atlas.lua <atlas.lua>
-- Loads a LÖVE atlas module written by scarlet_moon/exporters/fmt_love.py in a plain Lua with an empty environment
-- (the module must need nothing) and prints its data as tab-separated lines, strings as hex
-- (so any byte survives); atlas.quads() runs against a fake `love` that records newQuad's arguments.
local path = assert(arg[1], "usage: lua5.4 dump_love_atlas.lua <atlas.lua>")
local chunk = assert(loadfile(path, "t", { ipairs = ipairs, pairs = pairs }))
local atlas = chunk()

local function hex(s)
  if s == nil then return "-" end
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local function opt(v) if v == nil then return "-" end return tostring(v) end
local function emit(...) print(table.concat({ ... }, "\t")) end

emit("IMAGE", hex(atlas.image))
for i, p in ipairs(atlas.pages) do emit("PAGE", i, hex(p.image), p.width, p.height) end
for i, f in ipairs(atlas.frames) do
  emit("FRAME", i, hex(f.name), hex(f.label), f.page, f.x, f.y, f.w, f.h, f.sourceW, f.sourceH, f.offsetX,
       f.offsetY, f.duration, opt(f.col), opt(f.row), hex(f.aliasOf))
end
for name, i in pairs(atlas.index) do emit("INDEX", hex(name), i) end
for _, label in ipairs(atlas.labels) do
  local idx = {}
  for k, v in ipairs(atlas.animations[label]) do idx[k] = tostring(v) end
  emit("ANIM", hex(label), table.concat(idx, ","))
end
local n = 0
for _ in pairs(atlas.animations) do n = n + 1 end
emit("ANIMCOUNT", n)
local g = atlas.grid
if g == nil then
  emit("GRID", "nil")
else
  emit("GRID", g.frameWidth, g.frameHeight, g.imageWidth, g.imageHeight, g.left, g.top, g.border)
  for label, cells in pairs(g.animations) do
    local c = {}
    for k, v in ipairs(cells) do c[k] = tostring(v) end
    emit("GRIDANIM", hex(label), table.concat(c, ","))
  end
end

local fake = { graphics = { newQuad = function(...) return { ... } end } }
local quads = atlas.quads(fake)
for i, f in ipairs(atlas.frames) do
  local q = quads[i]
  assert(quads[f.name] == q, "quads[name] is not quads[i] for frame " .. i)
  emit("QUAD", i, table.concat({ q[1], q[2], q[3], q[4], q[5], q[6] }, ","))
end
emit("DONE")
