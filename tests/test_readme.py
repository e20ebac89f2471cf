"""The README's Python example runs as written (on the bundled model)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import HANG, ROOT


def test_readme_python_api_examples_run(tmp_path: Path, sm_env):
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    first, packer, second = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run(
        [sys.executable, "-c", first + packer], cwd=tmp_path, env=sm_env, capture_output=True, text=True, timeout=HANG
    )
    assert out.returncode == 0, out.stderr
    assert "heroes.png" in out.stdout and "heroes.json" in out.stdout and "heroes.tres" in out.stdout
    assert (tmp_path / "heroes.png").is_file() and (tmp_path / "packed.json").is_file()
    out = subprocess.run(
        [sys.executable, "-c", second], cwd=tmp_path, env=sm_env, capture_output=True, text=True, timeout=HANG
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(64, 16, 16, 4)"
