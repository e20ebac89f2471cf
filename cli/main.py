"""Entry point of `sm`: the command group, logging set-up and error handling.

Subcommands live in their own modules and import torch (or onnxruntime) inside the
command body, so `sm --help` stays light.
"""

from __future__ import annotations

import logging
import sys

import click
from rich.markup import escape

from cli.console import console, setup_logging
from scarlet_moon import __version__
from scarlet_moon.errors import ScarletError


class SmGroup(click.Group):
    """A group that prints ScarletError as one line (exit 2 or 1) unless --debug."""

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except ScarletError as exc:
            self._fail(ctx, str(exc), exc.exit_code)
        except click.UsageError as exc:  # a subcommand's bad option: one line too, not click's usage block
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            self._fail(ctx, exc.format_message().rstrip(".") + where, exc.exit_code)
        except KeyboardInterrupt:  # Ctrl-C outside the training loop (which saves and raises Interrupted)
            self._fail(ctx, "interrupted (Ctrl-C); files are written atomically, so none is half-written", 130)

    @staticmethod
    def _fail(ctx: click.Context, message: str, code: int) -> None:
        if ctx.obj and ctx.obj.get("debug"):
            raise
        one_line = " ".join(message.split("\n"))  # escape(): a path or label with [/x] is text, not markup
        console.print(f"[red]error:[/red] {escape(one_line)}", markup=True, highlight=False, soft_wrap=True)
        ctx.exit(code)


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
    setup_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def _register() -> None:
    from cli import cmd_data, cmd_train

    sm.add_command(cmd_train.train)
    sm.add_command(cmd_data.data)
    for name in ("cmd_sample", "cmd_sheet", "cmd_eval", "cmd_onnx", "cmd_doctor", "cmd_plugin", "cmd_distill"):
        try:
            module = __import__(f"cli.{name}", fromlist=["COMMANDS"])
        except ModuleNotFoundError as exc:
            if exc.name != f"cli.{name}":
                raise
            continue
        for command in module.COMMANDS:
            sm.add_command(command)


_register()


def main() -> None:
    sm(prog_name="sm")


if __name__ == "__main__":
    sys.exit(main())
