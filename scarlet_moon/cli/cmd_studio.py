"""`sm studio`: serve the local web studio (scarlet_moon.studio) with uvicorn and print its URL.

Loopback by default; any other --host needs a token (generated unless --token is given), printed in
the URL as notebook servers do. The web stack is imported inside the command: `sm --help` stays light.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import click

from scarlet_moon.cli.console import echo
from scarlet_moon.cli.studio_commands import sample_command, train_argv


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), bound before anything is printed."""
    from scarlet_moon.errors import BadInput

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BadInput(f"--host {host!r}: cannot resolve it ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise BadInput(f"--port {port} on {host!r} cannot be used: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def studio_url(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


@click.command()
@click.option(
    "--model",
    default=None,
    help="A .safetensors model or an exported .onnx offered first. "
    "[default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    default="sm-runs",
    show_default=True,
    help="Training runs offered as models and listed in the Runs panel.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback requires a token.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="0: any free port.")
@click.option(
    "--token", default=None, help="Token every request must carry. [default: none on loopback, else a generated one]"
)
@click.option("--no-browser", is_flag=True, help="Do not open the page in a web browser.")
def studio(model: str | None, runs_dir: str, host: str, port: int, token: str | None, no_browser: bool) -> None:
    """Serve a local web studio: generate sprites by eye, keep, vary, inpaint, export sheets."""
    from scarlet_moon.backends import read_card
    from scarlet_moon.errors import BadInput

    try:
        import uvicorn

        from scarlet_moon.studio import StudioConfig, create_app
    except ImportError as exc:
        raise BadInput(f"sm studio needs {exc.name or 'its web stack'}: pip install 'scarlet-moon[studio]'") from None
    from scarlet_moon.studio.security import is_loopback, new_token

    if token is not None and len(token) < 8:
        raise BadInput(f"--token: at least 8 characters, got {len(token)}")
    if model is not None:
        read_card(model)  # a bad --model fails here, exit 2, not on the first request
    if token is None and not is_loopback(host):
        token = new_token()
    sock = bind(host, port)
    url = studio_url(host, sock.getsockname()[1], token)
    app = create_app(
        StudioConfig(
            model=model,
            runs_dir=Path(runs_dir),
            token=token,
            host=host,
            command=sample_command,
            train_command=train_argv,
        )
    )
    echo(f"sm studio: {url}  (Ctrl-C to stop)")
    if not no_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    server.run(sockets=[sock])
