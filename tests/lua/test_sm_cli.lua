-- lua5.4 tests/lua/test_sm_cli.lua PLUGIN_DIR
-- Plain-Lua checks of scarlet_moon/plugins/aseprite/sm_cli.lua (no Aseprite, no `json` global).
-- Prints "ok <name>" per check and "FAIL <name>: <why>" on failures; exits 1 on any failure.

local lib = dofile(arg[1] .. "/sm_cli.lua")
local failures, passed = 0, 0

local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
    print("ok " .. name)
  else
    failures = failures + 1
    print("FAIL " .. name .. ": " .. tostring(err))
  end
end

local function eq(got, want)
  if got ~= want then error(string.format("got %q, want %q", tostring(got), tostring(want)), 2) end
end

check("posix quoting", function()
  eq(lib.quote("/usr/bin/sm"), "/usr/bin/sm")
  eq(lib.quote("big boss"), "'big boss'")
  eq(lib.quote("it's"), "'it'\\''s'")
  eq(lib.quote(""), "''")
  eq(lib.quote("$(rm -rf /)"), "'$(rm -rf /)'")
  eq(lib.quote("a;b"), "'a;b'")
end)

check("windows quoting and command line", function()
  eq(lib.quote("C:\\Tools\\sm.exe", true), "C:\\Tools\\sm.exe")
  eq(lib.quote("C:\\Program Files\\sm.exe", true), '"C:\\Program Files\\sm.exe"')
  eq(lib.quote("a&b", true), '"a&b"')
  local q, err = lib.quote('say "hi"', true)
  eq(q, nil)
  assert(err:find("double quote"), err)
  eq(lib.command_line({ "C:\\Program Files\\sm.exe", "labels", "--json" }, true, "C:\\T\\e.txt"),
     '""C:\\Program Files\\sm.exe" labels --json 2>C:\\T\\e.txt"')
  eq(lib.command_line({ "sm", "labels", "--json" }, false, "/tmp/a b/e.txt"), "sm labels --json 2>'/tmp/a b/e.txt'")
  eq(lib.command_line({ "sm", "labels" }, false), "sm labels")
end)

check("numbers from dialog widgets", function()
  eq(lib.int_text(4.0, "count", 1), "4")
  eq(lib.int_text("12", "steps", 1), "12")
  eq(lib.int_text(-3.0, "seed"), "-3")
  local t, err = lib.int_text(2.5, "count", 1)
  eq(t, nil); eq(err, "count must be a whole number, got 2.5")
  t, err = lib.int_text(0.0, "count", 1)
  eq(t, nil); eq(err, "count must be at least 1, got 0")
  eq(select(2, lib.int_text("abc", "steps", 1)), "steps must be a whole number, got abc")
  eq(lib.num_text(3.0, "guidance"), "3")
  eq(lib.num_text("2.5", "guidance"), "2.5")
  eq(lib.num_text("x", "guidance"), nil)
end)

local base = { out = "/t/o", label = "hero", count = 4.0, seed = 0.0 }
local function with(extra)
  local o = {}
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(extra) do o[k] = v end
  return o
end

check("sample args per mode", function()
  eq(table.concat(lib.sample_args(with{}), " "), "sample --json --out /t/o --label hero --count 4 --seed 0")
  eq(table.concat(lib.sample_args(with{ sampler = lib.MODEL_DEFAULT, steps = " ", guidance = "" }), " "),
     "sample --json --out /t/o --label hero --count 4 --seed 0")
  eq(table.concat(lib.sample_args(with{ mode = "variations", init = "/t/i.png", strength = 0.6 }), " "),
     "sample --json --out /t/o --label hero --count 4 --seed 0 --init /t/i.png --strength 0.6")
  eq(table.concat(lib.sample_args(with{ mode = "fill", init = "/t/i.png", mask = "/t/m.png", strength = 0.6 }), " "),
     "sample --json --out /t/o --label hero --count 4 --seed 0 --init /t/i.png --mask /t/m.png")
  eq(table.concat(lib.sample_args(with{ mode = "tileable", palette = "/t/p.hex", model = "m.onnx" }), " "),
     "sample --json --out /t/o --model m.onnx --label hero --count 4 --seed 0 --palette /t/p.hex --tileable")
end)

check("sample args refused", function()
  local function refused(extra, want)
    local args, err = lib.sample_args(with(extra))
    eq(args, nil); eq(err, want)
  end
  refused({ count = 0.0 }, "count must be at least 1, got 0")
  refused({ label = "" }, "pick a label")
  refused({ steps = "ten" }, "steps must be a whole number, got ten")
  refused({ mode = "variations", init = "/i.png", strength = 1.5 }, "strength must be between 0 and 1, got 1.5")
  refused({ mode = "variations" }, "variations need an init image")
  refused({ mode = "fill", init = "/i.png" }, "filling the selection needs an init image and a mask")
  refused({ mode = "upscale" }, "unknown mode upscale")
end)

check("modes from dialog titles", function()
  for _, key in ipairs(lib.MODES) do eq(lib.mode_from_title(lib.MODE_TITLES[key]), key) end
  eq(lib.mode_from_title("nope"), nil)
end)

check("palette hex", function()
  eq(lib.palette_hex({ { 0, 0, 0, 0 }, { 255, 0, 16, 255 }, { 1, 2, 3, 128 }, { 255, 0, 16, 255 } }),
     "ff0010\n010203\n")
  eq(lib.palette_hex({ { 9, 9, 9, 0 } }), nil)
end)

check("fallback JSON decoder", function()
  local v = lib.decode_json(' {"a": [1, 2.5, -3e2, true, false, null, "x"], "s": "q\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00", "o": {}} ')
  eq(#v.a, 7); eq(v.a[1], 1); eq(v.a[2], 2.5); eq(v.a[3], -300); eq(v.a[4], true); eq(v.a[5], false)
  eq(v.a[6], nil); eq(v.a[7], "x")
  eq(v.s, 'q"\\/\n\u{e9}\u{1F600}')
  eq(next(v.o), nil)
  for _, bad in ipairs({ "", "{", '{"a" 1}', "[1,]", '"open', "[1] x", "nul" }) do
    local ok = pcall(lib.decode_json, bad)
    if ok then error("accepted bad JSON: " .. bad) end
  end
end)

check("parse labels and samples without a json global", function()
  assert(json == nil)
  local names = lib.parse_labels('noise\n[{"index": 1, "name": "item"}, {"index": 0, "name": "creature"}]\n')
  eq(#names, 2); eq(names[1], "creature"); eq(names[2], "item")
  local r = lib.parse_sample('{"files": [{"path": "/o/a_000.png", "label": "a", "label_index": 0, "index": 0}], '
                             .. '"meta": {"seed": 3, "sampler": "ddim", "steps": 25, "guidance": 2.0}, "grid": null}')
  eq(#r.files, 1); eq(r.files[1].path, "/o/a_000.png"); eq(r.files[1].label, "a")
  eq(r.meta.seed, 3); eq(r.meta.sampler, "ddim")
  local none, err = lib.parse_sample("Traceback (most recent call last):\n  boom\n")
  eq(none, nil); assert(err:find("no JSON from `sm sample`"), err)
  none, err = lib.parse_sample('{"files": []}')
  eq(none, nil); eq(err, "`sm sample` wrote no sprites")
  none, err = lib.parse_sample('{"files": [{"label": "a"}]}')
  eq(none, nil); eq(err, "`sm sample` file 1 has no path")
  none, err = lib.parse_labels("[]")
  eq(none, nil); eq(err, "the model has no labels")
  none, err = lib.parse_sample("{broken")
  eq(none, nil); assert(err:find("bad JSON"), err)
end)

print(string.format("%d passed, %d failed", passed, failures))
os.exit(failures == 0 and 0 or 1)
