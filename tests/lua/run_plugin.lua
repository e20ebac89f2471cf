-- lua5.4 tests/lua/run_plugin.lua PLUGIN_DIR WORK_DIR SCENARIO
-- Loads the extension like Aseprite does (dofile + init(plugin)), clicks its command, plays the
-- scenario's dialog input and prints every effect (see fake_aseprite.lua) for the pytest side.

local plugin_dir, work_dir, scenario = arg[1], arg[2], arg[3]
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local fake = require("fake_aseprite")

local LABELS = '[{"index": 0, "name": "creature"}, {"index": 1, "name": "item"}, '
  .. '{"index": 2, "name": "hero"}, {"index": 3, "name": "big boss"}]'
-- What `sm sample --json` prints, after some noise a tool might add on stdout.
local SAMPLE = 'some warning on stdout\n'
  .. '{"files": [{"path": "/out/hero_000.png", "label": "hero", "label_index": 2, "index": 0}, '
  .. '{"path": "/out/hero_001.png", "label": "hero", "label_index": 2, "index": 1}, '
  .. '{"path": "/out/hero_002.png", "label": "hero", "label_index": 2, "index": 2}], '
  .. '"meta": {"model": "m.safetensors", "model_fingerprint": null, "seed": 7, "sampler": "ddim", '
  .. '"steps": 25, "guidance": 2.5, "size": [16, 16]}, "grid": null}\n'

local SEL = Rectangle(4, 4, 8, 8)
local MODES = { new = "New sprites", variations = "Variations of the cel (or selection)",
                fill = "Fill the selection (inpaint)", tileable = "Tileable sprites" }
local NEW_LAYER = "A new layer of this sprite"

local function user(set) return { set = set } end

local SCENARIOS = {
  new = { users = { user{ label = "hero", count = 4.0, seed = 7.0, sampler = "ddim", steps = "25",
                          guidance = "2.5", mode = MODES.new } } },
  variations = { doc = {}, users = { user{ sm = "/opt/my tools/sm", label = "hero", count = 3.0, seed = 1.0,
                                           mode = MODES.variations, strength = 35, target = NEW_LAYER } } },
  variations_sel = { doc = { selection = SEL },
                     users = { user{ label = "hero", mode = MODES.variations, strength = 100, target = NEW_LAYER } } },
  fill = { doc = { selection = SEL }, users = { user{ label = "item", mode = MODES.fill } } },
  tileable = { users = { user{ label = "big boss", model = "my model.safetensors", mode = MODES.tileable } } },
  palette = { doc = { palette = { { 0, 0, 0, 0 }, { 255, 0, 0, 255 }, { 0, 255, 0, 255 }, { 255, 0, 0, 255 } } },
              users = { user{ label = "hero", use_palette = true } } },
  indexed_layer = { doc = { mode = ColorMode.INDEXED }, users = { user{ label = "hero", target = NEW_LAYER } } },
  fail = { fail_sample = 2, users = { user{ label = "hero" } } },
  fail_labels = { fail_labels = 127, users = { { cancel = true } } },
  reload = { users = { { reload = true, set = { sm = "/venv/bin/sm" }, after_reload = { label = "big boss" } } } },
  nocel = { doc = {}, nocel = true, users = { user{ label = "hero", mode = MODES.variations } } },
  fill_nosel = { doc = {}, users = { user{ label = "hero", mode = MODES.fill } } },
  bad_count = { users = { user{ label = "hero", count = 0.0 } } },
  bad_steps = { doc = { selection = SEL }, users = { user{ label = "hero", steps = "ten", mode = MODES.fill,
                                                           use_palette = true } } },
  cancel = { users = { { cancel = true } } },
  twice = { users = { user{ sm = "/venv/bin/sm", label = "item", count = 5.0, seed = 9.0, guidance = "3",
                            mode = MODES.tileable }, { cancel = true } }, clicks = 2 },
}

-- real_<mode> SM_PATH PNG_DIR: the real `sm` (two sprites, two steps) on a 16x16 document.
local real_mode = scenario:match("^real_(%a+)$")
if real_mode then
  SCENARIOS[scenario] = { doc = { selection = real_mode == "fill" and SEL or nil }, png_dir = arg[5],
                          users = { { reload = true, set = { sm = arg[4] },
                                      after_reload = { label = "hero", count = 2.0, seed = 3.0, steps = "2",
                                                       mode = MODES[real_mode], strength = 50,
                                                       use_palette = real_mode == "variations" } } } }
end
-- real32_new SM_PATH PNG_DIR: the same with the bundled 32x32 model typed into the Model field.
if scenario == "real32_new" then
  SCENARIOS[scenario] = { doc = {}, png_dir = arg[5],
                          users = { { reload = true, set = { sm = arg[4], model = "bundled-32" },
                                      after_reload = { label = "hero", count = 2.0, seed = 3.0, steps = "2",
                                                       mode = MODES.new } } } }
end

local s = assert(SCENARIOS[scenario], "unknown scenario " .. tostring(scenario))
fake.setup{ plugin_dir = plugin_dir, dir = work_dir, doc = s.doc, nocel = s.nocel, users = s.users,
            labels_json = LABELS, sample_json = SAMPLE, fail_sample = s.fail_sample, fail_labels = s.fail_labels,
            png_dir = s.png_dir }

dofile(plugin_dir .. "/scarlet_moon.lua")
local plugin = fake.plugin(plugin_dir)
init(plugin)
for _ = 1, s.clicks or 1 do plugin.commands[1].onclick() end
exit(plugin)

fake.emit("DONE")
