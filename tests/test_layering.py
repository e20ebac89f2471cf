"""Dependencies point one way: cli -> scarlet_moon, exporters; light paths import no torch."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_exporters_import_neither_torch_nor_scarlet_moon_nor_cli_libs():
    mods = modules_after("import exporters")
    assert "torch" not in mods
    assert not any(m == "scarlet_moon" or m.startswith("scarlet_moon.") for m in mods)
    assert "click" not in mods and "rich" not in mods


def test_scarlet_moon_imports_neither_click_nor_rich():
    mods = modules_after("import scarlet_moon, scarlet_moon.training.loop, scarlet_moon.training.runs, scarlet_moon.data.sprites, "
                         "scarlet_moon.diffusion.samplers, scarlet_moon.data.pixels, scarlet_moon.models.checkpoint")
    assert "click" not in mods and "rich" not in mods
    assert "torch" in mods  # sanity: the training modules really were imported


def test_sm_help_does_not_import_torch():
    mods = modules_after("from click.testing import CliRunner\nfrom cli.main import sm\n"
                         "r = CliRunner().invoke(sm, ['--help'])\nassert r.exit_code == 0, r.output")
    assert "torch" not in mods and "mlflow" not in mods


def test_only_cli_imports_click_or_rich_in_source():
    offenders = []
    for pkg in ("scarlet_moon", "exporters"):
        for path in (ROOT / pkg).rglob("*.py"):
            text = path.read_text()
            if any(s in text for s in ("import click", "from click", "import rich", "from rich")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_sm_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "cli.main", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("train", "data"):
        assert f"  {command} " in out.stdout
