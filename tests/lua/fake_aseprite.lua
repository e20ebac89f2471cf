-- A small fake of Aseprite's scripting API, enough to run scarlet_moon/plugins/aseprite under plain lua5.4.
-- Everything the plugin does to the "app" is printed as one tab-separated line (EMIT), which
-- tests/test_plugin_aseprite.py reads back. `fake.setup(opts)` installs the globals.

local fake = {}
local raw_type = type

local function clean(v)
  return (tostring(v):gsub("[\t\n]", " | "))
end

function fake.emit(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = clean(select(i, ...)) end
  print(table.concat(parts, "\t"))
end
local emit = fake.emit

-- ---- JSON as Aseprite gives it: userdata with __index/__len, floats for every number -------
local proxies = setmetatable({}, { __mode = "k" })

local function wrap(v, is_array_hint)
  if raw_type(v) == "number" then return v + 0.0 end
  if raw_type(v) ~= "table" then return v end
  local is_array = #v > 0 or (next(v) == nil and is_array_hint)
  local p = setmetatable({}, {
    __index = function(_, k)
      if is_array then
        local i = math.tointeger(k)  -- lua_tointeger: a string key reads index 0, i.e. null
        return i and wrap(v[i]) or nil
      end
      if raw_type(k) == "number" then k = tostring(k) end
      return wrap(v[k])
    end,
    __len = function()
      if is_array then return #v end
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      return n
    end,
    __pairs = function()
      if is_array then return function() return nil end, nil, nil end  -- Aseprite's ipairs_next bug
      local k
      return function()
        local val
        k, val = next(v, k)
        if k ~= nil then return k, wrap(val) end
      end, nil, nil
    end,
    __newindex = function() error("fake JSON objects are read-only here") end,
  })
  proxies[p] = true
  return p
end

-- type() of a decoded object or array is "userdata" in Aseprite.
function type(v)  -- luacheck: ignore
  if proxies[v] then return "userdata" end
  return raw_type(v)
end

-- ---- geometry, colours, images ----------------------------------------------------------------
function Point(x, y) return { x = x, y = y } end
function Rectangle(x, y, w, h) return { x = x, y = y, width = w, height = h } end
ColorMode = { RGB = 0, GRAYSCALE = 1, INDEXED = 2 }

local function rgba(r, g, b, a) return r | (g << 8) | (b << 16) | (a << 24) end
local WHITE = rgba(255, 255, 255, 255)

local Img = {}
Img.__index = Img

function Image(a, b, c)
  local img = setmetatable({ draws = {}, pixels = {} }, Img)
  if raw_type(a) == "table" then
    img.src, img.width, img.height, img.colorMode = a.fromFile, 16, 16, ColorMode.RGB
    emit("LOAD", a.fromFile)
  else
    img.width, img.height, img.colorMode = a, b, c or ColorMode.RGB
  end
  return img
end

function Img:drawImage(src, pos)
  self.draws[#self.draws + 1] = string.format("%s@%d,%d", src.src or src.tag or "?", pos.x, pos.y)
end

function Img:drawPixel(x, y, c) self.pixels[y * self.width + x] = c end

function Img:saveAs(arg)
  local filename = raw_type(arg) == "table" and arg.filename or arg
  local white = 0
  for _, c in pairs(self.pixels) do if c == WHITE then white = white + 1 end end
  emit("SAVE", filename, string.format("%dx%d", self.width, self.height), "mode=" .. self.colorMode,
       "draws=" .. table.concat(self.draws, ","), "white=" .. white,
       "palette=" .. tostring(raw_type(arg) == "table" and arg.palette ~= nil))
  -- A file for the plugin to pass on (and delete): with a real `sm`, a real PNG given by the test.
  local bytes = "not a PNG"
  if fake.png_dir then
    local src = assert(io.open(fake.png_dir .. (filename:find("%-mask%.png$") and "/mask.png" or "/init.png"), "rb"))
    bytes = src:read("a")
    src:close()
  end
  local f = assert(io.open(filename, "wb"))
  f:write(bytes)
  f:close()
end

-- ---- sprites ----------------------------------------------------------------------------------
local Spr = {}
Spr.__index = Spr
local sprite_count = 0

local function new_sprite(w, h, mode, frames, id)
  sprite_count = sprite_count + 1
  local s = setmetatable({ id = id or ("new" .. sprite_count), width = w, height = h, colorMode = mode,
                           frames = {}, layers = {}, selection = fake.selection() }, Spr)
  for i = 1, frames do s.frames[i] = { frameNumber = i } end
  s.layers[1] = { name = "Layer 1" }
  return s
end

function Sprite(w, h, mode)
  local s = new_sprite(w, h, mode or ColorMode.RGB, 1)
  emit("NEWSPRITE", s.id, string.format("%dx%d", w, h), "mode=" .. s.colorMode)
  return s
end

function Spr:newEmptyFrame(n)
  table.insert(self.frames, n, { frameNumber = n })
  for i, f in ipairs(self.frames) do f.frameNumber = i end
  emit("FRAME", self.id, n)
  return self.frames[n]
end

function Spr:newLayer()
  local layer = { name = "Layer " .. (#self.layers + 1) }
  self.layers[#self.layers + 1] = layer
  emit("LAYER", self.id)
  return layer
end

function Spr:newCel(layer, frame, image, pos)
  emit("CEL", self.id, layer.name, frame, image.src or "?", string.format("%d,%d", pos.x, pos.y),
       fake.in_transaction and "txn" or "no-txn")
end

function fake.selection(rect)
  return {
    isEmpty = rect == nil,
    bounds = rect or Rectangle(0, 0, 0, 0),
    contains = function(_, x, y)
      return rect ~= nil and x >= rect.x and y >= rect.y and x < rect.x + rect.width and y < rect.y + rect.height
    end,
  }
end

function fake.palette(colors)
  return setmetatable({
    getColor = function(_, i)
      local c = colors[i + 1]
      return { red = c[1], green = c[2], blue = c[3], alpha = c[4] }
    end,
  }, { __len = function() return #colors end })
end

-- The open document: 16x16, two frames, an 8x8 cel at (2, 3) in frame 1.
function fake.document(opts)
  local s = new_sprite(16, 16, opts.mode or ColorMode.RGB, 2, "doc")
  s.selection = fake.selection(opts.selection)
  s.palettes = { fake.palette(opts.palette or { { 0, 0, 0, 0 }, { 255, 0, 0, 255 } }) }
  local cel = { image = { tag = "cel", width = 8, height = 8 }, position = Point(2, 3), frame = s.frames[1] }
  return s, cel
end

-- ---- dialogs ----------------------------------------------------------------------------------
local Dlg = {}
Dlg.__index = Dlg

function Dialog(arg)
  return setmetatable({ data = {}, widgets = {}, order = {},
                        title = raw_type(arg) == "table" and arg.title or arg }, Dlg)
end

local function widget(kind, value_key)
  return function(self, t)
    self.widgets[t.id or ("#" .. #self.order)] = t
    self.order[#self.order + 1] = t
    t.kind = kind
    if t.id and value_key then
      local v = t[value_key]
      if kind == "number" then v = tonumber(v) end
      self.data[t.id] = v
    elseif t.id and kind == "button" then
      self.data[t.id] = false
    end
    return self
  end
end
Dlg.entry = widget("entry", "text")
Dlg.number = widget("number", "text")
Dlg.combobox = widget("combobox", "option")
Dlg.check = widget("check", "selected")
Dlg.slider = widget("slider", "value")
Dlg.label = widget("label", "text")
Dlg.button = widget("button")
Dlg.separator = widget("separator")

function Dlg:modify(t)
  local w = self.widgets[t.id]
  for k, v in pairs(t) do w[k] = v end
  if t.option then self.data[t.id] = t.option end
  if t.text and w.kind ~= "button" then self.data[t.id] = t.text end
  emit("MODIFY", t.id, t.options and table.concat(t.options, ",") or "", t.option or t.text or "")
end

-- show(): print the initial values, then act as the user of this scenario (fake.user).
function Dlg:show()
  for _, id in ipairs({ "sm", "model", "label", "count", "seed", "sampler", "steps", "guidance",
                        "use_palette", "mode", "strength", "target", "status" }) do
    local w = self.widgets[id]
    if w then emit("INIT", id, tostring(self.data[id]), w.options and table.concat(w.options, ",") or "") end
  end
  local user = table.remove(fake.users, 1) or { cancel = true }
  for k, v in pairs(user.set or {}) do self.data[k] = v end
  if user.reload then self.widgets.reload.onclick() end
  for k, v in pairs(user.after_reload or {}) do self.data[k] = v end
  self.data.ok = not user.cancel
  return self
end

-- ---- app, io.popen, json ---------------------------------------------------------------------
-- opts: dir (a real temp folder), doc (open a document: {selection=, mode=, palette=}),
-- nocel, labels_json, sample_json, fail_sample (exit code), users (dialog scripts);
-- png_dir: run the real `sm` (no io.popen stub), init/mask PNGs copied from there.
function fake.setup(opts)
  fake.users = opts.users or {}
  fake.png_dir = opts.png_dir
  local doc, cel
  if opts.doc then doc, cel = fake.document(opts.doc) end
  app = {
    activeSprite = doc,
    activeCel = (not opts.nocel) and cel or nil,
    activeFrame = doc and doc.frames[1] or nil,
    fs = { tempPath = opts.dir, joinPath = function(a, b) return a .. "/" .. b end },
    pixelColor = { rgba = rgba },
    alert = function(t) emit("ALERT", raw_type(t) == "table" and t.text or t) end,
    transaction = function(a, b)
      fake.in_transaction = true
      local ok, err = pcall(b or a)
      fake.in_transaction = false
      if not ok then error(err, 0) end
    end,
    refresh = function() emit("REFRESH") end,
  }
  os.time = function() return 0 end
  math.random = function() return 42 end

  local decode_json = dofile(opts.plugin_dir .. "/sm_cli.lua").decode_json
  json = { decode = function(s) emit("JSON.decode"); return wrap(decode_json(s), true) end }

  if opts.png_dir then
    local real_popen = io.popen
    io.popen = function(cmd, mode) emit("POPEN", cmd); return real_popen(cmd, mode) end
    return doc
  end
  io.popen = function(cmd)
    emit("POPEN", cmd)
    local is_labels = cmd:find(" labels %-%-json") ~= nil
    local palette = cmd:match("%-%-palette (%S+)")
    if palette then
      local f = io.open(palette, "rb")
      emit("PALETTE", f and (f:read("a"):gsub("\n", ",")) or "missing")
      if f then f:close() end
    end
    local code = (is_labels and opts.fail_labels) or (not is_labels and opts.fail_sample) or 0
    local err_path = cmd:match("2>(%S+)$")
    if code ~= 0 and err_path then
      local f = assert(io.open(err_path, "wb"))
      f:write(is_labels and "sm: not found\n" or "Usage: sm sample\nerror: no such label 'dragon'\n")
      f:close()
    end
    local out = code ~= 0 and "" or (is_labels and opts.labels_json or opts.sample_json)
    return {
      read = function() return out end,
      close = function()
        if code ~= 0 then return nil, "exit", code end
        return true, "exit", 0
      end,
    }
  end
  return doc
end

function fake.plugin(plugin_dir)
  local p = { path = plugin_dir, preferences = {}, commands = {} }
  function p:newCommand(t)
    emit("COMMAND", t.id, t.title, t.group)
    self.commands[#self.commands + 1] = t
  end
  return p
end

return fake
