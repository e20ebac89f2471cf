-- Scarlet Moon for Aseprite: the plain-Lua half. No `app` here, so this file loads (and is
-- tested) under a bare lua5.4: it builds `sm` command lines and reads `sm --json` output back.
--
-- Aseprite's json.decode (v1.3+) returns userdata with __index/__len, not tables: type() says
-- "userdata", pairs() on an array yields nothing. So decoded values are only read with
-- field access, # and numeric loops. Without a `json` global, M.decode_json is used.

local M = {}

M.MODES = { "new", "variations", "fill", "tileable" }
M.MODE_TITLES = {
  new = "New sprites",
  variations = "Variations of the cel (or selection)",
  fill = "Fill the selection (inpaint)",
  tileable = "Tileable sprites",
}
M.SAMPLERS = { "ddpm", "ddim", "dpmpp-2m" }
M.MODEL_DEFAULT = "(model default)"
M.TARGETS = { "A new sprite", "A new layer of this sprite" }

function M.mode_from_title(title)
  for _, key in ipairs(M.MODES) do
    if M.MODE_TITLES[key] == title or key == title then return key end
  end
  return nil
end

function M.is_windows()
  return package.config:sub(1, 1) == "\\"
end

-- One argument for the shell: POSIX sh (single quotes) or cmd.exe (double quotes).
function M.quote(s, windows)
  s = tostring(s)
  if windows then
    if s:find('"', 1, true) then return nil, "a double quote cannot be passed on Windows: " .. s end
    if s ~= "" and not s:find("[%s&|<>^%%()!,;=]") then return s end
    return '"' .. s .. '"'
  end
  if s ~= "" and not s:find("[^%w%-%._/:=+,@]") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- argv (program first) -> one command line; stderr goes to a file so stdout stays pure JSON.
-- On Windows the whole line gets one more pair of quotes: cmd /c strips the outer pair.
function M.command_line(argv, windows, stderr_path)
  local parts = {}
  for i, a in ipairs(argv) do
    local q, err = M.quote(a, windows)
    if not q then return nil, err end
    parts[i] = q
  end
  local line = table.concat(parts, " ")
  if stderr_path then
    local q, err = M.quote(stderr_path, windows)
    if not q then return nil, err end
    line = line .. " 2>" .. q
  end
  if windows then line = '"' .. line .. '"' end
  return line
end

local function blank(v)
  return v == nil or (type(v) == "string" and v:match("^%s*$") ~= nil)
end

-- A whole number as "%d" text (Dialog:number gives floats such as 4.0), or nil, message.
local function shown(v)
  return type(v) == "number" and string.format("%.6g", v) or tostring(v)
end

function M.int_text(v, name, min)
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge or n ~= math.floor(n) then
    return nil, name .. " must be a whole number, got " .. shown(v)
  end
  if min and n < min then return nil, name .. " must be at least " .. min .. ", got " .. shown(v) end
  return string.format("%d", n)
end

-- A decimal number without a trailing ".0" noise (2.5 -> "2.5", 3 -> "3").
function M.num_text(v, name)
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then
    return nil, name .. " must be a number, got " .. tostring(v)
  end
  return string.format("%.6g", n)
end

function M.labels_args(model)
  local args = { "labels", "--json" }
  if not blank(model) then args[#args + 1] = "--model"; args[#args + 1] = model end
  return args
end

-- o: out, label, count, seed, sampler, steps, guidance, model, palette, mode, init, strength, mask.
-- Returns the `sm` arguments (without the program) or nil, message.
function M.sample_args(o)
  local args = { "sample", "--json", "--out", o.out }
  local function add(...) for _, v in ipairs({ ... }) do args[#args + 1] = v end end
  local err, txt
  if not blank(o.model) then add("--model", o.model) end
  if blank(o.label) then return nil, "pick a label" end
  add("--label", o.label)
  txt, err = M.int_text(o.count, "count", 1); if not txt then return nil, err end
  add("--count", txt)
  txt, err = M.int_text(o.seed, "seed"); if not txt then return nil, err end
  add("--seed", txt)
  if not blank(o.sampler) and o.sampler ~= M.MODEL_DEFAULT then add("--sampler", o.sampler) end
  if not blank(o.steps) then
    txt, err = M.int_text(o.steps, "steps", 1); if not txt then return nil, err end
    add("--steps", txt)
  end
  if not blank(o.guidance) then
    txt, err = M.num_text(o.guidance, "guidance"); if not txt then return nil, err end
    add("--guidance", txt)
  end
  if not blank(o.palette) then add("--palette", o.palette) end
  local mode = o.mode or "new"
  if mode == "variations" then
    if blank(o.init) then return nil, "variations need an init image" end
    local s = tonumber(o.strength)
    if s == nil or s < 0 or s > 1 then return nil, "strength must be between 0 and 1, got " .. shown(o.strength) end
    add("--init", o.init, "--strength", string.format("%.6g", s))
  elseif mode == "fill" then
    if blank(o.init) or blank(o.mask) then return nil, "filling the selection needs an init image and a mask" end
    add("--init", o.init, "--mask", o.mask)
  elseif mode == "tileable" then
    add("--tileable")
  elseif mode ~= "new" then
    return nil, "unknown mode " .. tostring(mode)
  end
  return args
end

-- Names of the work files of one run, all in `dir` (a folder that exists).
function M.work_paths(dir, stamp, join)
  local base = "scarlet-moon-" .. stamp
  return {
    out = join(dir, base),
    init = join(dir, base .. "-init.png"),
    mask = join(dir, base .. "-mask.png"),
    palette = join(dir, base .. "-palette.hex"),
    stderr = join(dir, base .. "-stderr.txt"),
  }
end

-- Lospec .hex text from {r, g, b, a} colours: opaque-ish ones only, first occurrence kept.
function M.palette_hex(colors)
  local seen, lines = {}, {}
  for _, c in ipairs(colors) do
    if (c[4] or 255) > 0 then
      local hex = string.format("%02x%02x%02x", c[1], c[2], c[3])
      if not seen[hex] then seen[hex] = true; lines[#lines + 1] = hex end
    end
  end
  if #lines == 0 then return nil end
  return table.concat(lines, "\n") .. "\n"
end

-- ---- JSON ----------------------------------------------------------------------------------

-- A small JSON decoder for Aseprite builds without the `json` global. null becomes nil.
function M.decode_json(text)
  local pos = 1
  local function fail(msg) error(string.format("JSON: %s at byte %d", msg, pos), 0) end
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1; return table.concat(out) end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        if e == "u" then
          local cp = tonumber(text:sub(pos + 2, pos + 5), 16) or fail("bad \\u escape")
          pos = pos + 6
          if cp >= 0xD800 and cp <= 0xDBFF and text:sub(pos, pos + 1) == "\\u" then
            local lo = tonumber(text:sub(pos + 2, pos + 5), 16) or fail("bad \\u escape")
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            pos = pos + 6
          end
          out[#out + 1] = utf8.char(cp)
        else
          out[#out + 1] = escapes[e] or fail("bad escape")
          pos = pos + 2
        end
      else
        local stop = text:find('["\\]', pos) or #text + 1
        out[#out + 1] = text:sub(pos, stop - 1)
        pos = stop
      end
    end
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1; ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        ws()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str(); ws()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[k] = value(); ws()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr, n = {}, 0
      pos = pos + 1; ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return arr end
      while true do
        n = n + 1
        arr[n] = value(); ws()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    end
    local lit = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if lit and lit ~= "" and lit ~= "-" then pos = pos + #lit; return tonumber(lit) or fail("bad number") end
    if text:sub(pos, pos + 3) == "true" then pos = pos + 4; return true end
    if text:sub(pos, pos + 4) == "false" then pos = pos + 5; return false end
    if text:sub(pos, pos + 3) == "null" then pos = pos + 4; return nil end
    fail("unexpected " .. (c == "" and "end of text" or string.format("%q", c)))
  end
  local result = value(); ws()
  if pos <= #text then fail("trailing text") end
  return result
end

-- The decoder to use: Aseprite's json.decode when there is one.
function M.decoder()
  if json ~= nil and json.decode ~= nil then return json.decode end
  return M.decode_json
end

-- `sm --json` prints one JSON document on its last non-blank line; anything before it is noise.
local function last_json(text, opener)
  local found
  for line in (text or ""):gmatch("[^\r\n]+") do
    if line:match("^%s*" .. opener) then found = line end
  end
  return found
end

local function decode(text, opener, decoder, what)
  local doc = last_json(text, opener)
  if not doc then return nil, "no JSON from `sm " .. what .. "`: " .. tostring(text):sub(1, 200) end
  local ok, value = pcall(decoder or M.decoder(), doc)
  if not ok or value == nil then return nil, "bad JSON from `sm " .. what .. "`: " .. tostring(value) end
  return value
end

-- `sm labels --json` -> list of names in index order.
function M.parse_labels(text, decoder)
  local doc, err = decode(text, "%[", decoder, "labels")
  if not doc then return nil, err end
  local names = {}
  for i = 1, #doc do
    local item = doc[i]
    local name, index = item.name, tonumber(item.index)
    if type(name) ~= "string" or index == nil then return nil, "`sm labels` entry " .. i .. " has no name/index" end
    names[math.floor(index) + 1] = name
  end
  if #names == 0 then return nil, "the model has no labels" end
  return names
end

-- `sm sample --json` -> {files = {{path, label, index, label_index}...}, meta = {seed, sampler, ...}}
-- as plain Lua tables (copied out of Aseprite's JSON userdata).
function M.parse_sample(text, decoder)
  local doc, err = decode(text, "{", decoder, "sample")
  if not doc then return nil, err end
  local files = doc.files
  if files == nil then return nil, "`sm sample` printed no files" end
  local out = { files = {}, meta = {} }
  for i = 1, #files do
    local f = files[i]
    if type(f.path) ~= "string" then return nil, "`sm sample` file " .. i .. " has no path" end
    out.files[i] = { path = f.path, label = f.label, index = tonumber(f.index),
                     label_index = tonumber(f.label_index) }
  end
  if #out.files == 0 then return nil, "`sm sample` wrote no sprites" end
  local meta = doc.meta
  if meta ~= nil then
    for _, k in ipairs({ "model", "seed", "sampler", "steps", "guidance" }) do out.meta[k] = meta[k] end
  end
  return out
end

return M
