"""Entry point of `sm`: the command group, logging set-up and error handling.

Subcommands live in their own modules and import torch (or onnxruntime) inside the command
body, so `sm --help` stays light. They are registered explicitly, below, by module, and a module is
imported only when its command runs (or `sm --help` lists them): `sm sheet` does not pay for the
imports of `sm train` or `sm studio` (interactive latency, bench/fast_sheet.py).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import traceback
import warnings
from typing import Any, Callable

import click

from scarlet_moon.cli.console import console, plain, setup_logging
from scarlet_moon.errors import ScarletError
from scarlet_moon.version import __version__


def flag_namer(command: click.Command | None) -> Callable[[str], str]:
    """A library parameter name -> the flag that sets it in `command` (its subcommands too), like
    click's BadParameter; a name no option of the command carries is shown as it is."""
    flags: dict[str, str] = {}

    def collect(cmd: click.Command) -> None:
        for p in cmd.params:
            if isinstance(p, click.Option):
                longest = max(p.opts, key=len)
                flags.setdefault(longest.lstrip("-").replace("-", "_"), longest)
                flags.setdefault(p.name or "", longest)
        for sub in getattr(cmd, "commands", {}).values():
            collect(sub)

    if command is not None:
        collect(command)
    return lambda name: flags.get(name, name)


# command name -> "module:attribute" (`sm --help` lists them sorted)
COMMANDS = {
    "train": "scarlet_moon.cli.cmd_train:train",
    "data": "scarlet_moon.cli.cmd_data:data",
    "sample": "scarlet_moon.cli.cmd_sample:sample",
    "labels": "scarlet_moon.cli.cmd_sample:labels",
    "info": "scarlet_moon.cli.cmd_sample:info",
    "sheet": "scarlet_moon.cli.cmd_sheet:sheet",
    "anim": "scarlet_moon.cli.cmd_anim:anim",
    "eval": "scarlet_moon.cli.cmd_eval:eval_",
    "export-onnx": "scarlet_moon.cli.cmd_export_onnx:export_onnx",
    "doctor": "scarlet_moon.cli.cmd_doctor:doctor",
    "plugin": "scarlet_moon.cli.cmd_plugin:plugin",
    "distill": "scarlet_moon.cli.cmd_distill:distill",
    "tileset": "scarlet_moon.cli.cmd_tileset:tileset",
    "studio": "scarlet_moon.cli.cmd_studio:studio",
}


class SmGroup(click.Group):
    """A group that prints errors as one line (exit 2 usage, 1 failure, 128 + signal) and, with --debug,
    the traceback too, keeping the exit code. Its COMMANDS are imported when first asked for."""

    ran: str | None = None  # the subcommand invoked (main's fast exit reads it)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, attr = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # an unknown top-level flag: one line like every usage error
            self._fail(ctx, exc.format_message().rstrip(".") + " (see 'sm --help')", exc.exit_code)
            raise  # not reached: _fail exits

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        SmGroup.ran = cmd.name if cmd is not None else name
        return name, cmd, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ScarletError as exc:
            sub = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
            self._fail(ctx, exc.render(flag_namer(sub)), exc.exit_code)
        except click.UsageError as exc:  # a subcommand's bad option: one line too, not click's usage block
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            self._fail(ctx, exc.format_message().rstrip(".") + where, exc.exit_code)
        except Terminated as exc:  # SIGTERM/SIGHUP: unwound like Ctrl-C, so the writers remove their temps
            self._fail(
                ctx,
                f"interrupted by {exc.name}; files are written atomically, so none is half-written",
                128 + exc.signum,
            )
        except KeyboardInterrupt:  # Ctrl-C outside the training loop (which saves and raises Interrupted)
            self._fail(ctx, "interrupted (Ctrl-C); files are written atomically, so none is half-written", 130)
        except OSError as exc:  # the machine refused (a full disk, a read-only or vanished folder): exit 1;
            where = f" {exc.filename}" if exc.filename else ""  # the atomic writers removed their half-files
            self._fail(ctx, f"the system refused{where}: {exc.strerror or exc}; nothing half-written is left", 1)

    @staticmethod
    def _fail(ctx: click.Context, message: str, code: int) -> None:
        from rich.markup import escape

        if ctx.obj and ctx.obj.get("debug"):
            traceback.print_exc()
        one_line = plain(" ".join(message.split("\n")))  # a path or label with ESC or [/x] is text
        console.print(f"[red]error:[/red] {escape(one_line)}", markup=True, highlight=False, soft_wrap=True)
        ctx.exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP turned into an exception, so that every `finally` (temp files, locks, worker
    pools) runs as it does for Ctrl-C; the training loop installs its own handlers over these."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum, self.name = signum, signal.Signals(signum).name


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def catch_termination() -> None:
    """SIGTERM and SIGHUP raise Terminated in the main thread, where nothing else claimed them. Not under
    torchrun: it stops the ranks left with SIGTERM when one fails, and only that rank's error is said."""
    if os.environ.get("WORLD_SIZE", "1").strip() not in ("", "1", "0"):
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            try:
                signal.signal(sig, _terminate)
            except ValueError:  # not the main thread (an embedding app): leave its signals alone
                return


@click.group(cls=SmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sm")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def sm(ctx: click.Context, verbose: bool, quiet: bool, debug: bool) -> None:
    """Scarlet Moon: train sprite diffusion models, generate sprites, export spritesheets."""
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, quiet=quiet)
    catch_termination()
    setup_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    if not (verbose or debug):  # libraries' deprecation and runtime warnings are not for users
        warnings.simplefilter("ignore")


# Commands whose process may end without the interpreter's teardown once they have succeeded: all
# their files are written (atomically) and nothing they start is left to finish. Unloading numpy and
# onnxruntime at exit took ~50-110 ms of `sm sample --count 1`'s ~0.6 s (bench/results/startup.md).
# Not once torch is loaded: its atexit handlers stop compile workers and CUDA state.
FAST_EXIT = frozenset({"sample", "sheet", "labels", "info"})


def main() -> None:
    """The `sm` console script. After a command of FAST_EXIT succeeds (and not under torchrun, nor with
    SM_FAST_EXIT=0), the streams and log handlers are flushed and the process ends there."""
    try:
        sm(prog_name="sm")
    except SystemExit as exc:
        if exc.code in (0, None) and SmGroup.ran in FAST_EXIT and "torch" not in sys.modules and fast_exit_allowed():
            try:
                sys.stdout.flush()
                sys.stderr.flush()
                logging.shutdown()
            except (OSError, ValueError):  # a closed or broken pipe: the normal exit reports it
                raise exc from None
            os._exit(0)
        raise


def fast_exit_allowed() -> bool:
    """Not with SM_FAST_EXIT=0, nor under torchrun (WORLD_SIZE > 1, or one that is not a number)."""
    return os.environ.get("SM_FAST_EXIT", "1") != "0" and os.environ.get("WORLD_SIZE", "1").strip() in ("", "1", "0")


if __name__ == "__main__":
    main()
