-- LÖVE 11 engine check for tests/test_engines.py, copied into a temp game folder beside the atlas module
-- (SM_ATLAS_MODULE, default "hero": hero.lua) and its page PNGs.
-- On the first frame: require() the module, load every page with love.graphics.newImage (nearest filter),
-- draw EVERY frame through atlas.quads(love) unscaled onto a transparent Canvas (default alpha blending),
-- read the pixels back with Canvas:newImageData and print, one line each (strings as hex):
--   SMINFO <version> <renderer name> <renderer version>
--   SMFRAME <i> <name> <w> <h> <rgba bytes>        the frame as drawn through the module's quad
--   SMGRID <i> <name> <w> <h> <rgba bytes>         through anim8's grid formula (only with atlas.grid)
--   SMSHIFT <i> <name> <w> <h> <rgba bytes>        a quad moved 1px right: the negative control
--   SMDONE
-- With SM_LOAD_ONLY=1 it only requires the module and prints SMCOUNT <pages> <frames> <names> <labels>.
-- then love.event.quit(0). An error prints SMERROR <message> and exits with status 3 (LÖVE's own error
-- screen would wait for a key forever).
io.stdout:setvbuf("no")
package.path, package.cpath = "", ""  -- require() finds modules in the game folder only, not in the working dir

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function love.errorhandler(msg)
  io.stdout:write("SMERROR ", hex(tostring(msg) .. "\n" .. debug.traceback()), "\n")
  io.stderr:write(tostring(msg), "\n", debug.traceback(), "\n")
  os.exit(3)
end

local CELL_GAP = 2  -- transparent pixels between drawn frames: a quad bleeding into a neighbour shows up

-- Draw each (image, quad, w, h) at its own place on one canvas, read each place back.
local function draw_and_read(items)
  local width, height = CELL_GAP, CELL_GAP
  for _, it in ipairs(items) do
    it.dx, width = width, width + it.w + CELL_GAP
    height = math.max(height, it.h + 2 * CELL_GAP)
  end
  local canvas = love.graphics.newCanvas(width, height)
  love.graphics.setCanvas(canvas)
  love.graphics.clear(0, 0, 0, 0)
  love.graphics.setColor(1, 1, 1, 1)
  for _, it in ipairs(items) do love.graphics.draw(it.image, it.quad, it.dx, CELL_GAP) end
  love.graphics.setCanvas()
  for _, it in ipairs(items) do
    it.rgba = canvas:newImageData(1, 1, it.dx, CELL_GAP, it.w, it.h):getString()
  end
end

local function emit(kind, items)
  for i, it in ipairs(items) do
    print(table.concat({ kind, i, hex(it.name), it.w, it.h, hex(it.rgba) }, " "))
  end
end

local function check()
  local atlas = require(os.getenv("SM_ATLAS_MODULE") or "hero")
  if os.getenv("SM_LOAD_ONLY") == "1" then  -- the module alone (a large one, say): its sizes, no drawing
    local n = 0
    for _ in pairs(atlas.index) do n = n + 1 end
    print(table.concat({ "SMCOUNT", #atlas.pages, #atlas.frames, n, #atlas.labels }, " "))
    print("SMDONE")
    return
  end
  local images = {}
  for p, page in ipairs(atlas.pages) do
    images[p] = love.graphics.newImage(page.image)
    images[p]:setFilter("nearest", "nearest")
  end
  local quads = atlas.quads(love)
  local drawn, grid, shifted = {}, {}, {}
  for i, f in ipairs(atlas.frames) do
    local image, p = images[f.page], atlas.pages[f.page]
    drawn[i] = { name = f.name, image = image, quad = quads[f.name], w = f.w, h = f.h }
    local q = love.graphics.newQuad(f.x + 1, f.y, f.w, f.h, p.width, p.height)
    shifted[i] = { name = f.name, image = image, quad = q, w = f.w, h = f.h }
    local g = atlas.grid
    if g then  -- anim8's Grid: cell (c, r) at left + (c-1)*frameWidth + c*border, top + (r-1)*frameHeight + r*border
      local gq = love.graphics.newQuad(g.left + (f.col - 1) * g.frameWidth + f.col * g.border,
                                       g.top + (f.row - 1) * g.frameHeight + f.row * g.border,
                                       g.frameWidth, g.frameHeight, g.imageWidth, g.imageHeight)
      grid[i] = { name = f.name, image = image, quad = gq, w = g.frameWidth, h = g.frameHeight }
    end
  end
  draw_and_read(drawn)
  draw_and_read(shifted)
  if #grid > 0 then draw_and_read(grid) end
  local name, version, _, device = love.graphics.getRendererInfo()
  local major, minor, revision = love.getVersion()
  print(table.concat({ "SMINFO", hex(major .. "." .. minor .. "." .. revision), hex(name), hex(version .. " " .. device) }, " "))
  emit("SMFRAME", drawn)
  emit("SMGRID", grid)
  emit("SMSHIFT", shifted)
  print("SMDONE")
end

local done = false
function love.draw()
  if done then return end
  done = true
  check()
  love.event.quit(0)
end
