extends SceneTree
# Loads a SpriteFrames .tres written by the atlas exporter and reports what Godot 3 sees, as JSON.
#   SM_TRES=res://atlas/hero.tres godot3-server --no-window --path <proj> -s res://check_frames.gd
# (the path comes through the environment: Godot 3.2 takes a positional *.tres argument for a scene to run,
# even after "--").
# Prints one line "SMRESULT <json>" on stdout; exit code 1 if the resource cannot be loaded as expected.
# Pixels are read from the imported texture (atlas.get_data()) inside each frame's region, so the
# import step (godot3-server --editor --quit) must have run first.

func _emit(data):
	print("SMRESULT " + to_json(data))

func _fail(msg):
	printerr("SMFAIL " + msg)
	_emit({"ok": false, "error": msg})
	OS.exit_code = 1
	quit()

func _init():
	var path = OS.get_environment("SM_TRES")
	if path == "":
		path = "res://atlas/hero.tres"
	var sf = ResourceLoader.load(path, "", true)
	if sf == null:
		_fail("load(%s) returned null" % path)
		return
	if not (sf is SpriteFrames):
		_fail("%s is a %s, not SpriteFrames" % [path, sf.get_class()])
		return
	var anims = {}
	var images = {}
	for anim in sf.get_animation_names():
		var frames = []
		for i in range(sf.get_frame_count(anim)):
			var t = sf.get_frame(anim, i)
			var fr = {"class": t.get_class() if t != null else "null"}
			if t is AtlasTexture:
				var r = t.region
				fr["region"] = [r.position.x, r.position.y, r.size.x, r.size.y]
				fr["margin"] = [t.margin.position.x, t.margin.position.y, t.margin.size.x, t.margin.size.y]
				fr["size"] = [t.get_width(), t.get_height()]
				var atlas = t.atlas
				if atlas == null:
					fr["atlas"] = null
				else:
					fr["atlas"] = atlas.resource_path
					fr["atlas_class"] = atlas.get_class()
					fr["atlas_size"] = [atlas.get_width(), atlas.get_height()]
					fr["atlas_flags"] = atlas.flags
					fr["atlas_exists"] = File.new().file_exists(atlas.resource_path)
					if not images.has(atlas.resource_path):
						images[atlas.resource_path] = atlas.get_data()
					var img = images[atlas.resource_path]
					if img != null:
						# RGBA bytes of the region, row-major, as hex (compact on stdout).
						var sub = img.get_rect(r)
						sub.convert(Image.FORMAT_RGBA8)
						fr["rgba_hex"] = sub.get_data().hex_encode()
			frames.append(fr)
		anims[anim] = {"speed": sf.get_animation_speed(anim), "loop": sf.get_animation_loop(anim), "frames": frames}
	_emit({"ok": true, "version": Engine.get_version_info()["string"], "path": path, "animations": anims})
	quit()
