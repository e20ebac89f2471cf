"""`sm studio`: a local web app to generate sprites by eye, keep, vary, inpaint and export them.

    app = create_app(StudioConfig(model=None, runs_dir=Path("sm-runs"), token=None, host="127.0.0.1"))

The server (Starlette) is here, without click; scarlet_moon/cli/cmd_studio.py parses the flags and runs uvicorn.
The page (static/) is plain HTML/CSS/JS shipped with the package: no build step, no CDN.
"""

from __future__ import annotations

from scarlet_moon.studio.app import StudioConfig, create_app

__all__ = ["StudioConfig", "create_app"]
