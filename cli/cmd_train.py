"""`sm train`: train a conditional sprite diffusion model (bundled set by default)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from cli.console import console, progress_disabled
from scarlet_moon.errors import ScarletError

# Flags that map one-to-one onto TrainConfig fields (None = not given, keep preset/TOML value).
CONFIG_FLAGS = {
    "steps": ("--steps", int, "Optimizer steps in total."),
    "batch_size": ("--batch-size", int, "Sprites per step."),
    "lr": ("--lr", float, "Peak learning rate."),
    "seed": ("--seed", int, "Seed for weights, batch order and noise."),
    "schedule": ("--schedule", click.Choice(["linear", "cosine", "linear-zsnr"]), "Noise schedule."),
    "timesteps": ("--timesteps", int, "Training timesteps T."),
    "prediction": ("--prediction", click.Choice(["eps", "v"]), "What the network predicts."),
    "ema_decay": ("--ema-decay", float, "EMA decay (0 = off)."),
    "cond_drop": ("--cond-drop", float, "Label dropout probability (for guidance)."),
    "n_feat": ("--n-feat", int, "Base channel count of the network."),
    "sample_every": ("--sample-every", int, "Write a sample grid every N steps (0 = only at the end)."),
    "checkpoint_every": ("--checkpoint-every", int, "Write a checkpoint every N steps (and at the end)."),
    "log_every": ("--log-every", int, "Log the loss every N steps."),
}
# TOML keys that are not TrainConfig fields but CLI settings.
RUN_KEYS = {"resume", "data", "tile", "background_key", "preset", "runs_dir", "name", "tracking", "tracking_uri",
            "experiment", "register_name", "wandb", "wandb_mode", "wandb_project", "device"}


def _config_options(f):
    for name, (flag, typ, help_) in reversed(CONFIG_FLAGS.items()):
        f = click.option(flag, name, type=typ, default=None, help=help_)(f)
    return f


@click.command()
@click.option("--data", "data_path", type=click.Path(), default=None,
              help="Sprite set: npy folder, PNG folders, or tileset+CSV. Default: the bundled angband16 set.")
@click.option("--tile", type=int, default=None, help="Cell size of a tileset sheet.")
@click.option("--background-key", default=None, help="RRGGBB or 'auto': this colour becomes transparent.")
@click.option("--preset", default=None, type=click.Choice(["default", "seed"]),
              help="'seed' is the ancestor's recipe (ContextUnet, DDPM 500, batch 100, lr 1e-3).")
@click.option("--config", "config_file", type=click.Path(), default=None, help="TOML file with settings.")
@_config_options
@click.option("--runs-dir", type=click.Path(), default=None, help="Where run folders go.  [default: sm-runs]")
@click.option("--name", default=None, help="Run folder name.  [default: run-<date>-<time>]")
@click.option("--resume", default=None, help="Run folder, run name or checkpoint to continue.")
@click.option("--tracking", type=click.Choice(["mlflow", "none"]), default=None,
              help="Experiment tracking.  [default: mlflow, a local sqlite store in the runs dir]")
@click.option("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite:///<runs-dir>/mlflow.db).")
@click.option("--experiment", default=None, help="MLflow experiment name.  [default: scarlet-moon]")
@click.option("--register-name", default=None, help="Registered model name.  [default: scarlet-moon-sprites]")
@click.option("--wandb/--no-wandb", "wandb_on", default=None, help="Also log to Weights & Biases.")
@click.option("--wandb-mode", type=click.Choice(["offline", "online", "disabled"]), default=None,
              help="W&B mode.  [default: online with WANDB_API_KEY, else offline]")
@click.option("--wandb-project", default=None, help="W&B project.  [default: scarlet-moon]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Torch device.")
@click.option("--nproc", type=int, default=None,
              help="Train on N processes of this machine (one per GPU, or gloo on CPUs): starts torchrun.")
@click.pass_context
def train(ctx: click.Context, **opts: Any) -> None:
    """Train a sprite diffusion model; prints the run folder and model path on stdout."""
    from scarlet_moon.training.config import TrainConfig, preset
    from scarlet_moon.training.distributed import from_env

    nproc = opts.pop("nproc")
    here = from_env()  # under torchrun: rank 0 speaks for every rank
    try:
        settings = _merge_settings(opts)
        cfg: TrainConfig = preset(settings.get("preset") or "default")
        cfg = cfg.replace({k: v for k, v in settings.items() if k not in RUN_KEYS}, source="settings")
        runs_root = Path(settings.get("runs_dir") or "sm-runs")
        if nproc is not None:
            from cli.launch import launch, check_launch

            if check_launch(nproc, here.world, cfg, settings, runs_root):
                ctx.exit(launch(ctx, nproc))
        _train_here(ctx, cfg, settings, runs_root)
    except ScarletError as exc:
        _report(here, exc)
        if here.silent(exc):  # rank 0 reports it: give it time before torchrun stops the ranks left
            time.sleep(1)
            ctx.exit(exc.exit_code)
        raise


def _train_here(ctx: click.Context, cfg, settings: dict[str, Any], runs_root: Path) -> None:
    """This process's part: the whole run, or one rank of a torchrun job."""
    from scarlet_moon.training import distributed
    from scarlet_moon.data.sprites import load_sprites

    dist, device = distributed.start(_device(settings.get("device")))
    try:
        def load():
            data_path = settings.get("data")
            if data_path is None and settings.get("resume"):
                data_path = _resumed_data_source(settings["resume"], runs_root)
            return load_sprites(data_path, tile=settings.get("tile"), background_key=settings.get("background_key"))

        data = dist.together(load)
        result = _run(cfg, data, runs_root, settings, ctx.obj.get("quiet", False), dist, device)
    except BaseException:
        distributed.stop(clean=False)
        raise
    distributed.stop()
    if dist.main:
        click.echo(str(result.run_dir))
        click.echo(str(result.model))


def _report(here, exc: ScarletError) -> None:
    """Rank 0 of a torchrun job: finish reporting even when torchrun stops it (SIGTERM) because another rank
    exited first; under `sm train --nproc` also leave the exit code for the launcher."""
    import os
    import signal

    from cli.launch import STATUS_ENV
    from scarlet_moon.atomic import atomic_write_bytes

    if not (here.main and here.active):
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path = os.environ.get(STATUS_ENV)
    if path:
        atomic_write_bytes(path, f"{exc.exit_code}\n".encode())  # the launcher never reads half a file


def _resumed_data_source(resume: str, runs_root: Path) -> str | None:
    """A resumed run trains on the data it started with unless --data says otherwise."""
    from scarlet_moon.models.card import read_meta
    from scarlet_moon.training.runs import resolve_resume

    source = read_meta(resolve_resume(resume, runs_root)).get("data_source", "")
    return None if source.startswith("bundled:") else source


def _merge_settings(opts: dict[str, Any]) -> dict[str, Any]:
    """TOML values first, flags given on the command line over them."""
    from scarlet_moon.training.config import load_toml

    settings: dict[str, Any] = {}
    if opts.get("config_file"):
        settings.update({k.replace("-", "_"): v for k, v in load_toml(opts["config_file"]).items()})
    renames = {"data_path": "data", "wandb_on": "wandb"}
    for key, value in opts.items():
        if key == "config_file" or value is None:
            continue
        settings[renames.get(key, key)] = value
    return settings


def _device(name: str | None) -> str:
    import torch

    from scarlet_moon.errors import BadInput

    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda: no CUDA device is visible to torch here; use --device cpu")
    return name


def _trackers(settings: dict[str, Any], runs_root: Path) -> dict[str, Any]:
    from scarlet_moon.training.tracking import DEFAULT_EXPERIMENT, MlflowTracker, WandbTracker, default_mlflow_uri

    trackers: dict[str, Any] = {}
    if (settings.get("tracking") or "mlflow") == "mlflow":
        runs_root.mkdir(parents=True, exist_ok=True)
        uri = settings.get("tracking_uri") or default_mlflow_uri(runs_root)
        trackers["mlflow"] = MlflowTracker(uri, settings.get("experiment") or DEFAULT_EXPERIMENT,
                                           artifact_root=runs_root / "mlartifacts")
    if settings.get("wandb") and settings.get("tracking") != "none":
        trackers["wandb"] = WandbTracker(settings.get("wandb_project") or "scarlet-moon",
                                         settings.get("wandb_mode"), runs_root)
    return trackers


def _run(cfg, data, runs_root: Path, settings: dict[str, Any], quiet: bool, dist, device: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from scarlet_moon.training.runs import train_run
    from scarlet_moon.training.tracking import DEFAULT_MODEL_NAME

    trackers = _trackers(settings, runs_root) if dist.main else {}
    quiet = quiet or not dist.main
    register = settings.get("register_name") or (DEFAULT_MODEL_NAME if trackers else None)
    columns = [TextColumn("step"), MofNCompleteColumn(), BarColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
               TextColumn("{task.fields[rate]:.1f} steps/s"), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True, disable=progress_disabled(quiet)) as bar:
        task = bar.add_task("train", total=cfg.steps, loss=float("nan"), rate=0.0)
        import time

        t0 = [time.time(), None]

        def progress(info) -> None:
            if t0[1] is None:
                t0[1] = info.step - 1
            rate = (info.step - t0[1]) / max(1e-9, time.time() - t0[0])
            bar.update(task, completed=info.step, loss=info.loss, rate=rate)

        result = train_run(cfg, data, runs_root=runs_root, trackers=trackers, name=settings.get("name"),
                           resume=settings.get("resume"), resume_steps=settings.get("steps"),
                           register_name=register, device=device, progress=progress, dist=dist)
    if not dist.main:
        return result
    console.print(f"trained {result.steps} steps in {result.seconds:.0f} s; run folder {result.run_dir}",
                  highlight=False)
    return result
