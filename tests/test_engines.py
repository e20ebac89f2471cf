"""Real game engines load our atlases.

* Phaser 3 (phaser@3.90.0) and PixiJS 8 (pixi.js@8.22.0), from npm (tests/engines/package-lock.json), run in
  headless Debian chromium driven by playwright-core (tests/engines/run.mjs). Each engine loads hero.png +
  hero.json (TexturePacker JSON hash) with its own loader, lists the frames, draws EVERY frame unscaled and
  reads the rendered pixels back; they must equal the source sprites exactly (opaque pixels: RGBA; transparent
  pixels: alpha 0 -- their RGB is undefined after premultiplication).
  Phaser also loads the "aseprite" export (load.aseprite + anims.createFromAseprite) and the Sparrow XML
  (load.atlasXML), drawing every frame the same way.
* Godot 3 (Debian godot3-server, headless but tools-enabled) imports hero.png like an editor would, then
  tests/engines/godot3/check_frames.gd loads hero.tres (SpriteFrames) and reports animations, AtlasTexture
  regions and the pixels inside each region as JSON.
* LÖVE 11 (Debian `love`, under `xvfb-run -a`: a real OpenGL context on Mesa's software renderer) runs
  tests/engines/love/main.lua: require("hero") (the "love" Lua module), newImage(hero.png), every frame drawn
  through atlas.quads(love) -- and through anim8's grid formula with atlas.grid -- onto a Canvas and read back
  with Canvas:newImageData; the pixels must equal the source sprites.

Install the engines with `.ci/install-engines` (apt: chromium, godot3-server, love, xvfb, xauth; `npm ci` in
tests/engines).
A missing engine SKIPS the tests with the reason -- except under CI (env CI set and not "0"/"false"),
where a missing engine FAILS them: CI must really run the engines.
Chromium is launched once for the module; each engine/renderer is one page in it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.engines

ENGINES = Path(__file__).resolve().parent / "engines"
NODE_MODULES = ENGINES / "node_modules"
PHASER_VERSION = "3.90.0"
PIXI_MAJOR = "8."
S = 16  # sprite size
LABELS = ["walk"] * 6 + ["idle"] * 4  # 10 sprites, 2 animations


# ---------------------------------------------------------------------------------------------------------
# skip locally / fail in CI
def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(ok: object, reason: str) -> None:
    """Skip when an engine is missing -- but fail under CI, where the engines must run."""
    if ok:
        return
    msg = f"{reason} (install with .ci/install-engines)"
    if in_ci():
        pytest.fail(f"CI is set and an engine is missing: {msg}", pytrace=False)
    pytest.skip(msg)


def _exe(env_var: str, *names: str) -> str | None:
    """$env_var if set (must exist), else the first of names on PATH."""
    if os.environ.get(env_var):
        p = os.environ[env_var]
        return p if os.path.isfile(p) and os.access(p, os.X_OK) else None
    for n in names:
        if shutil.which(n):
            return shutil.which(n)
    return None


def chromium_path() -> str | None:
    return _exe("SM_CHROMIUM", "chromium", "chromium-browser")


def node_major() -> int:
    node = shutil.which("node")
    if not node:
        return 0
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=120).stdout.strip()
    m = re.match(r"v(\d+)\.", out)
    return int(m.group(1)) if m else 0


def browser_missing() -> str | None:
    """Why the browser engines cannot run here, or None."""
    if not chromium_path():
        return "chromium not found (apt-get install chromium)"
    major = node_major()
    if major < 20:
        return f"node >= 20 needed by playwright-core (found {'none' if major == 0 else major})"
    for p in ("phaser/dist/phaser.min.js", "pixi.js/dist/pixi.min.js", "playwright-core/package.json"):
        if not (NODE_MODULES / p).exists():
            return f"tests/engines/node_modules/{p} missing (cd tests/engines && npm ci)"
    return None


def godot_bin() -> str | None:
    return _exe("SM_GODOT3", "godot3-server")


def love_bin() -> str | None:
    return _exe("SM_LOVE", "love")


# ---------------------------------------------------------------------------------------------------------
# fixture atlas: distinct known pixels per sprite, some transparent, alpha only 0/255
def sprite_pixels(i: int) -> np.ndarray:
    rng = np.random.default_rng(7100 + i)
    a = rng.integers(0, 256, (S, S, 4), dtype=np.uint8)
    a[..., 3] = np.where(rng.random((S, S)) < 0.3, 0, 255)
    a[0, :, 3] = 255  # opaque top row and left column: a 1px shift of the region cannot go unnoticed
    a[:, 0, 3] = 255
    a[S - 1, S - 1, 3] = 0  # a transparent corner
    a[a[..., 3] == 0] = 0
    return a


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    """Sprites -> the project's own packer + writers: hero.png, hero.json, hero.tres(+.png.import), hero.aseprite.json,
    hero.xml (Sparrow), hero.lua (LÖVE)."""
    from scarlet_moon.exporters import Sprite, pack, write_atlases

    src = {f"hero_{i:03d}": sprite_pixels(i) for i in range(len(LABELS))}
    sprites = [
        Sprite(name=n, image=Image.fromarray(px, "RGBA"), label=lab, meta={"i": i})
        for i, ((n, px), lab) in enumerate(zip(src.items(), LABELS))
    ]
    result = pack(sprites, padding=1, extrude=0, scale=1, pot=False, max_size=4096, trim=False)
    assert len(result.pages) == 1, "fixture expects a single page"
    d = tmp_path_factory.mktemp("atlas")
    write_atlases(result, out=d / "hero.png", formats=["json-hash", "godot3", "aseprite", "sparrow", "love"])
    names = sorted(p.name for p in d.iterdir())
    for f in ("hero.png", "hero.json", "hero.tres", "hero.png.import", "hero.aseprite.json", "hero.xml", "hero.lua"):
        assert f in names, f"write_atlases did not write {f}: {names}"

    # Negative control: the same atlas with every frame moved 1px right. The pixel comparison must catch it.
    ctrl = d / "control"
    ctrl.mkdir()
    shutil.copy(d / "hero.png", ctrl / "hero.png")
    data = json.loads((d / "hero.json").read_text())
    for fr in data["frames"].values():
        fr["frame"]["x"] += 1
    (ctrl / "hero.json").write_text(json.dumps(data))

    frames = {f.name: f for f in result.pages[0].frames}
    return {
        "dir": d,
        "src": src,
        "result": result,
        "frames": frames,
        "rects": {n: (f.x, f.y, f.w, f.h) for n, f in frames.items()},
        "animations": result.animations(),
        "ase_json": d / "hero.aseprite.json",
        "control_dir": ctrl,
    }


def decode(drawn: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(drawn["rgba"]), np.uint8).reshape(drawn["h"], drawn["w"], 4)


def pixel_diffs(got: np.ndarray, exp: np.ndarray) -> list[str]:
    """Exact comparison for pixel art: alpha everywhere, RGB where the source is opaque."""
    if got.shape != exp.shape:
        return [f"shape {got.shape} != {exp.shape}"]
    out = []
    for y, x in zip(*np.nonzero(got[..., 3] != exp[..., 3])):
        out.append(f"alpha@({x},{y}) got {got[y, x].tolist()} want {exp[y, x].tolist()}")
    opaque = exp[..., 3] == 255
    for y, x in zip(*np.nonzero(opaque & (got[..., :3] != exp[..., :3]).any(-1))):
        out.append(f"rgb@({x},{y}) got {got[y, x].tolist()} want {exp[y, x].tolist()}")
    return out


def assert_drawn_frames_match(res: dict, src_for: dict[str, np.ndarray], what: str) -> None:
    assert {d["name"] for d in res["drawn"]} == set(src_for), f"{what}: drew {[d['name'] for d in res['drawn']]}"
    bad = {}
    for d in res["drawn"]:
        diffs = pixel_diffs(decode(d), src_for[d["name"]])
        if diffs:
            bad[d["name"]] = f"{len(diffs)} px differ, e.g. {diffs[:3]}"
    assert not bad, f"{what}: rendered pixels differ from the source sprites: {bad}"


# ---------------------------------------------------------------------------------------------------------
# browser engines: one chromium, one page per engine/renderer
@pytest.fixture(scope="module")
def browser(atlas, tmp_path_factory):
    why = browser_missing()
    require(why is None, why or "")
    d = atlas["dir"]
    jobs = [
        {"id": "phaser-canvas", "page": "phaser_page.html", "assets": str(d), "query": {"renderer": "canvas"}},
        {"id": "phaser-webgl", "page": "phaser_page.html", "assets": str(d), "query": {"renderer": "webgl"}},
        {"id": "pixi-webgl", "page": "pixi_page.html", "assets": str(d), "query": {"renderer": "webgl"}},
        {"id": "pixi-canvas", "page": "pixi_page.html", "assets": str(d), "query": {"renderer": "canvas"}},
        {
            "id": "control",
            "page": "phaser_page.html",
            "assets": str(atlas["control_dir"]),
            "query": {"renderer": "canvas"},
        },
        {
            "id": "phaser-aseprite",
            "page": "phaser_page.html",
            "assets": str(d),
            "query": {"renderer": "canvas", "kind": "aseprite", "json": atlas["ase_json"].name},
        },
        {
            "id": "phaser-xml-canvas",
            "page": "phaser_page.html",
            "assets": str(d),
            "query": {"renderer": "canvas", "kind": "xml", "json": "hero.xml"},
        },
        {
            "id": "phaser-xml-webgl",
            "page": "phaser_page.html",
            "assets": str(d),
            "query": {"renderer": "webgl", "kind": "xml", "json": "hero.xml"},
        },
    ]
    spec = tmp_path_factory.mktemp("browser") / "jobs.json"
    spec.write_text(json.dumps({"chromium": chromium_path(), "jobs": jobs}))
    proc = subprocess.run(
        ["node", str(ENGINES / "run.mjs"), str(spec)], cwd=ENGINES, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"run.mjs rc={proc.returncode}\nstderr:\n{proc.stderr[-4000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def page_result(browser: dict, job: str) -> dict:
    res = browser["results"][job]
    assert res.get("ok"), f"{job}: {res.get('error')}\nconsole:\n" + "\n".join(res.get("logs", [])[-20:])
    return res


@pytest.mark.parametrize("renderer", ["canvas", "webgl"])
def test_phaser3_loads_json_hash_and_draws_exact_pixels(browser, atlas, renderer):
    res = page_result(browser, f"phaser-{renderer}")
    assert res["version"] == PHASER_VERSION
    assert res["renderer"] == renderer  # no silent fallback from WebGL to canvas
    assert sorted(res["names"]) == sorted(atlas["rects"])
    got = {n: (f["x"], f["y"], f["w"], f["h"]) for n, f in res["frames"].items()}
    assert got == atlas["rects"]
    for n, f in res["frames"].items():
        assert f["source"] == [S, S] and not f["trimmed"] and not f["rotated"], (n, f)
    assert_drawn_frames_match(res, atlas["src"], f"Phaser {res['version']} {renderer}")


@pytest.mark.parametrize("renderer", ["webgl", "canvas"])
def test_pixi8_loads_json_hash_with_animations_and_draws_exact_pixels(browser, atlas, renderer):
    res = page_result(browser, f"pixi-{renderer}")
    assert res["version"].startswith(PIXI_MAJOR)
    assert res["renderer"] == renderer
    assert sorted(res["names"]) == sorted(atlas["rects"])
    got = {n: (f["x"], f["y"], f["w"], f["h"]) for n, f in res["frames"].items()}
    assert got == atlas["rects"]
    assert all(f["source"] == [S, S] for f in res["frames"].values())
    written = json.loads((atlas["dir"] / "hero.json").read_text())["frames"]
    for n, f in res["frames"].items():  # Pixi reads only "anchor" (not "pivot") as the default anchor
        if "anchor" in written[n]:
            assert f["anchor"] == [written[n]["anchor"]["x"], written[n]["anchor"]["y"]], (n, f["anchor"])
    # Spritesheet.animations: label -> textures, in order (mapped back to frame names by identity)
    assert res["anims"] == atlas["animations"]
    assert {k: len(v) for k, v in res["anims"].items()} == {"walk": 6, "idle": 4}
    assert_drawn_frames_match(res, atlas["src"], f"PixiJS {res['version']} {renderer}")


def test_phaser3_aseprite_animations(browser, atlas):
    res = page_result(browser, "phaser-aseprite")
    data = json.loads(atlas["ase_json"].read_text())
    # Phaser's createFromAseprite looks frames up by index: keys must be "0".."n-1".
    assert sorted(res["names"], key=int) == [str(i) for i in range(len(atlas["rects"]))]
    by_rect = {r: n for n, r in atlas["rects"].items()}
    name_of = {}
    for key, f in res["frames"].items():
        rect = (f["x"], f["y"], f["w"], f["h"])
        assert rect in by_rect, f"aseprite frame {key} has a rect {rect} that is no packed frame"
        name_of[key] = by_rect[rect]
    assert sorted(name_of.values()) == sorted(atlas["rects"])
    anims = {k: [name_of[i] for i in v] for k, v in res["anims"].items()}
    assert anims == atlas["animations"], (anims, data["meta"].get("frameTags"))
    assert_drawn_frames_match(res, {k: atlas["src"][n] for k, n in name_of.items()}, "Phaser aseprite")


@pytest.mark.parametrize("renderer", ["canvas", "webgl"])
def test_phaser3_loads_sparrow_xml_and_draws_exact_pixels(browser, atlas, renderer):
    res = page_result(browser, f"phaser-xml-{renderer}")
    assert res["version"] == PHASER_VERSION
    assert res["renderer"] == renderer
    assert sorted(res["names"]) == sorted(atlas["rects"])
    got = {n: (f["x"], f["y"], f["w"], f["h"]) for n, f in res["frames"].items()}
    assert got == atlas["rects"]
    assert all(f["source"] == [S, S] and not f["trimmed"] for f in res["frames"].values())
    assert_drawn_frames_match(res, atlas["src"], f"Phaser {res['version']} atlasXML {renderer}")


def test_pixel_check_catches_a_wrong_region(browser, atlas):
    """Negative control: the harness must notice frames shifted by one pixel."""
    res = page_result(browser, "control")
    for d in res["drawn"]:
        assert pixel_diffs(decode(d), atlas["src"][d["name"]]), f"shifted frame {d['name']} went unnoticed"


# ---------------------------------------------------------------------------------------------------------
# Godot 3
GODOT_BAD = re.compile(r"Parse Error|Failed loading resource|Can't open|_get_modified_time|No loader found")


def run_godot(args: list[str], proj: Path, timeout: int = 600, **env) -> subprocess.CompletedProcess:
    e = {**os.environ, "LC_ALL": "C.UTF-8", **env}
    return subprocess.run(
        [godot_bin(), "--no-window", "--path", str(proj), *args], capture_output=True, text=True, timeout=timeout, env=e
    )


def test_godot3_loads_spriteframes_regions_and_pixels(atlas, tmp_path):
    require(godot_bin(), "godot3-server not found (apt-get install godot3-server)")
    proj = tmp_path / "proj"
    (proj / "atlas").mkdir(parents=True)
    for f in ("project.godot", "check_frames.gd"):
        shutil.copy(ENGINES / "godot3" / f, proj / f)
    # The files as a user would drop them into a project folder (a subfolder: relative ext_resource path).
    written = sorted(p.name for p in atlas["dir"].iterdir() if p.is_file())
    for f in ("hero.png", "hero.tres", "hero.png.import"):
        if (atlas["dir"] / f).exists():
            shutil.copy(atlas["dir"] / f, proj / "atlas" / f)

    imp = run_godot(["--editor", "--quit"], proj)  # import step: creates .import/*.stex
    assert imp.returncode == 0, imp.stderr[-3000:]
    assert list((proj / ".import").glob("hero.png-*.stex")), f"import produced no texture\n{imp.stderr[-3000:]}"

    chk = run_godot(["-s", "res://check_frames.gd"], proj, SM_TRES="res://atlas/hero.tres")
    lines = [ln for ln in chk.stdout.splitlines() if ln.startswith("SMRESULT ")]
    assert chk.returncode == 0 and lines, f"rc={chk.returncode}\n{chk.stdout[-2000:]}\n{chk.stderr[-3000:]}"
    bad = GODOT_BAD.findall(chk.stderr)
    assert not bad, f"Godot reported {bad}:\n{chk.stderr[-3000:]}"
    res = json.loads(lines[-1][len("SMRESULT ") :])
    assert res["ok"], res
    assert res["version"].startswith("3."), res["version"]

    anims = res["animations"]
    assert sorted(anims) == sorted(atlas["animations"])
    for label, names in atlas["animations"].items():
        a = anims[label]
        assert a["speed"] > 0 and isinstance(a["loop"], bool), (label, a)
        assert len(a["frames"]) == len(names), (label, len(a["frames"]), names)
        for name, fr in zip(names, a["frames"]):
            assert fr["class"] == "AtlasTexture", (label, fr)
            assert tuple(int(v) for v in fr["region"]) == atlas["rects"][name], (label, name, fr["region"])
            assert fr["size"] == [S, S]
            assert fr["atlas"] == "res://atlas/hero.png" and fr["atlas_exists"], fr["atlas"]
            assert fr["atlas_class"] == "StreamTexture", fr["atlas_class"]  # the imported PNG, not a dummy
            w, h = atlas["result"].pages[0].size
            assert fr["atlas_size"] == [w, h]
            if "hero.png.import" in written:  # seeded import settings: no filtering, no mipmaps (pixel art)
                assert fr["atlas_flags"] & (1 | 4) == 0, f"texture flags {fr['atlas_flags']} (mipmaps=1, filter=4)"
            px = np.frombuffer(bytes.fromhex(fr["rgba_hex"]), np.uint8).reshape(S, S, 4)
            diffs = pixel_diffs(px, atlas["src"][name])
            assert not diffs, f"Godot {label}/{name}: {len(diffs)} px differ, e.g. {diffs[:3]}"


# ---------------------------------------------------------------------------------------------------------
# LÖVE 11
def love_game(tmp: Path, files: dict[str, Path]) -> Path:
    """A LÖVE game folder: tests/engines/love/{main,conf}.lua plus `files` (name -> source)."""
    require(love_bin(), "love not found (apt-get install love)")
    require(shutil.which("xvfb-run"), "xvfb-run not found (apt-get install xvfb xauth)")
    game = tmp / "game"
    game.mkdir()
    for f in ("main.lua", "conf.lua"):
        shutil.copy(ENGINES / "love" / f, game / f)
    for name, src in files.items():
        shutil.copy(src, game / name)
    return game


def run_love(game: Path, tmp: Path, module: str = "hero", load_only: bool = False) -> dict:
    """Run tests/engines/love/main.lua in `game` under xvfb-run; its lines parsed ({kind: [(name, pixels)]})."""
    env = {
        **os.environ,
        "SM_ATLAS_MODULE": module,
        "SM_LOAD_ONLY": "1" if load_only else "0",
        "XDG_DATA_HOME": str(tmp / "xdg"),
        "HOME": str(tmp),
    }
    proc = subprocess.run(
        [shutil.which("xvfb-run"), "-a", "-s", "-screen 0 640x480x24", love_bin(), str(game)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=game,
    )
    lines = [ln.split(" ") for ln in proc.stdout.splitlines() if ln.startswith("SM")]
    errors = [bytes.fromhex(ln[1]).decode("utf-8", "replace") for ln in lines if ln[0] == "SMERROR"]
    assert proc.returncode == 0 and not errors and lines and lines[-1] == ["SMDONE"], (
        f"rc={proc.returncode} {errors}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    out: dict = {"SMFRAME": [], "SMGRID": [], "SMSHIFT": []}
    for kind, *v in lines[:-1]:
        if kind == "SMINFO":
            out["version"], out["renderer"], out["gl"] = (bytes.fromhex(x).decode() for x in v)
        elif kind == "SMCOUNT":
            out["count"] = [int(x) for x in v]
        else:
            name, w, h = bytes.fromhex(v[1]).decode(), int(v[2]), int(v[3])
            out[kind].append((name, np.frombuffer(bytes.fromhex(v[4]), np.uint8).reshape(h, w, 4)))
    return out


def test_love11_draws_every_quad_of_the_lua_module_with_exact_pixels(atlas, tmp_path):
    # the pair as a user drops it into a game folder
    game = love_game(tmp_path, {f: atlas["dir"] / f for f in ("hero.png", "hero.lua")})
    res = run_love(game, tmp_path)
    assert res["version"].startswith("11."), res["version"]
    assert res["renderer"] == "OpenGL", (res["renderer"], res["gl"])
    for kind in ("SMFRAME", "SMGRID"):  # through atlas.quads(love), and through anim8's grid formula
        drawn = dict(res[kind])
        assert sorted(drawn) == sorted(atlas["src"]), (kind, sorted(drawn))
        bad = {n: pixel_diffs(px, atlas["src"][n])[:3] for n, px in drawn.items() if pixel_diffs(px, atlas["src"][n])}
        assert not bad, f"LÖVE {res['version']} {kind}: rendered pixels differ from the source sprites: {bad}"
    for name, px in res["SMSHIFT"]:  # negative control: a quad 1px off must not pass
        assert pixel_diffs(px, atlas["src"][name]), f"shifted quad of {name} went unnoticed"


def test_love11_requires_a_module_of_70000_frames(tmp_path):
    """LuaJIT refuses a function of more than 65536 constants: the module must not be one big table."""
    from scarlet_moon.exporters.base import AtlasTarget
    from scarlet_moon.exporters.fmt_love import Love
    from scarlet_moon.exporters.model import Frame, Page

    n, img = 70000, Image.new("RGBA", (4096, 4096))
    frames = [
        Frame(f"f_{i:05d}", 1 + 17 * (i % 240), 1 + 17 * (i // 240 % 240), 16, 16, 16, 16, label=f"l{i % 9}")
        for i in range(n)
    ]
    target = AtlasTarget(
        [Page(img, frames[:50000]), Page(img, frames[50000:])],
        ["big-0.png", "big-1.png"],
        "big.lua",
        [],
        {"app": "scarlet-moon", "version": "0"},
    )
    module = tmp_path / "big.lua"
    module.write_text(Love().render(target), "utf-8")
    res = run_love(love_game(tmp_path, {"big.lua": module}), tmp_path, module="big", load_only=True)
    assert res["count"] == [2, n, n, 9]
