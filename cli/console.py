"""The shared rich console (stderr), logging set-up, and the one way text from a file or an argument
reaches the terminal: control characters escaped, markup never interpreted. Stdout is kept for
machine output."""

from __future__ import annotations

import logging
import re
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

console = Console(stderr=True)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # everything but tab that a terminal acts on
OUR_LOGGERS = ("scarlet_moon", "exporters", "cli")


def plain(value: object) -> str:
    """`value` as text a terminal shows as it is: ESC, CR, BEL... become visible escapes (\\x1b)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def echo(value: object) -> None:
    """One line of machine output on stdout, escaped (a label or path from a file may hold anything)."""
    click.echo(plain(value))


def text(value: object, style: str = "") -> Text:
    """A rich Text of `value`, escaped and never read as markup ([link=...] stays text)."""
    return Text(plain(value), style=style)


class _SafeHandler(RichHandler):
    def render_message(self, record: logging.LogRecord, message: str) -> Any:
        return super().render_message(record, plain(message))


def setup_logging(level: int) -> None:
    """Our loggers at `level`; everyone else's at WARNING (torch's INFO "FakeTensor cache stats" at exit,
    alembic's table creation... are not for users)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[_SafeHandler(console=console, show_path=False, show_time=False)], force=True)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)


def progress_disabled(quiet: bool = False) -> bool:
    """Progress bars only in a terminal, and never with -q."""
    return quiet or not console.is_terminal
