"""The Aseprite extension (scarlet_moon/plugins/aseprite) and `sm plugin aseprite`.

The Lua runs under a plain lua5.4 with a fake of Aseprite's API (tests/lua/fake_aseprite.lua):
each scenario clicks the command, fills the dialog, and the fake prints what the plugin did
(the command lines it ran, the files it saved, the sprites, frames and cels it made).
lua5.4 missing: skipped locally, failed under CI (env CI set), like the engine tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import HANG, ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PLUGIN = ROOT / "scarlet_moon" / "plugins" / "aseprite"
LUA_TESTS = ROOT / "tests" / "lua"
STAMP = "scarlet-moon-19700101-000000-0042"  # the fake clock and random give this run name
CELS_NEW = [("CEL", "new1", "hero seed 7", str(i + 1), f"/out/hero_00{i}.png", "0,0", "txn") for i in range(3)]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def lua_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    msg = f"{name} not found (Debian: apt-get install lua5.4, or run .ci/install-engines)"
    if in_ci():
        pytest.fail(f"CI is set and {msg}", pytrace=False)
    pytest.skip(msg)


def run_plugin(
    scenario: str, work: Path, plugin_dir: Path = PLUGIN, *extra: str, env: dict[str, str] | None = None
) -> list[tuple[str, ...]]:
    work.mkdir(exist_ok=True)
    out = subprocess.run(
        [lua_tool("lua5.4"), str(LUA_TESTS / "run_plugin.lua"), str(plugin_dir), str(work), scenario, *extra],
        capture_output=True,
        text=True,
        timeout=HANG,
        env=env,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    lines = [tuple(line.split("\t")) for line in out.stdout.splitlines()]
    assert lines[-1] == ("DONE",), out.stdout
    return lines


def kind(lines, *kinds: str) -> list[tuple[str, ...]]:
    return [line for line in lines if line[0] in kinds]


def sample_commands(lines) -> list[str]:
    return [line[1] for line in kind(lines, "POPEN") if " sample " in line[1]]


def lua_files() -> list[Path]:
    return sorted(PLUGIN.glob("*.lua")) + sorted(LUA_TESTS.glob("*.lua"))


# ---- Lua syntax and the plain-Lua module -----------------------------------------------------
def test_lua_files_are_there():
    names = {p.name for p in lua_files()}
    assert {"scarlet_moon.lua", "sm_cli.lua", "fake_aseprite.lua", "run_plugin.lua", "test_sm_cli.lua"} <= names


@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_luac_parses(path: Path):
    # One file per call: Debian's luac5.4 5.4.4 aborts (double free) when given several.
    out = subprocess.run([lua_tool("luac5.4"), "-p", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_luac_rejects_broken_lua(tmp_path: Path):
    bad = tmp_path / "bad.lua"
    bad.write_text("function init(plugin)\n  plugin:newCommand{ id = 'x' \nend\n")
    out = subprocess.run([lua_tool("luac5.4"), "-p", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0


def test_sm_cli_module_in_plain_lua():
    out = subprocess.run(
        [lua_tool("lua5.4"), str(LUA_TESTS / "test_sm_cli.lua"), str(PLUGIN)],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAIL" not in out.stdout and out.stdout.strip().endswith(" passed, 0 failed")
    assert out.stdout.count("\nok ") >= 8


# ---- the plugin under the fake app: one command line per mode --------------------------------
def test_registers_one_command_in_edit_fx(tmp_path: Path):
    lines = run_plugin("cancel", tmp_path / "w")
    assert kind(lines, "COMMAND") == [
        ("COMMAND", "ScarletMoonGenerate", "Scarlet Moon: Generate Sprites...", "edit_fx")
    ]
    w = tmp_path / "w"
    # The dialog opens with the labels `sm labels --json` gave; cancelling runs nothing else.
    assert kind(lines, "POPEN") == [("POPEN", f"sm labels --json 2>{w}/scarlet-moon-labels-stderr.txt")]
    assert ("INIT", "label", "creature", "creature,item,hero,big boss") in lines
    assert ("INIT", "sampler", "(model default)", "(model default),ddpm,ddim,dpmpp-2m") in lines
    assert ("INIT", "strength", "75", "") in lines  # sm's own default strength for --init, in %
    assert kind(lines, "NEWSPRITE", "CEL", "SAVE", "ALERT") == []


def test_new_sprites(tmp_path: Path):
    w = tmp_path / "w"
    lines = run_plugin("new", w)
    assert sample_commands(lines) == [
        f"sm sample --json --out {w}/{STAMP} --label hero --count 4 --seed 7 --sampler ddim --steps 25 "
        f"--guidance 2.5 2>{w}/{STAMP}-stderr.txt"
    ]
    # Aseprite's json.decode is used (twice: labels, then the sample report), and the three
    # files of the report become three frames of one new 16x16 sprite, in one transaction.
    assert len(kind(lines, "JSON.decode")) == 2
    assert kind(lines, "LOAD") == [("LOAD", f"/out/hero_00{i}.png") for i in range(3)]
    assert kind(lines, "NEWSPRITE") == [("NEWSPRITE", "new1", "16x16", "mode=0")]
    assert kind(lines, "FRAME") == [("FRAME", "new1", "2"), ("FRAME", "new1", "3")]
    assert kind(lines, "CEL") == CELS_NEW
    assert kind(lines, "ALERT", "SAVE") == []
    assert sorted(os.listdir(w)) == []  # no work file left behind


def test_variations_of_the_cel_into_a_new_layer(tmp_path: Path):
    w = tmp_path / "w"
    lines = run_plugin("variations", w)
    init = f"{w}/{STAMP}-init.png"
    assert sample_commands(lines) == [
        f"'/opt/my tools/sm' sample --json --out {w}/{STAMP} --label hero --count 3 --seed 1 "
        f"--init {init} --strength 0.35 2>{w}/{STAMP}-stderr.txt"
    ]
    # The cel (8x8 at 2,3) is drawn into a sprite-sized image, saved with the sprite's palette.
    assert kind(lines, "SAVE") == [("SAVE", init, "16x16", "mode=0", "draws=cel@2,3", "white=0", "palette=true")]
    # Results: a new layer of the open sprite, one cel per frame from the active frame on,
    # adding frame 3 (the document has two).
    assert kind(lines, "LAYER", "FRAME", "NEWSPRITE") == [("LAYER", "doc"), ("FRAME", "doc", "3")]
    assert kind(lines, "CEL") == [
        ("CEL", "doc", "hero seed 7", str(i + 1), f"/out/hero_00{i}.png", "0,0", "txn") for i in range(3)
    ]
    assert not os.path.exists(init)


def test_variations_of_the_selection(tmp_path: Path):
    w = tmp_path / "w"
    lines = run_plugin("variations_sel", w)
    init = f"{w}/{STAMP}-init.png"
    assert sample_commands(lines) == [
        f"sm sample --json --out {w}/{STAMP} --label hero --count 8 --seed 0 --init {init} --strength 1 "
        f"2>{w}/{STAMP}-stderr.txt"
    ]
    # Only the selection (8x8 at 4,4) is sent, and the results go back at the selection's place.
    assert kind(lines, "SAVE") == [("SAVE", init, "8x8", "mode=0", "draws=cel@-2,-1", "white=0", "palette=true")]
    assert {line[5] for line in kind(lines, "CEL")} == {"4,4"}


def test_fill_the_selection(tmp_path: Path):
    w = tmp_path / "w"
    lines = run_plugin("fill", w)
    init, mask = f"{w}/{STAMP}-init.png", f"{w}/{STAMP}-mask.png"
    assert sample_commands(lines) == [
        f"sm sample --json --out {w}/{STAMP} --label item --count 8 --seed 0 --init {init} --mask {mask} "
        f"2>{w}/{STAMP}-stderr.txt"
    ]
    # The mask is sprite-sized, white exactly on the 8x8 selection.
    assert kind(lines, "SAVE") == [
        ("SAVE", init, "16x16", "mode=0", "draws=cel@2,3", "white=0", "palette=true"),
        ("SAVE", mask, "16x16", "mode=0", "draws=", "white=64", "palette=false"),
    ]
    assert kind(lines, "NEWSPRITE") == [("NEWSPRITE", "new2", "16x16", "mode=0")]  # new1: the open document
    assert len(kind(lines, "CEL")) == 3
    assert sorted(os.listdir(w)) == []


def test_tileable_with_a_model_and_a_label_with_a_space(tmp_path: Path):
    w = tmp_path / "w"
    lines = run_plugin("tileable", w)
    assert sample_commands(lines) == [
        f"sm sample --json --out {w}/{STAMP} --model 'my model.safetensors' --label 'big boss' --count 8 --seed 0 "
        f"--tileable 2>{w}/{STAMP}-stderr.txt"
    ]
    assert [line[2] for line in kind(lines, "CEL")] == ["big boss seed 7"] * 3


def test_use_the_sprites_palette(tmp_path: Path):
    from scarlet_moon.data.palettes import load_palette

    w = tmp_path / "w"
    lines = run_plugin("palette", w)
    pal = f"{w}/{STAMP}-palette.hex"
    assert sample_commands(lines) == [
        f"sm sample --json --out {w}/{STAMP} --label hero --count 8 --seed 0 --palette {pal} 2>{w}/{STAMP}-stderr.txt"
    ]
    # What `sm` found in the file: opaque colours once each (the transparent entry 0 is left out),
    # in a format sm's own palette reader takes.
    (content,) = [line[1] for line in kind(lines, "PALETTE")]
    assert content == "ff0000,00ff00,"
    hex_file = tmp_path / "p.hex"
    hex_file.write_text(content.replace(",", "\n"))
    assert load_palette(hex_file).tolist() == [[255, 0, 0], [0, 255, 0]]
    assert not os.path.exists(pal)


def test_indexed_sprite_gets_a_new_sprite_instead_of_a_layer(tmp_path: Path):
    lines = run_plugin("indexed_layer", tmp_path / "w")
    assert kind(lines, "ALERT") == [("ALERT", "This sprite is not RGB: the sprites will open as a new sprite.")]
    assert kind(lines, "LAYER") == [] and len(kind(lines, "NEWSPRITE")) == 1 and len(kind(lines, "CEL")) == 3


def test_sm_failure_shows_its_stderr(tmp_path: Path):
    w = tmp_path / "w"
    lines = run_plugin("fail", w)
    assert kind(lines, "ALERT") == [
        ("ALERT", "`sm` failed (exit 2): | Usage: sm sample | error: no such label 'dragon' | ")
    ]
    assert kind(lines, "NEWSPRITE", "CEL", "LOAD") == []
    assert sorted(os.listdir(w)) == []


def test_labels_failure_is_shown_and_reload_uses_the_new_path(tmp_path: Path):
    lines = run_plugin("fail_labels", tmp_path / "a")
    (status,) = [line for line in kind(lines, "INIT") if line[1] == "status"]
    assert status[2] == "labels: `sm` failed (exit 127): | sm: not found | "
    lines = run_plugin("reload", tmp_path / "b")
    assert [line[1].split(" 2>")[0] for line in kind(lines, "POPEN")] == [
        "sm labels --json",
        "/venv/bin/sm labels --json",
        f"/venv/bin/sm sample --json --out {tmp_path}/b/{STAMP} --label 'big boss' --count 8 --seed 0",
    ]
    assert ("MODIFY", "label", "creature,item,hero,big boss", "creature") in lines


@pytest.mark.parametrize(
    "scenario, alert",
    [
        ("nocel", "Select a cel first."),
        ("fill_nosel", "Select the area to fill first."),
        ("bad_count", "count must be at least 1, got 0"),
        ("bad_steps", "steps must be a whole number, got ten"),
    ],
)
def test_refusals_run_nothing(tmp_path: Path, scenario: str, alert: str):
    lines = run_plugin(scenario, tmp_path / "w")
    assert kind(lines, "ALERT") == [("ALERT", alert)]
    assert sample_commands(lines) == [] and kind(lines, "SAVE", "NEWSPRITE", "CEL") == []
    assert os.listdir(tmp_path / "w") == []  # checked before writing the init, mask or palette


def test_settings_are_kept_in_plugin_preferences(tmp_path: Path):
    lines = run_plugin("twice", tmp_path / "w")
    inits = kind(lines, "INIT")
    starts = [i for i, line in enumerate(inits) if line[1] == "sm"]
    assert len(starts) == 2
    second = inits[starts[1] :]  # the dialog opened a second time
    values = {line[1]: line[2] for line in second}
    assert values["sm"] == "/venv/bin/sm" and values["label"] == "item" and values["mode"] == "Tileable sprites"
    assert (float(values["count"]), float(values["seed"]), values["guidance"]) == (5, 9, "3")
    assert kind(lines, "POPEN")[-1][1].startswith("/venv/bin/sm labels --json")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["new", "variations", "fill", "tileable"])
def test_with_the_real_sm(tmp_path: Path, sm_env, mode: str):
    """The plugin drives this checkout's `sm` (bundled model, 2 sprites, 2 steps) in every mode."""
    from PIL import Image

    sm = tmp_path / "sm"  # a one-word program path, as a user would give in the dialog
    sm.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scarlet_moon.cli.main "$@"\n')
    sm.chmod(0o755)
    Image.new("RGBA", (16, 16), (200, 50, 50, 255)).save(tmp_path / "init.png")
    mask = Image.new("RGB", (16, 16), (0, 0, 0))
    mask.paste((255, 255, 255), (4, 4, 12, 12))
    mask.save(tmp_path / "mask.png")
    w = tmp_path / "w"
    lines = run_plugin(f"real_{mode}", w, PLUGIN, str(sm), str(tmp_path), env={**sm_env, "OMP_NUM_THREADS": "1"})
    assert kind(lines, "ALERT") == []
    # The labels come from the real `sm labels --json` once the dialog has the right path.
    assert ("MODIFY", "label", "creature,item,consumable,spell,terrain,hero", "creature") in lines
    (command,) = sample_commands(lines)
    want = {"new": " --seed 3 --steps 2 2>", "variations": " --init ", "fill": " --mask ", "tileable": " --tileable 2>"}
    assert command.startswith(f"{sm} sample --json --out {w}/{STAMP} --label hero --count 2") and want[mode] in command
    loaded = [line[1] for line in kind(lines, "LOAD")]
    assert loaded == [f"{w}/{STAMP}/hero_000.png", f"{w}/{STAMP}/hero_001.png"]
    for path in loaded:
        with Image.open(path) as im:
            assert im.size == (16, 16) and im.mode == "RGBA"
    assert [line[3:5] for line in kind(lines, "CEL")] == [("1", loaded[0]), ("2", loaded[1])]
    assert os.listdir(w) == [STAMP]  # the work files (init, mask, palette, stderr) are gone


@pytest.mark.slow
def test_with_the_real_sm_and_the_bundled_32x32_model(tmp_path: Path, sm_env):
    """'bundled-32' typed into the Model field: labels and 32x32 sprites come from the bundled 32x32 model."""
    from PIL import Image

    sm = tmp_path / "sm"
    sm.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scarlet_moon.cli.main "$@"\n')
    sm.chmod(0o755)
    w = tmp_path / "w"
    lines = run_plugin("real32_new", w, PLUGIN, str(sm), str(tmp_path), env={**sm_env, "OMP_NUM_THREADS": "1"})
    assert kind(lines, "ALERT") == []
    assert ("MODIFY", "label", "creature,item,consumable,spell,terrain,hero", "creature") in lines
    assert any(line[1].startswith(f"{sm} labels --json --model bundled-32") for line in kind(lines, "POPEN"))
    (command,) = sample_commands(lines)
    assert "--model bundled-32" in command
    loaded = [line[1] for line in kind(lines, "LOAD")]
    assert len(loaded) == 2
    for path in loaded:
        with Image.open(path) as im:
            assert im.size == (32, 32) and im.mode == "RGBA"


# ---- sm plugin aseprite ------------------------------------------------------------------------
def build(out: Path, *extra: str) -> Path:
    from scarlet_moon.cli.main import sm

    result = CliRunner().invoke(sm, ["plugin", "aseprite", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path.is_file() and path.parent == out
    return path


def test_extension_zip(tmp_path: Path):
    from scarlet_moon import __version__

    path = build(tmp_path / "ext")  # the folder is created
    assert path.name == f"scarlet-moon-{__version__}.aseprite-extension"
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["package.json", "scarlet_moon.lua", "sm_cli.lua"]
        for name in zf.namelist():
            assert zf.read(name) == (PLUGIN / name).read_bytes()
        package = json.loads(zf.read("package.json"))
    assert package["name"] == "scarlet-moon" and package["version"] == __version__
    assert package["displayName"] and package["description"] and package["author"]["name"]
    assert package["contributes"] == {"scripts": [{"path": "./scarlet_moon.lua"}]}
    first = path.read_bytes()
    assert build(tmp_path / "ext", "--force") == path and path.read_bytes() == first  # rebuilt in place, same bytes
    assert os.listdir(tmp_path / "ext") == [path.name]


def test_extension_from_the_zip_runs(tmp_path: Path):
    with zipfile.ZipFile(build(tmp_path)) as zf:
        zf.extractall(tmp_path / "installed")
    lines = run_plugin("new", tmp_path / "w", plugin_dir=tmp_path / "installed")
    assert kind(lines, "CEL") == CELS_NEW


def test_extension_out_must_be_usable(tmp_path: Path):
    from scarlet_moon.cli.main import sm

    result = CliRunner().invoke(sm, ["plugin", "aseprite", "--out", str(tmp_path / "no" / "such")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_second_build_replaces_the_extension_only_with_force(tmp_path: Path):
    from scarlet_moon.cli.main import sm

    path = build(tmp_path)
    path.write_bytes(b"the user's own file")
    again = CliRunner().invoke(sm, ["plugin", "aseprite", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "already exists; pass --force" in again.output
    assert path.read_bytes() == b"the user's own file"
    forced = CliRunner().invoke(sm, ["plugin", "aseprite", "--out", str(tmp_path), "--force"])
    assert forced.exit_code == 0 and zipfile.is_zipfile(path)


def test_wheel_ships_the_plugin_files():
    """pyproject packages scarlet_moon/plugins/aseprite (package.json and every .lua file) as package data."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == ["scarlet_moon*"]
    patterns = config["package-data"]["scarlet_moon"]
    for f in ["package.json", *(p.name for p in PLUGIN.glob("*.lua"))]:
        assert any(fnmatch(f"plugins/aseprite/{f}", pat) for pat in patterns), f


@pytest.mark.slow
def test_wheel_install_builds_the_extension(tmp_path: Path):
    """A regular (non-editable) install: the files land beside scarlet_moon/cli/ in site-packages."""
    pytest.importorskip("setuptools", reason="building a wheel without build isolation needs setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "scarlet_moon", src / "scarlet_moon", ignore=shutil.ignore_patterns("__pycache__", "bundled")
    )
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "whl"), str(src)],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        timeout=HANG,
    )
    (wheel,) = (tmp_path / "whl").glob("*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
        check=True,
        capture_output=True,
        timeout=HANG,
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import scarlet_moon.cli.cmd_plugin as c; print(c.__file__)\n"
            "from scarlet_moon.cli.main import main; main()",
            "plugin",
            "aseprite",
            "--out",
            str(tmp_path / "ext"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert out.returncode == 0, out.stderr
    module, path = out.stdout.split()
    assert module.startswith(str(tmp_path / "site"))
    # one top-level package of the project's own (no `cli`, `exporters` or `plugins` beside it)
    assert sorted(p.name for p in (tmp_path / "site").iterdir() if p.name != "bin") == [
        "scarlet_moon",
        "scarlet_moon-0.1.0.dist-info",
    ]
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["package.json", "scarlet_moon.lua", "sm_cli.lua"]
