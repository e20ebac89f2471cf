"""The use cases live in the library (scarlet_moon.pipelines): one request through `sm sheet`, the Python
API and the studio gives the same bytes, and `sm sheet`'s path from command to files stays there."""

from __future__ import annotations

import io
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

import scarlet_moon
from scarlet_moon.cli.main import sm

FILES = ("sprites.png", "sprites.json", "sprites.tres", "sprites.atlas")
FORMATS = ("json-hash", "godot3", "libgdx")


def studio_export(tmp_path: Path) -> dict[str, bytes]:
    """The request made in the studio (the bundled model), every sprite kept in order, exported."""
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from scarlet_moon.studio import StudioConfig, create_app

    app = create_app(StudioConfig(model=None, runs_dir=tmp_path / "runs", token=None))
    with TestClient(app, base_url="http://127.0.0.1:7860") as c:
        job = c.post("/api/generate", json={"model": "bundled", "label": 5, "count": 8, "seed": 3}).json()["id"]
        for _ in range(3000):  # a hang guard, not a speed check
            view = c.get(f"/api/jobs/{job}").json()
            if view["state"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert view["state"] == "done", view
        res = c.post(
            "/api/export",
            json={"sprites": [s["id"] for s in view["sprites"]], "name": "sprites", "formats": list(FORMATS)},
        )
    assert res.status_code == 200, res.text
    z = zipfile.ZipFile(io.BytesIO(res.content))
    return {name: z.read(name) for name in FILES}


def test_one_request_through_the_cli_the_api_and_the_studio_gives_the_same_sprites_and_atlases(tmp_path: Path):
    (tmp_path / "cli").mkdir()
    res = CliRunner().invoke(
        sm,
        [
            "sheet",
            "--label",
            "5",
            "--count",
            "8",
            "--seed",
            "3",
            "--format",
            ",".join(FORMATS),
            "--out",
            str(tmp_path / "cli" / "sprites.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    (tmp_path / "api").mkdir()
    scarlet_moon.sheet(label=5, count=8, seed=3, formats=FORMATS, out=tmp_path / "api" / "sprites.png")
    cli = {name: (tmp_path / "cli" / name).read_bytes() for name in FILES}
    api = {name: (tmp_path / "api" / name).read_bytes() for name in FILES}
    studio = studio_export(tmp_path)
    for name in FILES:
        assert cli[name] == api[name] == studio[name], name
    assert b'"hero_007"' in cli["sprites.json"] and b'"seed": 3' in cli["sprites.json"]


def test_sm_sheet_calls_the_library_once_and_the_work_never_comes_back_to_cli(tmp_path: Path, monkeypatch):
    """From the command's one call of pipelines.sheet.make_sheet to its return, no code of scarlet_moon/cli/ runs but the
    terminal output the command set up: its progress report (scarlet_moon/cli/progress.py) and log handler (scarlet_moon/cli/console.py)."""
    from scarlet_moon.pipelines import sheet as pipeline

    calls, inside, seen = [], [False], set()
    real = pipeline.make_sheet

    def watched(*args, **kwargs):
        calls.append(1)
        inside[0] = True
        try:
            return real(*args, **kwargs)
        finally:
            inside[0] = False

    def profile(frame, event, arg):
        if inside[0] and event == "call":
            seen.add(frame.f_code.co_filename)

    monkeypatch.setattr(pipeline, "make_sheet", watched)
    sys.setprofile(profile)
    try:
        res = CliRunner().invoke(sm, ["sheet", "--count", "4", "--out", str(tmp_path / "h.png")])
    finally:
        sys.setprofile(None)
    assert res.exit_code == 0, res.output
    cli_dir = str(ROOT / "scarlet_moon" / "cli")
    back = sorted({Path(f).name for f in seen if f.startswith(cli_dir)})
    assert calls == [1] and set(back) <= {"progress.py", "console.py"}, back
    assert any(f.endswith(str(Path("scarlet_moon", "pipelines", "sheet.py"))) for f in seen)
