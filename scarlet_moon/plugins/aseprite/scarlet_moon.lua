-- Scarlet Moon for Aseprite (1.3+): Edit > FX > Scarlet Moon: Generate Sprites...
-- Runs `sm sample --json` and opens the sprites it writes as frames of a new sprite or as cels
-- of a new layer in the active sprite. The command-line and JSON logic lives in sm_cli.lua.

local lib

local function alert(text)
  app.alert{ title = "Scarlet Moon", text = text }
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a") or ""
  f:close()
  return s
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(text)
  f:close()
  return true
end

-- Run one command line; returns stdout, and nil plus a message when it failed.
local function run(line, stderr_path)
  local p = io.popen(line, "r")
  if not p then return nil, "could not start: " .. line end
  local out = p:read("a") or ""
  local ok, _, code = p:close()
  if not ok then
    local err = stderr_path and read_file(stderr_path) or ""
    if #err > 800 then err = "..." .. err:sub(-800) end
    return nil, string.format("`sm` failed (exit %s):\n%s", tostring(code), err ~= "" and err or out)
  end
  return out
end

local function fetch_labels(sm_path, model)
  local argv = { sm_path }
  for _, a in ipairs(lib.labels_args(model)) do argv[#argv + 1] = a end
  local stderr_path = app.fs.joinPath(app.fs.tempPath, "scarlet-moon-labels-stderr.txt")
  local line, err = lib.command_line(argv, lib.is_windows(), stderr_path)
  if not line then return nil, err end
  local out
  out, err = run(line, stderr_path)
  os.remove(stderr_path)
  if not out then return nil, err end
  return lib.parse_labels(out)
end

-- The sprite's palette as {r, g, b, a} colours.
local function palette_colors(sprite)
  local pal = sprite.palettes[1]
  local colors = {}
  for i = 0, #pal - 1 do
    local c = pal:getColor(i)
    colors[#colors + 1] = { c.red, c.green, c.blue, c.alpha }
  end
  return colors
end

-- The active cel cut to `rect` (sprite coordinates), saved as a PNG.
local function save_cel(sprite, cel, rect, path)
  local img = Image(rect.width, rect.height, sprite.colorMode)
  img:drawImage(cel.image, Point(cel.position.x - rect.x, cel.position.y - rect.y))
  img:saveAs{ filename = path, palette = sprite.palettes[1] }
end

-- White where the selection is (regenerate), black elsewhere (keep), sprite-sized.
local function save_mask(sprite, path)
  local sel = sprite.selection
  local img = Image(sprite.width, sprite.height, ColorMode.RGB)
  local white, black = app.pixelColor.rgba(255, 255, 255, 255), app.pixelColor.rgba(0, 0, 0, 255)
  for y = 0, sprite.height - 1 do
    for x = 0, sprite.width - 1 do
      img:drawPixel(x, y, sel:contains(x, y) and white or black)
    end
  end
  img:saveAs(path)
end

local function into_new_sprite(result, name)
  local images = {}
  for i, f in ipairs(result.files) do images[i] = Image{ fromFile = f.path } end
  local sprite = Sprite(images[1].width, images[1].height, ColorMode.RGB)
  app.transaction(function()
    local layer = sprite.layers[1]
    layer.name = name
    for i, img in ipairs(images) do
      if i > 1 then sprite:newEmptyFrame(i) end
      sprite:newCel(layer, i, img, Point(0, 0))
    end
  end)
  return sprite
end

local function into_new_layer(sprite, first_frame, origin, result, name)
  app.transaction(function()
    local layer = sprite:newLayer()
    layer.name = name
    for i, f in ipairs(result.files) do
      local n = first_frame + i - 1
      while #sprite.frames < n do sprite:newEmptyFrame(#sprite.frames + 1) end
      sprite:newCel(layer, n, Image{ fromFile = f.path }, origin)
    end
  end)
end

local function generate(d)
  local mode = lib.mode_from_title(d.mode) or "new"
  local sprite, cel = app.activeSprite, app.activeCel
  local sel = sprite and sprite.selection
  local has_sel = sel ~= nil and not sel.isEmpty
  if (mode == "variations" or mode == "fill" or d.use_palette) and not sprite then
    return alert("Open a sprite first (needed for " .. (d.use_palette and "its palette" or "this mode") .. ").")
  end
  if (mode == "variations" or mode == "fill") and not cel then return alert("Select a cel first.") end
  if mode == "fill" and not has_sel then return alert("Select the area to fill first.") end

  local stamp = os.date("!%Y%m%d-%H%M%S", os.time()) .. string.format("-%04d", math.random(0, 9999))
  local paths = lib.work_paths(app.fs.tempPath, stamp, app.fs.joinPath)
  local o = { out = paths.out, label = d.label, count = d.count, seed = d.seed, sampler = d.sampler,
              steps = d.steps, guidance = d.guidance, model = d.model, mode = mode }
  local region = sprite and Rectangle(0, 0, sprite.width, sprite.height)
  if mode == "variations" then
    if has_sel then region = sel.bounds end
    o.init, o.strength = paths.init, (tonumber(d.strength) or 75) / 100
  elseif mode == "fill" then
    o.init, o.mask = paths.init, paths.mask
  end
  if d.use_palette then o.palette = paths.palette end
  local args, err = lib.sample_args(o)  -- checked before any work file is written
  if not args then return alert(err) end
  table.insert(args, 1, d.sm)
  local line
  line, err = lib.command_line(args, lib.is_windows(), paths.stderr)
  if not line then return alert(err) end
  local to_layer = d.target == lib.TARGETS[2] and sprite ~= nil
  if to_layer and sprite.colorMode ~= ColorMode.RGB then
    alert("This sprite is not RGB: the sprites will open as a new sprite.")
    to_layer = false
  end

  if o.palette then
    local text = lib.palette_hex(palette_colors(sprite))
    if not text then return alert("The sprite's palette has no opaque colour.") end
    local ok, werr = write_file(paths.palette, text)
    if not ok then return alert("Cannot write " .. paths.palette .. ": " .. tostring(werr)) end
  end
  if o.init then save_cel(sprite, cel, region, paths.init) end
  if o.mask then save_mask(sprite, paths.mask) end
  local out
  out, err = run(line, paths.stderr)
  for _, p in ipairs({ paths.init, paths.mask, paths.palette, paths.stderr }) do os.remove(p) end
  if not out then return alert(err) end
  local result
  result, err = lib.parse_sample(out)
  if not result then return alert(err) end

  local seed = result.meta.seed or d.seed
  local name = string.format("%s seed %s", tostring(d.label), lib.int_text(seed, "seed") or tostring(seed))
  if to_layer then
    local origin = (mode == "variations") and Point(region.x, region.y) or Point(0, 0)
    into_new_layer(sprite, app.activeFrame.frameNumber, origin, result, name)
  else
    into_new_sprite(result, name)
  end
  app.refresh()
end

local function show_dialog(plugin)
  local prefs = plugin.preferences
  local sm_path = prefs.sm_path or "sm"
  local names, err = fetch_labels(sm_path, prefs.model)
  local dlg = Dialog{ title = "Scarlet Moon: Generate Sprites" }
  local mode_titles = {}
  for i, key in ipairs(lib.MODES) do mode_titles[i] = lib.MODE_TITLES[key] end
  local samplers = { lib.MODEL_DEFAULT }
  for _, s in ipairs(lib.SAMPLERS) do samplers[#samplers + 1] = s end

  dlg:entry{ id = "sm", label = "sm command", text = sm_path }
  dlg:entry{ id = "model", label = "Model (blank: bundled; bundled-32; or a file)", text = prefs.model or "" }
  dlg:label{ id = "status", label = "", text = names and "" or ("labels: " .. tostring(err)) }
  dlg:button{ id = "reload", text = "Reload labels", onclick = function()
    local n, e = fetch_labels(dlg.data.sm, dlg.data.model)
    if n then
      names = n
      dlg:modify{ id = "label", options = n, option = n[1] }
      dlg:modify{ id = "status", text = "" }
    else
      dlg:modify{ id = "status", text = "labels: " .. tostring(e) }
    end
  end }
  dlg:separator{}
  local options, option = names or { prefs.label or "0" }, nil
  for _, n in ipairs(options) do if n == prefs.label then option = n end end
  dlg:combobox{ id = "label", label = "Label", option = option or options[1], options = options }
  dlg:number{ id = "count", label = "Count", text = tostring(prefs.count or 8), decimals = 0 }
  dlg:number{ id = "seed", label = "Seed", text = tostring(prefs.seed or 0), decimals = 0 }
  dlg:combobox{ id = "sampler", label = "Sampler", option = prefs.sampler or lib.MODEL_DEFAULT, options = samplers }
  dlg:entry{ id = "steps", label = "Steps (blank: model's)", text = prefs.steps or "" }
  dlg:entry{ id = "guidance", label = "Guidance (blank: model's)", text = prefs.guidance or "" }
  dlg:check{ id = "use_palette", label = "Palette", text = "Use this sprite's palette",
             selected = prefs.use_palette or false }
  dlg:separator{}
  dlg:combobox{ id = "mode", label = "Mode", option = prefs.mode or mode_titles[1], options = mode_titles }
  dlg:slider{ id = "strength", label = "Strength % (variations)", min = 0, max = 100, value = prefs.strength or 75 }
  dlg:combobox{ id = "target", label = "Put results in", option = prefs.target or lib.TARGETS[1],
                options = lib.TARGETS }
  dlg:separator{}
  dlg:button{ id = "ok", text = "Generate", focus = true }
  dlg:button{ id = "cancel", text = "Cancel" }
  dlg:show()

  local d = dlg.data
  if not d.ok then return end
  prefs.sm_path, prefs.model, prefs.label = d.sm, d.model, d.label
  prefs.count, prefs.seed, prefs.sampler = d.count, d.seed, d.sampler
  prefs.steps, prefs.guidance, prefs.use_palette = d.steps, d.guidance, d.use_palette
  prefs.mode, prefs.strength, prefs.target = d.mode, d.strength, d.target
  generate(d)
end

function init(plugin)
  lib = dofile(app.fs.joinPath(plugin.path, "sm_cli.lua"))
  plugin:newCommand{
    id = "ScarletMoonGenerate",
    title = "Scarlet Moon: Generate Sprites...",
    group = "edit_fx",
    onclick = function() show_dialog(plugin) end,
  }
end

function exit(plugin)
end
