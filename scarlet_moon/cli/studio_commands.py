"""The command lines `sm studio` shows and runs, built from library parameters and the flags of the real
click commands (so they cannot drift from `sm sample --help` / `sm train --help`)."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click


def argv_of(command: click.Command, params: dict[str, Any]) -> list[str]:
    """`params` (library names: `label`, `snap_palette`, `init_from`...) as arguments of `command`.
    None is left out; a boolean flag is written only when it differs from its default."""
    options: dict[str, click.Option] = {}
    for p in command.params:
        if isinstance(p, click.Option):
            options.setdefault(p.name or "", p)
            options.setdefault(max(p.opts, key=len).lstrip("-").replace("-", "_"), p)
    out: list[str] = []
    for name, value in params.items():
        if value is None:
            continue
        opt = options[name]
        if opt.is_flag:
            default = opt.default if isinstance(opt.default, bool) else False  # click may hold a sentinel
            if bool(value) != default:
                out.append(opt.opts[0] if value else opt.secondary_opts[0])
            continue
        out += [max(opt.opts, key=len), repr(value) if isinstance(value, float) else str(value)]
    return out


def sample_command(params: dict[str, Any], index: int) -> str:
    """The `sm sample` line that writes a sprite again (sprite `index` of its batch: the studio names the file)."""
    from scarlet_moon.cli.cmd_sample import sample

    return shlex.join(["sm", "sample", *argv_of(sample, params)])


def train_argv(params: dict[str, Any]) -> list[str]:
    """`sm train` with these parameters, run by this Python (the studio's fine-tuning runs)."""
    from scarlet_moon.cli.cmd_train import train

    return [sys.executable, "-m", "scarlet_moon.cli.main", "train", *argv_of(train, params)]
