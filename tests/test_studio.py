"""`sm studio`'s server (scarlet_moon.studio) through Starlette's TestClient: the token, Host and Origin
guard, generation through the library's loop (two requests at once), one-line 4xx errors after which
the server keeps serving, uploads refused from their header, the equivalent `sm sample` command, export."""

from __future__ import annotations

import io
import json
import shlex
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from scarlet_moon.studio import StudioConfig, create_app  # noqa: E402

BASE = "http://127.0.0.1:7860"
STEPS = 4


@pytest.fixture
def client(tiny_model: Path, tmp_path: Path):
    from scarlet_moon.cli.studio_commands import sample_command

    app = create_app(
        StudioConfig(model=str(tiny_model), runs_dir=tmp_path / "runs", token=None, command=sample_command)
    )
    with TestClient(app, base_url=BASE) as c:
        yield c


def wait(client: TestClient, job_id: str) -> dict:
    for _ in range(6000):  # a hang guard, not a speed check: each poll sleeps 0.1 s
        view = client.get(f"/api/jobs/{job_id}").json()
        if view["state"] not in ("queued", "running"):
            return view
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never finished: {view}")


def generate(client: TestClient, **settings) -> dict:
    body = {"model": "start", "steps": STEPS, **settings}
    res = client.post("/api/generate", json=body)
    assert res.status_code == 202, res.text
    return wait(client, res.json()["id"])


def pixels(sprite: dict) -> np.ndarray:
    data = sprite["png"].split(",", 1)[1]
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA"))


def assert_error(res, status: int, *words: str) -> None:
    assert res.status_code == status, res.text
    msg = res.json()["error"]
    assert "\n" not in msg and all(w in msg for w in words), msg


# ---------------------------------------------------------------------------------------------- safety
def test_non_loopback_needs_the_token_and_a_same_origin(tiny_model: Path, tmp_path: Path):
    app = create_app(StudioConfig(model=str(tiny_model), runs_dir=tmp_path, token="s3cret-token", host="0.0.0.0"))
    with TestClient(app, base_url="http://192.168.1.5:7860") as c:
        assert_error(c.get("/api/models"), 403, "token")
        assert_error(c.get("/api/models?token=wrong"), 403, "wrong token")
        first = c.get("/?token=s3cret-token")  # the printed URL: sets the cookie the page's requests carry
        assert first.status_code == 200 and "sm_studio_token" in first.headers["set-cookie"]
        assert c.get("/api/models").status_code == 200
        evil = c.post("/api/generate", json={"model": "start"}, headers={"Origin": "http://evil.example"})
        assert_error(evil, 403, "cross-origin", "evil.example")
        same = c.post(
            "/api/generate", json={"model": "start", "count": 0}, headers={"Origin": "http://192.168.1.5:7860"}
        )
        assert_error(same, 400, "count 0")  # past the guard: the request's own check answers
    with TestClient(app, base_url="http://192.168.1.5:7860") as fresh:  # no cookie: refused again
        assert_error(fresh.post("/api/generate", json={"model": "start"}), 403, "token")


def test_loopback_server_refuses_a_foreign_host(client: TestClient):
    assert_error(client.get("/api/models", headers={"Host": "attacker.example:7860"}), 403, "Host")
    assert client.get("/api/models").status_code == 200


def test_cli_generates_a_token_for_a_non_loopback_host(monkeypatch):
    import uvicorn
    from click.testing import CliRunner

    from scarlet_moon.cli.main import sm

    seen = {}

    def fake_run(self, sockets=None):  # no serving in a test: what the CLI built is enough
        seen["token"] = self.config.app.state.studio.config.token
        sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    res = CliRunner().invoke(sm, ["studio", "--host", "0.0.0.0", "--port", "0", "--no-browser"])
    assert res.exit_code == 0, res.output
    assert seen["token"] and f"?token={seen['token']}" in res.output
    res = CliRunner().invoke(sm, ["studio", "--port", "0", "--no-browser"])
    assert res.exit_code == 0 and "token" not in res.output
    bad = CliRunner().invoke(sm, ["studio", "--token", "short", "--no-browser"])
    assert bad.exit_code == 2 and "--token" in bad.output
    bad = CliRunner().invoke(sm, ["studio", "--model", "nope.safetensors", "--no-browser"])
    assert bad.exit_code == 2 and "nope.safetensors" in bad.output and "Traceback" not in bad.output
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = CliRunner().invoke(sm, ["studio", "--port", str(port), "--no-browser"])
    assert busy.exit_code == 2 and busy.output.startswith(f"error: --port {port} on '127.0.0.1' cannot be used")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # installed without the `studio` extra
    missing = CliRunner().invoke(sm, ["studio", "--no-browser"])
    assert missing.exit_code == 2 and "pip install 'scarlet-moon[studio]'" in missing.output


# ---------------------------------------------------------------------------------------------- generation
def test_two_generate_requests_at_once_both_match_the_library(client: TestClient, tiny_model: Path):
    import scarlet_moon

    asks = [
        {"label": "red", "count": 3, "seed": 5},
        {"label": "blue", "count": 2, "seed": 9, "guidance": 1.5, "tileable": True, "colors": 3},
    ]
    views: list[dict] = [{}, {}]

    def run(i: int) -> None:
        views[i] = generate(client, **asks[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ask, view in zip(asks, views):
        assert view["state"] == "done" and view["count"] == ask["count"], view
        want = scarlet_moon.generate(
            tiny_model,
            ask["label"],
            ask["count"],
            seed=ask["seed"],
            sampling=scarlet_moon.SamplingOptions(steps=STEPS, guidance=ask.get("guidance")),
            post=scarlet_moon.PostOptions(colors=ask.get("colors")),
            edit=scarlet_moon.EditOptions(tileable=ask.get("tileable", False)),
        )
        for sprite, img in zip(view["sprites"], want):
            assert np.array_equal(pixels(sprite), np.asarray(img)), ask
            assert sprite["settings"]["seed"] == ask["seed"] and sprite["label"] == ask["label"]


def test_jobs_of_a_model_run_one_at_a_time_and_a_full_queue_is_refused(client: TestClient, monkeypatch):
    from conftest import HANG

    from scarlet_moon.studio import jobs

    gate, real = threading.Event(), jobs.JobQueue._run

    def held(self, job):  # the first job holds the model's worker until the test lets it go
        gate.wait(HANG)
        real(self, job)

    monkeypatch.setattr(jobs.JobQueue, "_run", held)
    monkeypatch.setattr(jobs, "MAX_WAITING", 2)
    ask = {"model": "start", "label": "red", "count": 1, "steps": STEPS}
    first = client.post("/api/generate", json=ask).json()["id"]
    while client.get(f"/api/jobs/{first}").json()["state"] != "running":
        time.sleep(0.05)
    waiting = [client.post("/api/generate", json={**ask, "seed": s}).json() for s in (1, 2)]
    assert [w["state"] for w in waiting] == ["queued", "queued"] and [w["ahead"] for w in waiting] == [1, 2]
    assert_error(client.post("/api/generate", json=ask), 429, "2 jobs already wait", "'start'")
    gate.set()
    views = [wait(client, j) for j in [first] + [w["id"] for w in waiting]]
    assert [v["state"] for v in views] == ["done"] * 3 and all(v["ahead"] == 0 for v in views)
    assert generate(client, label="red", count=1)["state"] == "done"


def test_the_shown_command_reproduces_a_sprite_of_the_batch(client: TestClient, tmp_path: Path):
    from click.testing import CliRunner

    from scarlet_moon.cli.main import sm

    sprite = generate(client, label="green", count=5, seed=11)["sprites"][3]
    args = shlex.split(sprite["command"])
    assert args[:2] == ["sm", "sample"] and args[-2] == "--out" and args[-1].startswith("samples-")
    out = tmp_path / "cli"
    res = CliRunner().invoke(sm, args[1:-1] + [str(out)])
    assert res.exit_code == 0, res.output
    made = np.asarray(Image.open(out / Path(sprite["file"]).name).convert("RGBA"))
    assert sprite["file"] == f"{args[-1]}/green_003.png"
    assert np.array_equal(made, pixels(sprite))
    again = generate(client, label="green", count=5, seed=12)["sprites"][3]  # another job: its own folder
    assert again["file"] != sprite["file"] and again["file"].endswith("/green_003.png")


def test_without_the_cli_a_sprite_shows_the_python_call_that_makes_it(tiny_model: Path, tmp_path: Path):
    import scarlet_moon

    app = create_app(StudioConfig(model=str(tiny_model), runs_dir=tmp_path, token=None))
    with TestClient(app, base_url=BASE) as c:
        sprite = generate(c, label="blue", count=3, seed=6, guidance=1.5)["sprites"][2]
    call = sprite["command"]
    assert call.startswith("scarlet_moon.generate(model=") and call.endswith("[2]")
    assert np.array_equal(np.asarray(eval(call, {"scarlet_moon": scarlet_moon})), pixels(sprite))


def test_inpainting_keeps_the_pixels_outside_the_mask(client: TestClient):
    base = generate(client, label="red", count=1, seed=2)["sprites"][0]
    mask = np.zeros((8, 8), int)
    mask[2:6, 2:6] = 1
    view = generate(client, label="red", count=2, seed=3, init=base["id"], mask=mask.ravel().tolist())
    assert view["state"] == "done", view
    before = pixels(base)
    for s in view["sprites"]:
        after = pixels(s)
        assert np.array_equal(after[mask == 0], before[mask == 0])
        assert "--mask inputs/" in s["command"] and "--init inputs/" in s["command"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"label": "purple"}, ["purple"]),
        ({"count": 0}, ["count 0", "at least 1"]),
        ({"steps": "many"}, ["steps"]),
        ({"sampler": "euler"}, ["sampler", "euler"]),
        ({"model": "../etc"}, ["model", "available"]),
        ({"init": "nope"}, ["init", "nope"]),
        ({"mask": [1, 0]}, ["mask", "64 values"]),
        ({"colour": 3}, ["colour", "allowed"]),
    ],
)
def test_bad_generate_requests_get_a_one_line_400_and_the_next_works(client: TestClient, body, words):
    assert_error(client.post("/api/generate", json={"model": "start", **body}), 400, *words)
    assert generate(client, label="red", count=1)["state"] == "done"


def test_cancel_stops_a_running_job_at_its_next_step_and_a_queued_one_before_it_runs(client: TestClient):
    from conftest import HANG

    studio = client.app.state.studio
    started, gate = threading.Event(), threading.Event()

    class Held:
        """The model's denoiser, holding its first sampling step until the test lets it go."""

        def __init__(self, den):
            self.den = den

        def __getattr__(self, name):
            return getattr(self.den, name)

        def sample(self, labels, parts, sampling, edit, progress):
            def step(i, n):
                progress(i, n)
                started.set()
                gate.wait(HANG)

            return self.den.sample(labels, parts, sampling, edit, step)

    real = studio.shelf.denoiser(studio.shelf.ref("start"))
    studio.shelf._dens["start"] = Held(real)
    ask = {"model": "start", "label": "red", "count": 2, "steps": STEPS}
    running = client.post("/api/generate", json=ask).json()["id"]
    queued = client.post("/api/generate", json=ask).json()["id"]
    assert started.wait(HANG)
    assert client.post(f"/api/jobs/{queued}/cancel").json()["state"] == "cancelled"
    assert client.post(f"/api/jobs/{running}/cancel").status_code == 200
    gate.set()
    assert wait(client, running)["state"] == "cancelled" and wait(client, running)["sprites"] == []
    assert wait(client, queued)["state"] == "cancelled"
    studio.shelf._dens["start"] = real
    assert generate(client, label="red", count=1)["state"] == "done"
    assert client.get("/api/jobs/nope").status_code == 404


# ---------------------------------------------------------------------------------------------- uploads
def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 40)).save(buf, "PNG")
    return buf.getvalue()


def test_uploads_are_checked_before_decoding(client: TestClient, monkeypatch):
    import PIL.ImageFile

    decoded = []
    monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or None)
    huge = client.post("/api/palettes?name=huge.png", content=png(10_000, 10_000))
    assert_error(huge, 400, "huge.png", "10000x10000", "at most")
    assert decoded == []  # refused from the header alone
    monkeypatch.undo()
    assert_error(
        client.post("/api/palettes?name=notes.png", content=b"hello, not a PNG"),
        400,
        "notes.png",
        "not a readable image",
    )
    assert_error(client.post("/api/palettes?name=big.gpl", content=b"x" * (3 << 20)), 400, "bytes")
    assert_error(client.post("/api/palettes?name=bad.gpl", content=b"not a gimp palette"), 400, "GIMP Palette")
    ok = client.post("/api/palettes?name=two.hex", content=b"ff0000\n00ff00\n")
    assert ok.status_code == 200 and ok.json()["colors"] == ["#ff0000", "#00ff00"]
    view = generate(client, label="red", count=2, palette=ok.json()["id"])
    colours = {tuple(p[:3]) for s in view["sprites"] for p in pixels(s).reshape(-1, 4) if p[3]}
    assert colours <= {(255, 0, 0), (0, 255, 0)} and "--palette two.hex" in view["sprites"][0]["command"]


# ---------------------------------------------------------------------------------------------- export
def test_export_zip_holds_the_sheet_atlases_and_commands(client: TestClient):
    sprites = generate(client, label="blue", count=3, seed=4)["sprites"]
    body = {"sprites": [s["id"] for s in sprites], "name": "kept", "formats": ["json-hash", "godot3"], "padding": 2}
    res = client.post("/api/export", json=body)
    assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(res.content))
    names = set(z.namelist())
    assert {"kept.png", "kept.json", "kept.tres", "commands.txt", "sprites/blue_000.png"} <= names, names
    frames = json.loads(z.read("kept.json"))["frames"]
    assert sorted(frames) == ["blue_000", "blue_001", "blue_002"]
    assert_error(client.post("/api/export", json={**body, "formats": ["nope"]}), 400, "nope")
    assert_error(client.post("/api/export", json={**body, "padding": -1}), 400, "padding")
    assert_error(client.post("/api/export", json={**body, "name": "../x"}), 400, "name")
    assert client.post("/api/export", json=body).status_code == 200


# ---------------------------------------------------------------------------------------------- packaging
def test_sm_help_imports_no_web_stack_and_the_page_ships_as_package_data():
    import subprocess

    from conftest import ROOT

    code = (
        "from click.testing import CliRunner\nfrom scarlet_moon.cli.main import sm\nimport sys, json\n"
        "r = CliRunner().invoke(sm, ['studio', '--help'])\nassert r.exit_code == 0 and '--no-browser' in r.output\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    mods = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not mods & {"starlette", "uvicorn", "torch", "mlflow"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"studio/static/*"' in pyproject
    static = ROOT / "scarlet_moon" / "studio" / "static"
    assert {p.name for p in static.iterdir()} >= {"index.html", "studio.js", "edit.js", "runs.js", "studio.css"}
    page = (static / "index.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # offline: no CDN


def test_the_page_and_its_scripts_are_served(client: TestClient):
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="edit-mask">' in page.text
    for name in ("studio.js", "edit.js", "runs.js", "studio.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    models = client.get("/api/models").json()["models"]
    assert models[0]["id"] == "start" and models[0]["labels"] == ["red", "green", "blue"]
    assert "json-hash" in [f["name"] for f in client.get("/api/formats").json()["formats"]]


def test_readme_shows_the_studio_screenshot_and_command():
    from conftest import ROOT

    text = (ROOT / "README.md").read_text()
    section = text.split("## The studio: `sm studio`", 1)[1].split("\n## ", 1)[0]
    assert "](docs/studio.png)" in section and "    sm studio" in section
    with Image.open(ROOT / "docs" / "studio.png") as im:
        assert im.format == "PNG" and im.size[0] >= 800


def test_commands_take_their_flags_from_the_click_commands():
    from scarlet_moon.cli.cmd_sample import sample
    from scarlet_moon.cli.cmd_train import train
    from scarlet_moon.cli.studio_commands import argv_of, train_argv

    args = argv_of(
        sample,
        {
            "model": None,
            "label": "hero",
            "seed": 3,
            "guidance": 2.0,
            "snap_palette": False,
            "colors": 6,
            "init": "inputs/j1_init.png",
            "strength": 0.5,
            "tileable": True,
            "out": "samples",
        },
    )
    assert args == [
        "--label",
        "hero",
        "--seed",
        "3",
        "--guidance",
        "2.0",
        "--no-snap",
        "--colors",
        "6",
        "--init",
        "inputs/j1_init.png",
        "--strength",
        "0.5",
        "--tileable",
        "--out",
        "samples",
    ]
    assert argv_of(sample, {"snap_palette": True, "tileable": False}) == []
    argv = train_argv({"data": "d", "init_from": "bundled", "time": "5m", "runs_dir": "r", "name": "n"})
    assert argv[-10:] == ["--data", "d", "--init-from", "bundled", "--time", "5m", "--runs-dir", "r", "--name", "n"]
    assert train.name == "train"


def test_an_edited_sprite_is_made_again_from_the_exported_zip(client: TestClient, tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    from scarlet_moon.cli.main import sm

    base = generate(client, label="red", count=1, seed=2)["sprites"][0]
    mask = np.zeros((8, 8), int)
    mask[1:5, 3:7] = 1
    edited = generate(client, label="red", count=3, seed=8, init=base["id"], mask=mask.ravel().tolist(), strength=0.9)[
        "sprites"
    ][1]
    res = client.post("/api/export", json={"sprites": [base["id"], edited["id"]], "name": "set"})
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(res.content)).extractall(folder)
    text = (folder / "commands.txt").read_text()
    assert f"# red_001: written as {edited['file']}\n{edited['command']}\n" in text
    monkeypatch.chdir(folder)  # the command names inputs/<job>_init.png and _mask.png, as the zip holds them
    result = CliRunner().invoke(sm, shlex.split(edited["command"])[1:])
    assert result.exit_code == 0, result.output
    made = np.asarray(Image.open(folder / edited["file"]).convert("RGBA"))
    assert np.array_equal(made, pixels(edited))
    assert np.array_equal(made, np.asarray(Image.open(folder / "sprites" / "red_001.png").convert("RGBA")))


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/api/generate", '{"label": ' + "[" * 5000 + "]" * 5000 + "}", "nests deeper than 16 levels"),
        ("/api/generate", '{"label": ' + "[" * 20 + "]" * 20 + "}", "nests deeper than 16 levels"),
        ("/api/export", '{"sprites": [[1], {"a": 2}]}', "expected a list of sprite ids"),
        ("/api/export", '{"sprites": ["nope"], "formats": []}', "none chosen; tick at least one atlas format"),
        ("/api/generate", '{"label": "red", "count": null}', "count is empty"),
    ],
)
def test_malformed_requests_are_400s_that_say_why_never_500s(client: TestClient, path: str, body: str, message: str):
    res = client.post(path, content=body, headers={"content-type": "application/json"})
    assert res.status_code == 400 and message in res.json()["error"], (res.status_code, res.text[:300])
