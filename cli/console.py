"""The shared rich console (stderr) and logging set-up. Stdout is kept for machine output."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

console = Console(stderr=True)


def setup_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
        force=True,
    )


def progress_disabled(quiet: bool = False) -> bool:
    """Progress bars only in a terminal, and never with -q."""
    return quiet or not console.is_terminal
