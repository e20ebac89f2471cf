"""The shared rich console (stderr), logging set-up, and the one way text from a file or an argument
reaches the terminal: control characters escaped, markup never interpreted. Stdout is kept for
machine output.

rich is imported only when something is drawn in a terminal (a progress bar, a table, colour) or a
log record is emitted: a plugin or UI calling `sm sample --count 1` with stderr piped does not pay
for it (~80 ms of imports; interactive latency, bench/fast_sheet.py). Piped, rich would print the
same plain lines.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # everything but tab that a terminal acts on
OUR_LOGGERS = ("scarlet_moon",)
# environment variables with which rich treats a pipe as a terminal (or colours it)
_RICH_TERMINAL_ENV = ("FORCE_TERMINAL", "TTY_COMPATIBLE", "FORCE_COLOR", "JUPYTER_COLUMNS", "JUPYTER_LINES")


_real_console: list[Console] = []  # the one rich Console, once made


def rich_console() -> Console:
    """The rich Console on stderr (made, and rich imported, on the first call)."""
    if not _real_console:
        from rich.console import Console

        _real_console.append(Console(stderr=True))
    return _real_console[0]


class _LazyConsole:
    """Stands for rich_console(): `console.print(...)` makes it on first use."""

    def __getattr__(self, name: str) -> Any:
        return getattr(rich_console(), name)


console: Any = _LazyConsole()


def plain(value: object) -> str:
    """`value` as text a terminal shows as it is: ESC, CR, BEL... become visible escapes (\\x1b)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def echo(value: object) -> None:
    """One line of machine output on stdout, escaped (a label or path from a file may hold anything)."""
    click.echo(plain(value))


def text(value: object, style: str = "") -> Text:
    """A rich Text of `value`, escaped and never read as markup ([link=...] stays text)."""
    from rich.text import Text

    return Text(plain(value), style=style)


def note(value: object) -> None:
    """One line of information on stderr, escaped: through rich in a terminal, plain when piped."""
    if maybe_terminal():
        console.print(text(value))
    else:
        click.echo(plain(value), err=True)


def maybe_terminal() -> bool:
    """False when stderr is surely not a terminal for rich (piped, no FORCE_TERMINAL...): then rich,
    asked, says the same, and need not be imported."""
    if any(k in os.environ for k in _RICH_TERMINAL_ENV):
        return bool(console.is_terminal)
    try:
        return sys.stderr.isatty() and bool(console.is_terminal)
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


class _LazyRichHandler(logging.Handler):
    """A rich.logging.RichHandler (escaped messages, no time or path column), made on the first record."""

    def __init__(self) -> None:
        super().__init__()
        self._real: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._real is None:
            from rich.logging import RichHandler

            class SafeHandler(RichHandler):
                def render_message(self, record: logging.LogRecord, message: str) -> Any:
                    return super().render_message(record, plain(message))

            self._real = SafeHandler(console=rich_console(), show_path=False, show_time=False)
            self._real.setFormatter(self.formatter)
        self._real.emit(record)


def setup_logging(level: int) -> None:
    """Our loggers at `level`; everyone else's at WARNING (torch's INFO "FakeTensor cache stats" at exit,
    alembic's table creation... are not for users)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[_LazyRichHandler()], force=True)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)


def progress_disabled(quiet: bool = False) -> bool:
    """Progress bars only in a terminal, and never with -q."""
    return quiet or not maybe_terminal()
