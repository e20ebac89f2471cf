"""`sm train`: train a conditional sprite diffusion model (bundled set by default)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scarlet_moon.cli.console import console, echo, progress_disabled, text
from scarlet_moon.errors import Interrupted, ScarletError

if TYPE_CHECKING:
    from scarlet_moon.training.config import TrainConfig
    from scarlet_moon.training.distributed import Dist
    from scarlet_moon.training.runs import RunResult
    from scarlet_moon.training.tracking import TrackingOptions

# Flags that map one-to-one onto TrainConfig fields (None = not given, keep preset/TOML value).
CONFIG_FLAGS = {
    "steps": ("--steps", int, "Optimizer steps in total."),
    "batch_size": ("--batch-size", int, "Sprites per step."),
    "lr": ("--lr", float, "Peak learning rate."),
    "label_lr_scale": (
        "--label-lr-scale",
        float,
        "The label embedding rows learn at lr x this (a fine-tune's new labels separate faster).",
    ),
    "init_shrink": (
        "--init-shrink",
        float,
        "With --init-from: start at S x the prior's weights + (1 - S) x a fresh init (shrink and perturb; 1 = the prior).",
    ),
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
# Settings (flags or TOML keys) that are not TrainConfig fields, with the types they take.
RUN_KEYS: dict[str, tuple[type, ...]] = {
    "resume": (str,),
    "data": (str,),
    "tile": (int,),
    "background_key": (str,),
    "layout": (str,),
    "directions": (str,),
    "frames": (int,),
    "frame": (str,),
    "preset": (str,),
    "threads": (int,),
    "init_from": (str,),
    "runs_dir": (str,),
    "name": (str,),
    "tracking": (str,),
    "tracking_uri": (str,),
    "experiment": (str,),
    "register_name": (str,),
    "wandb": (bool,),
    "wandb_mode": (str,),
    "wandb_project": (str,),
    "device": (str,),
}


def _config_options(f: Any) -> Any:
    """The config flags; their help shows the default preset's value (None: keep the preset's or the file's)."""
    from scarlet_moon.training.config import DEFAULT

    for name, (flag, typ, help_) in reversed(CONFIG_FLAGS.items()):
        help_ = f"{help_}  [default: {DEFAULT.get(name)} with the default preset]"
        f = click.option(flag, name, type=typ, default=None, help=help_)(f)
    return f


@dataclass(frozen=True)
class TrainArgs:
    """What `sm train` was asked, typed: the config, which settings were asked for explicitly, and the run."""

    cfg: TrainConfig
    given: frozenset[str]  # config settings set by a flag, the TOML file or --preset
    data: str | None
    tile: int | None
    background_key: str | None
    runs_root: Path
    name: str | None
    resume: str | None
    tracking: TrackingOptions
    device: str | None
    threads: int  # torch threads of this process
    init_from: str | None  # a model to fine-tune ("bundled", or a .safetensors path)
    anim: dict[str, Any] | None = None  # an animated set (layout, directions, frames, frame): an animation model

    @classmethod
    def build(cls, params: dict[str, Any]) -> "TrainArgs":
        """TOML values first, flags given on the command line over them; every value checked here."""
        from scarlet_moon.errors import BadInput
        from scarlet_moon.limits import MAX_STEPS
        from scarlet_moon.training.config import DEFAULT, parse_duration, preset
        from scarlet_moon.training.tracking import DEFAULT_EXPERIMENT, TrackingOptions

        settings = _merged(params)
        for key, types in RUN_KEYS.items():
            if settings.get(key) is not None and not isinstance(settings[key], types):
                raise BadInput(f"bad {key}={settings[key]!r} in settings; expected {types[0].__name__}")
        base = preset(settings.get("preset") or "default")
        asked = {k: v for k, v in settings.items() if k not in RUN_KEYS}
        if "time_budget" in asked:
            asked["time_budget"] = parse_duration(asked["time_budget"])
            if asked["time_budget"] and "steps" not in asked:  # the budget decides when to stop
                asked["steps"] = MAX_STEPS
        cfg = base.replace(asked, source="settings")
        preset_keys = (
            {k for k in cfg.flat_names() if base.get(k) != DEFAULT.get(k)} if settings.get("preset") else set()
        )
        tracking = TrackingOptions(
            settings.get("tracking") or "mlflow",
            settings.get("tracking_uri"),
            settings.get("experiment") or DEFAULT_EXPERIMENT,
            settings.get("register_name"),
            bool(settings.get("wandb")),
            settings.get("wandb_mode"),
            settings.get("wandb_project") or "scarlet-moon",
        )
        return cls(
            cfg,
            frozenset({k.replace("-", "_") for k in asked} | preset_keys),
            settings.get("data"),
            settings.get("tile"),
            settings.get("background_key"),
            Path(settings.get("runs_dir") or "sm-runs"),
            settings.get("name"),
            settings.get("resume"),
            tracking,
            settings.get("device"),
            settings.get("threads") or 0,
            settings.get("init_from"),
            _anim_settings(settings),
        )


def _anim_settings(settings: dict[str, Any]) -> dict[str, Any] | None:
    """The animated-set options when --layout is given (the others need it); None for a sprite model."""
    from scarlet_moon.errors import BadInput

    keys = ("layout", "directions", "frames", "frame")
    if settings.get("layout") is None:
        extra = next((k for k in keys if settings.get(k) is not None), None)
        if extra:
            raise BadInput(f"--{extra} describes an animated set: it needs --layout")
        return None
    for key, why in (("resume", "resuming"), ("tile", "a tileset")):
        if settings.get(key) is not None:
            raise BadInput(f"--layout trains an animation model, which does not support {why} (--{key}) yet")
    if settings.get("data") is None:
        raise BadInput("--layout needs --data: the folder of your animated set")
    return {k: settings.get(k) for k in keys}


def _merged(params: dict[str, Any]) -> dict[str, Any]:
    """TOML settings (--config) overlaid with the flags given (None = not given)."""
    from scarlet_moon.training.config import load_toml

    settings: dict[str, Any] = {}
    if params.get("config_file"):
        settings.update({k.replace("-", "_"): v for k, v in load_toml(params["config_file"]).items()})
    renames = {"data_path": "data", "wandb_on": "wandb", "time": "time_budget"}
    for key, value in params.items():
        if key != "config_file" and value is not None:
            settings[renames.get(key, key)] = value
    return settings


@click.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(),
    default=None,
    help="Sprite set: npy folder, PNG folders, or tileset+CSV; bundled-32: the bundled 32x32 set. "
    "Default: the bundled angband16 set.",
)
@click.option("--tile", type=int, default=None, help="Cell size of a tileset sheet.")
@click.option(
    "--layout",
    type=click.Choice(["rows", "columns", "rpgmaker", "strips", "frames"]),
    default=None,
    help="--data is an animated set in this layout (sm data inspect): train an animation model for `sm anim`.",
)
@click.option(
    "--directions", default=None, help="With --layout: direction names in order.  [default: down,left,right,up]"
)
@click.option("--frames", type=int, default=None, help="With --layout: frames per direction kept (the first F).")
@click.option("--frame", default=None, metavar="N|WxH", help="With --layout rows/columns: the frame size.")
@click.option("--background-key", default=None, help="RRGGBB or 'auto': this colour becomes transparent.")
@click.option(
    "--preset",
    default=None,
    type=click.Choice(["default", "seed"]),
    help="'seed' is the ancestor's recipe (ContextUnet, DDPM 500, batch 100, lr 1e-3).",
)
@click.option("--config", "config_file", type=click.Path(), default=None, help="TOML file with settings.")
@_config_options
@click.option("--runs-dir", type=click.Path(), default=None, help="Where run folders go.  [default: sm-runs]")
@click.option("--name", default=None, help="Run folder name.  [default: run-<date>-<time>]")
@click.option(
    "--resume",
    default=None,
    help="Run folder, run name or checkpoint to continue. --steps, --lr and how often to log, sample "
    "and checkpoint may change; other settings must match the run's.",
)
@click.option(
    "--tracking",
    type=click.Choice(["mlflow", "none"]),
    default=None,
    help="Experiment tracking.  [default: mlflow, a local sqlite store in the runs dir]",
)
@click.option("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite:///<runs-dir>/mlflow.db).")
@click.option("--experiment", default=None, help="MLflow experiment name.  [default: scarlet-moon]")
@click.option("--register-name", default=None, help="Registered model name.  [default: scarlet-moon-sprites]")
@click.option("--wandb/--no-wandb", "wandb_on", default=None, help="Also log to Weights & Biases.")
@click.option(
    "--wandb-mode",
    type=click.Choice(["offline", "online", "disabled"]),
    default=None,
    help="W&B mode.  [default: online with WANDB_API_KEY, else offline]",
)
@click.option("--wandb-project", default=None, help="W&B project.  [default: scarlet-moon]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Torch device.")
@click.option(
    "--time",
    default=None,
    metavar="DURATION",
    help="Train for this long (90s, 30m, 1.5h): the learning-rate schedule spans it, and the steps "
    "reached are reported. [default: train --steps steps]",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Torch threads for this run. [default: auto: the cores other processes leave free, re-checked every 30 s]",
)
@click.option(
    "--init-from",
    default=None,
    metavar="MODEL|bundled|bundled-32",
    help="Fine-tune this model (a .safetensors, 'bundled' or 'bundled-32') on --data: its network and noise schedule, "
    "its label embeddings where the names match; the sprite size must match.",
)
@click.option(
    "--nproc",
    type=int,
    default=None,
    help="Train on N processes of this machine (one per GPU, or gloo on CPUs): starts torchrun.",
)
@click.pass_context
def train(ctx: click.Context, nproc: int | None, **params: Any) -> None:
    """Train a sprite diffusion model; prints the run folder and model path on stdout."""
    from scarlet_moon.training.threads import check_threads

    try:
        args = TrainArgs.build(params)
        check_threads(args.threads)
        if args.resume is None:  # before torch is imported: a config that cannot fit costs nothing
            from scarlet_moon.training.config import check_training_memory

            check_training_memory(args.cfg)
        if nproc is not None and args.anim is not None:
            from scarlet_moon.errors import BadInput

            raise BadInput("--layout trains an animation model, which does not support torchrun (--nproc) yet")
        if nproc is not None:
            from scarlet_moon.cli.launch import check_launch, launch
            from scarlet_moon.training.distributed import from_env

            if check_launch(nproc, from_env().world, args):
                ctx.exit(launch(ctx, nproc))
        _train_here(ctx, args)
    except ScarletError as exc:
        from scarlet_moon.world import world_from_env

        if world_from_env() is None:  # one process: the error is its own (and torch may not be loaded)
            raise
        from scarlet_moon.training.distributed import from_env

        here = from_env()  # under torchrun: rank 0 speaks for every rank
        _report(here, exc)
        if here.silent(exc):  # rank 0 reports it: give it time before torchrun stops the ranks left
            time.sleep(1)
            ctx.exit(exc.exit_code)
        raise


def _train_here(ctx: click.Context, args: TrainArgs) -> None:
    """This process's part: the whole run, or one rank of a torchrun job."""
    from scarlet_moon.backends.torch_backend import torch_device
    from scarlet_moon.cli.paths import creatable_dir
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.training import distributed

    creatable_dir(args.runs_root, "--runs-dir")  # before the data is read
    made = not args.runs_root.exists()
    dist, device = distributed.start(torch_device(args.device))
    try:

        def load() -> Any:
            data_path = args.data
            if data_path is None and args.resume:
                data_path = _resumed_data_source(args.resume, args.runs_root)
            return load_sprites(data_path, tile=args.tile, background_key=args.background_key)

        if args.anim is not None:
            result = _run_anim(args, ctx.obj.get("quiet", False))
        else:
            data = dist.together(load)
            result = _run(args, data, ctx.obj.get("quiet", False), dist, device)
    except BaseException:
        distributed.stop(clean=False)
        if made and dist.main and args.runs_root.is_dir() and not any(args.runs_root.iterdir()):
            args.runs_root.rmdir()  # refused before any run began: no empty runs folder of its own left behind
        raise
    distributed.stop()
    if dist.main:
        echo(result.run_dir)
        echo(result.model)


def _run_anim(args: TrainArgs, quiet: bool) -> RunResult:
    """An animation model: its own loop (training.anim_runs), the same run folders and tracking."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from scarlet_moon.data.anim import load_anim
    from scarlet_moon.training.anim_runs import train_anim_run

    assert args.anim is not None and args.data is not None
    a = args.anim
    data = load_anim(
        args.data,
        a["layout"],
        directions=a["directions"],
        frame=a["frame"],
        frames=a["frames"],
        background_key=args.background_key,
    )
    trackers = args.tracking.trackers(args.runs_root)
    columns = [TextColumn("step"), MofNCompleteColumn(), BarColumn(), TextColumn("loss {task.fields[loss]}")]
    with Progress(
        *columns,
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=progress_disabled(quiet),
    ) as bar:
        task = bar.add_task("train", total=args.cfg.steps, loss="-")

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=f"{loss:.4f}")

        result = train_anim_run(
            args.cfg,
            data,
            runs_root=args.runs_root,
            trackers=trackers,
            name=args.name,
            threads=args.threads,
            init_from=args.init_from,
            progress=progress,
        )
    console.print(text(f"trained {result.steps} steps in {result.seconds:.0f} s; run folder {result.run_dir}"))
    return result


def _report(here: Dist, exc: ScarletError) -> None:
    """Rank 0 of a torchrun job: finish reporting even when torchrun stops it (SIGTERM) because another rank
    exited first; under `sm train --nproc` also leave the exit code for the launcher."""
    import os
    import signal

    from scarlet_moon.cli.launch import STATUS_ENV
    from scarlet_moon.exporters.atomic import write_file

    if not (here.main and here.active):
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path = os.environ.get(STATUS_ENV)
    if path:
        write_file(path, f"{exc.exit_code}\n".encode())  # the launcher never reads half a file


def _resumed_data_source(resume: str, runs_root: Path) -> str | None:
    """A resumed run trains on the data it started with unless --data says otherwise."""
    from scarlet_moon.models.card import read_meta
    from scarlet_moon.training.runs import resolve_resume

    source = read_meta(resolve_resume(resume, runs_root)).get("data_source", "")
    return None if source in ("", "bundled:angband16") else source


def _run(args: TrainArgs, data: Any, quiet: bool, dist: Dist, device: str) -> RunResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from scarlet_moon.training.runs import train_run

    trackers = args.tracking.trackers(args.runs_root) if dist.main else {}
    quiet = quiet or not dist.main
    columns = [
        TextColumn("step"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True, disable=progress_disabled(quiet)) as bar:
        task = bar.add_task("train", total=args.cfg.steps, loss="-", rate="")  # nothing measured yet
        t0: list[Any] = [time.time(), None]

        def progress(info: Any) -> None:
            if t0[1] is None:
                t0[1] = info.step - 1
            rate = (info.step - t0[1]) / max(1e-9, time.time() - t0[0])
            bar.update(task, completed=info.step, total=info.total, loss=f"{info.loss:.4f}", rate=f"{rate:.1f} steps/s")

        try:
            result = train_run(
                args.cfg,
                data,
                runs_root=args.runs_root,
                trackers=trackers,
                name=args.name,
                resume=args.resume,
                given=args.given,
                register_name=args.tracking.model_name(trackers),
                device=device,
                threads=args.threads,
                progress=progress,
                dist=dist,
                init_from=args.init_from,
            )
        except Interrupted as exc:
            raise Interrupted(
                f"{exc}; continue with `sm train --resume {exc.run_dir}`", run_dir=exc.run_dir, signum=exc.signum
            ) from None
    if dist.main:
        console.print(text(f"trained {result.steps} steps in {result.seconds:.0f} s; run folder {result.run_dir}"))
    return result
