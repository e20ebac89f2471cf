-- LÖVE 11 settings for the engine check (tests/engines/love/main.lua): a small window under Xvfb, and
-- no audio/sound (they fail without a sound device) nor other modules the check does not use.
function love.conf(t)
  t.identity = "sm-engine-check"
  t.version = "11.0"
  t.console = false
  t.window.title = "scarlet-moon LOVE check"
  t.window.width = 64
  t.window.height = 64
  t.window.vsync = 0
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
  t.modules.touch = false
end
