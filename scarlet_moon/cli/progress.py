"""rich progress bars on stderr: one for sampling (with an ETA over every chunk), and the others'."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from scarlet_moon.cli.console import console, note, progress_disabled
from scarlet_moon.progress import Report


@contextmanager
def bar(quiet: bool, what: str = "sampling") -> Iterator[Callable[[float, int], None]]:
    """update(done, total): a bar with done/total and the time remaining; nothing when quiet or piped
    (and then rich is not imported)."""
    if progress_disabled(quiet):
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=progress_disabled(quiet),
    ) as progress:
        task = progress.add_task(what, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@contextmanager
def bars(quiet: bool) -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    """updater(name) -> update(done, total): one bar per name, made on its first update (nothing when
    quiet or piped)."""
    if progress_disabled(quiet):
        yield lambda name: lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=progress_disabled(quiet),
    ) as progress:
        tasks: dict[str, Any] = {}

        def updater(name: str) -> Callable[[int, int], None]:
            def update(done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=total)
                progress.update(tasks[name], completed=done, total=total)

            return update

        yield updater


class CliReport(Report):
    """scarlet_moon.progress.Report for the terminal: notes on stderr, rich bars (nothing when quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def note(self, text: str) -> None:
        if not self.quiet:
            note(text)

    def bar(self, what: str) -> Any:
        return bar(self.quiet, what)
