"""How a long library call reports while it works: a note line and progress bars, through one object.

    with report.bar("sampling") as update:   # update(done, total), done may be fractional
        ...
    report.note("backend: onnxruntime CPU")

The library's default is silent; `sm` passes one that draws rich bars on stderr (scarlet_moon/cli/progress.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

Update = Callable[[float, int], None]  # (done, total)


class Report:
    """Silent: notes dropped, bars that draw nothing. Subclass and override both to show them."""

    def note(self, text: str) -> None:
        """One line about the work (the backend that runs, what was skipped)."""

    @contextmanager
    def bar(self, what: str) -> Iterator[Update]:
        """A progress bar named `what` for the length of the block."""
        yield lambda done, total: None


SILENT = Report()
