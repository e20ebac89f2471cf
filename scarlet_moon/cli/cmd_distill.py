"""`sm distill`: a guidance-distilled copy of a model (training.distill: one row per step), or with
--few-step N a student that samples in N steps (training.fewstep: progressive distillation)."""

from __future__ import annotations

from pathlib import Path

import click

from scarlet_moon.cli.console import console, echo, progress_disabled
from scarlet_moon.cli.paths import finite, model_input, output_file
from scarlet_moon.limits import MAX_SEED


@click.command()
@click.option(
    "--model",
    default=None,
    help="The teacher, a .safetensors model. [default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The student .safetensors to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option(
    "--data", "data_path", default=None, help="Sprites to noise. [default: the set the teacher was trained on]"
)
@click.option(
    "--few-step",
    "sample_steps",
    type=click.IntRange(min=1),
    default=None,
    help="Distil the teacher's sampling into N DDIM steps (progressive distillation; 1..16, e.g. 4). "
    "[default: guidance distillation]",
)
@click.option(
    "--substeps",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="With --few-step: teacher steps per student step (a few-step teacher uses its own grid).",
)
@click.option(
    "--steps", type=click.IntRange(min=1), default=None, help="Training steps. [default: 4000; --few-step: 1500]"
)
@click.option("--batch", type=click.IntRange(min=1), default=None, help="[default: 256; --few-step: 64]")
@click.option(
    "--lr",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=None,
    callback=finite,
    help="[default: 1e-4; --few-step: 2e-4]",
)
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.pass_context
def distill(
    ctx: click.Context,
    model: str | None,
    out: str,
    data_path: str | None,
    sample_steps: int | None,
    substeps: int,
    steps: int | None,
    batch: int | None,
    lr: float | None,
    seed: int,
    device: str,
    force: bool,
) -> None:
    """Distil classifier-free guidance into the network: the student samples at the teacher's
    guidance in one network row per step instead of two (about 2x faster); other --guidance
    values still work, at two rows. With --few-step N: a student that samples in N steps what
    the teacher samples in ~25 (its card makes ddim with N steps the default)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from scarlet_moon.backends.torch_backend import torch_device
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.training.distill import distill as run
    from scarlet_moon.training.fewstep import distill_fewstep

    if Path(out).parent.is_dir():  # a missing folder is the library's one-line error, below
        output_file(out, "--out", inputs=[model_input(model), data_path], force=force)
    device = torch_device(device)
    data = load_sprites(data_path) if data_path else None
    quiet = ctx.obj.get("quiet", False)
    columns = (
        TextColumn("distilling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=progress_disabled(quiet)) as bar:
        task = bar.add_task("distill", total=steps or (4000 if sample_steps is None else 1500), loss="-")

        def progress(step: int, total: int, loss: float) -> None:
            if step % 10 == 0 or step == total:
                bar.update(task, completed=step, loss=f"{loss:.4f}")

        if sample_steps is None:
            info = run(
                model,
                out,
                steps=steps or 4000,
                batch=batch or 256,
                lr=lr or 1e-4,
                seed=seed,
                device=device,
                data=data,
                progress=progress,
            )
        else:
            info = distill_fewstep(
                model,
                out,
                sample_steps=sample_steps,
                substeps=substeps,
                steps=steps or 1500,
                batch=batch or 64,
                lr=lr or 2e-4,
                seed=seed,
                device=device,
                data=data,
                progress=progress,
            )
    if not quiet:
        what = f"guidance {info['guidance']:g}" if sample_steps is None else f"{sample_steps}-step sampling"
        console.print(
            f"{what} distilled in {info['seconds']} s on {device}; loss "
            f"{info['loss_first_100']:.4f} -> {info['loss_last_100']:.4f}",
            highlight=False,
        )
    echo(out)
