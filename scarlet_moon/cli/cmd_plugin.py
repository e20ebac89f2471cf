"""`sm plugin aseprite`: build the Aseprite extension (a .aseprite-extension zip) from scarlet_moon/plugins/aseprite."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import click

from scarlet_moon.cli.console import echo
from scarlet_moon.outputs import writable_folder

# scarlet_moon/plugins/aseprite sits beside the cli package both in the repository (and so in an editable
# install) and in site-packages after a wheel install (pyproject ships it as package data).
ASEPRITE_DIR = Path(__file__).resolve().parents[1] / "plugins" / "aseprite"
# A fixed timestamp: the same sources give a byte-identical extension.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def aseprite_sources(src: Path = ASEPRITE_DIR) -> dict[str, bytes]:
    """The extension's files by archive name: package.json and every .lua file of `src`."""
    from scarlet_moon.errors import RunFailed

    manifest = src / "package.json"
    if not manifest.is_file():
        raise RunFailed(f"the Aseprite plugin sources are missing: no {manifest}")
    try:
        package = json.loads(manifest.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RunFailed(f"{manifest} is not valid JSON: {exc}") from None
    files = {"package.json": manifest.read_bytes()}
    files.update((p.name, p.read_bytes()) for p in sorted(src.glob("*.lua")))
    for script in package.get("contributes", {}).get("scripts", []):
        name = script["path"].removeprefix("./")
        if name not in files:
            raise RunFailed(f"{manifest} names {script['path']!r}, which is not in {src}")
    return files


def extension_bytes(files: dict[str, bytes]) -> bytes:
    """A deflated zip with the files at its root, package.json first."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files, key=lambda n: (n != "package.json", n)):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    return buf.getvalue()


def build_aseprite_extension(out_dir: str | Path, src: Path = ASEPRITE_DIR, force: bool = False) -> Path:
    """Write <out_dir>/<name>-<version>.aseprite-extension atomically (an existing one only with `force`,
    by the one output policy); returns its path."""
    from scarlet_moon.errors import BadInput
    from scarlet_moon.exporters.atomic import write_file
    from scarlet_moon.outputs import check_output

    out = Path(out_dir)
    if not out.exists():
        if not out.parent.is_dir():
            raise BadInput(f"--out {str(out_dir)!r}: its parent folder {str(out.parent)!r} does not exist")
        out.mkdir()
    if not out.is_dir():
        raise BadInput(f"--out {str(out_dir)!r} is not a folder")
    files = aseprite_sources(src)
    package = json.loads(files["package.json"])
    target = out / f"{package['name']}-{package['version']}.aseprite-extension"
    check_output(target, "--out", force=force)
    write_file(target, extension_bytes(files))
    return target


@click.group()
def plugin() -> None:
    """Editor plugins: build them for installation."""


@plugin.command()
@click.option(
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the .aseprite-extension file (created if its parent exists).",
)
@click.option("--force", is_flag=True, help="Replace the extension file if it exists.")
def aseprite(out_dir: str, force: bool) -> None:
    """Build the Aseprite extension; prints its path (open it with Aseprite to install it)."""
    writable_folder(out_dir, "--out")
    echo(build_aseprite_extension(out_dir, force=force))
