"""Errors meant for the user, and how they name the parameter at fault.

`BadInput` is a usage error (exit code 2 in the CLI): a value we cannot use.
`RunFailed` is a runtime failure (exit code 1): the input was fine but the work failed.
`Interrupted` is Ctrl-C (exit code 130) after whatever could be saved was saved.

A message names the library's parameter, never a command-line flag: write the parameter with
`arg("count")` inside the message. `str(error)` shows the plain name (`count must be at least 1,
got 0`); the CLI shows the flag of that parameter instead (`--count must be ...`), as click's
BadParameter does, through `error.render(flag_of)`.
"""

from __future__ import annotations

import re
from typing import Callable

_MARK = "\x1f"  # a control character no user value carries (values are printed with repr())
_ARG = re.compile(f"{_MARK}([A-Za-z_][A-Za-z0-9_]*){_MARK}")


def arg(name: str) -> str:
    """A parameter's name inside an error message (see the module docstring)."""
    return f"{_MARK}{name}{_MARK}"


class ScarletError(Exception):
    """Base class of every error meant for the user."""

    exit_code = 1

    def render(self, name_of: Callable[[str], str] = lambda name: name) -> str:
        """The message with each parameter written as `name_of(name)`."""
        text = str(self.args[0]) if self.args else ""
        return _ARG.sub(lambda m: name_of(m.group(1)), text)

    @property
    def params(self) -> list[str]:
        """The parameters the message names, in order."""
        return _ARG.findall(str(self.args[0])) if self.args else []

    def __str__(self) -> str:
        return self.render()


class BadInput(ScarletError):
    """A value given by the user (path, label, option, file content) cannot be used."""

    exit_code = 2


class RunFailed(ScarletError):
    """The work itself failed (NaN loss, interrupted run, ...)."""

    exit_code = 1


class Interrupted(RunFailed):
    """Ctrl-C (or SIGTERM, SIGHUP: `signum`) stopped the work; whatever could be saved was saved
    (`run_dir`: the run to resume). Exit code 128 + the signal's number: 130 for Ctrl-C."""

    exit_code = 130

    def __init__(self, message: str, *, run_dir: object = None, signum: int = 2):
        super().__init__(message)
        self.run_dir, self.signum = run_dir, signum
        self.exit_code = 128 + signum
