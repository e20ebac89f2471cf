"""The studio's HTTP API and page (Starlette). Every error a user can cause is a 4xx JSON
{"error": "<one line>"} and the server keeps serving.

    GET  /                       the page (static/index.html)
    GET  /api/models             models on offer, with labels and defaults
    GET  /api/formats            installed atlas formats
    POST /api/generate           settings (studio.settings) -> 202 {"id": job}; queued per model
    POST /api/anim               an animation model's characters as GIFs (studio.anim)
    GET  /api/jobs/{id}?since=N  state, progress, sprites from the N-th on
    POST /api/jobs/{id}/cancel
    POST /api/palettes?name=F    the raw file -> {"id", "name", "colors"}
    POST /api/export             kept sprite ids + packing options -> a zip (studio.download)
    GET  /api/runs               training runs of the runs folder (studio.runs), live ones too
    GET  /api/runs/{name}/grid.png   a run's latest sample grid
    POST /api/train              sprites + model + time -> a fine-tuning run (studio.training)
    POST /api/runs/{name}/stop   Ctrl-C to a run this studio started
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from scarlet_moon.errors import BadInput, ScarletError
from scarlet_moon.models.card import attribution_meta
from scarlet_moon.studio.anim import AnimView
from scarlet_moon.studio.jobs import Busy, Job, JobQueue
from scarlet_moon.studio.models import ModelShelf
from scarlet_moon.studio.security import Guard
from scarlet_moon.studio.settings import file_of, input_files, parse_generate, python_call, sample_params, settings_of
from scarlet_moon.studio.store import Palette, SpriteRecord, Store, new_id
from scarlet_moon.studio.training import MAX_TOTAL_BYTES, Trainer
from scarlet_moon.studio.uploads import MAX_UPLOAD_BYTES, read_palette_upload, upload_name

STATIC = Path(__file__).resolve().parent / "static"
MAX_JSON_BYTES = 1 << 20


@dataclass(frozen=True)
class StudioConfig:
    model: str | None  # the --model given at start (None: the bundled model)
    runs_dir: Path  # where training runs are found
    token: str | None  # required on every request when set
    host: str = "127.0.0.1"  # the bound address: a loopback one checks the Host header
    # (generate's parameters, sprite index) -> the line shown to make a sprite again; None: the Python call
    command: Callable[[dict[str, Any], int], str] | None = None
    # train's parameters -> the argv of a training process; None: the studio starts no training
    train_command: Callable[[dict[str, Any]], list[str]] | None = None


class NotFound(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past `limit` bytes as it arrives (Content-Length first)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadInput(f"request body of {int(declared):,} bytes: at most {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadInput(f"request body over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


MAX_JSON_DEPTH = 16  # the deepest request the API takes is 3 levels ({"mask": [[...]]}): room to spare


async def read_json(request: Request, limit: int = MAX_JSON_BYTES) -> Any:
    """The body as JSON, bounded in bytes and nesting (a 400 for either, never a RecursionError's 500)."""
    try:
        body = json.loads(await read_body(request, limit))
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the request body is not JSON") from None
    except RecursionError:
        raise BadInput(f"the request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise BadInput(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar: 0), counted without recursion."""
    depth, level = 0, [value]
    while level:
        nested = [v for x in level if isinstance(x, (list, dict)) for v in (x.values() if isinstance(x, dict) else x)]
        if not any(isinstance(x, (list, dict)) for x in level):
            break
        depth, level = depth + 1, nested
    return depth


def png_data_url(rgba: np.ndarray) -> str:
    from PIL import Image

    from scarlet_moon.data.images import png_bytes

    return "data:image/png;base64," + base64.b64encode(png_bytes(Image.fromarray(rgba, "RGBA"))).decode()


class Studio:
    """The handlers, over one shelf of models, one store and one job queue."""

    def __init__(self, config: StudioConfig) -> None:
        self.config = config
        self.shelf = ModelShelf(config.model, config.runs_dir)
        self.store = Store()
        self.jobs = JobQueue(self.shelf)
        self.anim_view = AnimView(self.shelf)
        self.trainer = Trainer(config.runs_dir, config.train_command)

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def models(self, request: Request) -> Response:
        return JSONResponse({"models": [self.shelf.describe(r) for r in self.shelf.refs()]})

    async def formats(self, request: Request) -> Response:
        from scarlet_moon.exporters import available_formats

        return JSONResponse(
            {"formats": [{"name": n, "description": f.description} for n, f in available_formats().items()]}
        )

    async def generate(self, request: Request) -> Response:
        spec = parse_generate(await read_json(request), self.shelf, self.store)
        job = self.jobs.submit(spec, self.publish)
        return JSONResponse({**job.view(), "ahead": self.jobs.ahead(job)}, status_code=202)

    async def anim(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        body = await read_json(request)
        return JSONResponse(await run_in_threadpool(self.anim_view.draw, body))

    def publish(self, job: Job, start: int, images: np.ndarray) -> list[dict[str, Any]]:
        """Sprites of a finished chunk -> store records + their JSON for the page."""
        from scarlet_moon.pipelines.sprites import frame_common, frames

        spec, out = job.spec, []
        params, render = sample_params(spec, job.id), self.config.command or python_call
        init_file, mask_file = input_files(job.id)
        settings = settings_of(spec)
        sources = {
            "init": init_file if spec.init is not None else None,
            "mask": mask_file if spec.mask is not None else None,
        }
        made = frames(spec.card, spec.req, images, frame_common(spec.card, spec.req, sources), first=start)
        for i, (rgba, frame) in enumerate(zip(images, made)):
            index = start + i
            command = render(params, index)
            # frame: the atlas meta `sm sheet` gives this sprite; labels: its model's, for the frame's name
            rec = SpriteRecord(
                f"{job.id}-{index}",
                rgba,
                spec.label,
                {**settings, "index": index},
                command,
                file_of(spec, index, job.id),
                spec.init,
                spec.mask,
                {
                    "init_file": init_file,
                    "mask_file": mask_file,
                    "frame": frame.meta,
                    "label_names": tuple(spec.card.label_names),
                    **attribution_meta(spec.card),
                },
            )
            self.store.sprites.add(rec.id, rec)
            out.append(
                {
                    "id": rec.id,
                    "png": png_data_url(rgba),
                    "label": rec.label,
                    "index": index,
                    "settings": rec.settings,
                    "command": command,
                    "file": rec.file,
                }
            )
        return out

    def job(self, request: Request) -> Job:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise NotFound(f"no job {request.path_params['job'][:40]!r}")
        return job

    async def job_view(self, request: Request) -> Response:
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            raise BadInput(f"since {since[:20]!r}: expected a whole number >= 0")
        job = self.job(request)
        return JSONResponse({**job.view(int(since)), "ahead": self.jobs.ahead(job)})

    async def cancel(self, request: Request) -> Response:
        job = self.job(request)
        self.jobs.cancel(job)
        return JSONResponse(job.view(len(job.sprites)))

    async def palette(self, request: Request) -> Response:
        name = upload_name(request.query_params.get("name"))
        colors = read_palette_upload(name, await read_body(request, MAX_UPLOAD_BYTES))
        pal = Palette(new_id("p"), name, colors)
        self.store.palettes.add(pal.id, pal)
        return JSONResponse({"id": pal.id, "name": name, "colors": ["#%02x%02x%02x" % tuple(c) for c in colors]})

    async def export(self, request: Request) -> Response:
        from scarlet_moon.studio.download import export_zip

        name, data = export_zip(await read_json(request), self.store)
        return Response(
            data, media_type="application/zip", headers={"content-disposition": f'attachment; filename="{name}"'}
        )

    async def runs(self, request: Request) -> Response:
        from scarlet_moon.studio.runs import list_runs

        live = self.trainer.views()
        runs = [{**r, **live.pop(r["name"], {})} for r in list_runs(self.config.runs_dir)]
        runs += [
            {"name": n, "model": False, "grid_step": None, "status": None, "loss": [], **v} for n, v in live.items()
        ]
        return JSONResponse(
            {"runs": runs, "runs_dir": str(self.config.runs_dir), "can_train": self.config.train_command is not None}
        )

    async def train(self, request: Request) -> Response:
        body = await read_json(request, limit=MAX_TOTAL_BYTES * 4 // 3 + MAX_JSON_BYTES)  # base64 + the rest
        return JSONResponse(self.trainer.start(body, self.shelf).view(), status_code=202)

    async def stop(self, request: Request) -> Response:
        return JSONResponse(self.trainer.stop(request.path_params["name"]).view())

    async def run_grid(self, request: Request) -> Response:
        from scarlet_moon.studio.runs import latest_grid

        path = latest_grid(self.config.runs_dir, request.path_params["name"])
        if path is None:
            raise NotFound("no sample grid for this run")
        return FileResponse(path, media_type="image/png")


async def _bad_input(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": " ".join(str(exc).split("\n"))}, status_code=400)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=404)


async def _busy(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=429)


async def _failed(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": " ".join(str(exc).split("\n"))}, status_code=500)


def create_app(config: StudioConfig) -> Starlette:
    """The studio as an ASGI app (behind the token/Host/Origin guard); `app.state.studio` holds its state."""
    s = Studio(config)
    routes = [
        Route("/", s.page),
        Route("/api/models", s.models),
        Route("/api/formats", s.formats),
        Route("/api/generate", s.generate, methods=["POST"]),
        Route("/api/anim", s.anim, methods=["POST"]),
        Route("/api/jobs/{job}", s.job_view),
        Route("/api/jobs/{job}/cancel", s.cancel, methods=["POST"]),
        Route("/api/palettes", s.palette, methods=["POST"]),
        Route("/api/export", s.export, methods=["POST"]),
        Route("/api/runs", s.runs),
        Route("/api/runs/{name}/grid.png", s.run_grid),
        Route("/api/train", s.train, methods=["POST"]),
        Route("/api/runs/{name}/stop", s.stop, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        s.jobs.close()
        s.trainer.close()

    app = Starlette(
        routes=routes,
        exception_handlers={BadInput: _bad_input, NotFound: _not_found, Busy: _busy, ScarletError: _failed},
        lifespan=lifespan,
    )
    app.state.studio = s
    app.add_middleware(Guard, token=config.token, host=config.host)
    return app
