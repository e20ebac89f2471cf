"""Errors the CLI turns into one-line messages.

`BadInput` is a usage error (exit code 2): the user gave a value we cannot use.
`RunFailed` is a runtime failure (exit code 1): the input was fine but the work failed.
Messages name the bad value and what is allowed; no traceback is shown unless --debug.
"""

from __future__ import annotations


class ScarletError(Exception):
    """Base class of every error meant for the user."""

    exit_code = 1


class BadInput(ScarletError):
    """A value given by the user (path, label, option, file content) cannot be used."""

    exit_code = 2


class RunFailed(ScarletError):
    """The work itself failed (NaN loss, interrupted run, ...)."""

    exit_code = 1


class Interrupted(RunFailed):
    """The user pressed Ctrl-C; whatever could be saved was saved."""

    exit_code = 130
