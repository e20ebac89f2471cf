"""`sm eval`: quality figures of a model (FD, conditional accuracy, copies, colours/crispness)."""

from __future__ import annotations

import json
from typing import Any

import click

from scarlet_moon.cli.console import console, echo, text
from scarlet_moon.cli.generation_flags import SAMPLERS
from scarlet_moon.cli.paths import model_input, output_file
from scarlet_moon.cli.progress import bars
from scarlet_moon.limits import MAX_COUNT


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(fig: dict[str, Any]) -> Any:
    from rich.table import Table

    real = fig["mode"] == "real"
    who = "held-out" if real else "generated"
    t = Table(title=text(f"sm eval: {fig['candidates']} vs train split ({fig['data']})"), show_lines=False)
    t.add_column("figure")
    t.add_column(who, justify="right")
    t.add_column("real (train split)", justify="right")
    c, px = fig["classifier"], fig["pixels"]
    fr = fig["frechet"]
    ratio = f" ({fr['ratio_to_floor']:.2f}x)" if not real and fr.get("ratio_to_floor") else ""
    t.add_row(
        "Frechet distance (classifier features)", _fmt(fr["distance"]) + ratio, f"0 (held-out {_fmt(fr.get('floor'))})"
    )
    t.add_row("conditional accuracy", _fmt(fig["conditional_accuracy"]["overall"]), "")
    for name, v in fig["conditional_accuracy"]["per_label"].items():
        t.add_row(text(f"  {name}"), _fmt(v), "")
    t.add_row(f"copies (nearest <= {fig['copies']['threshold']:g} mean abs)", _fmt(fig["copies"]["share"]), "")
    t.add_row("  mean nearest distance", _fmt(fig["copies"]["mean_nearest"]), "")
    t.add_row(
        "colours per sprite", _fmt(px["colours_per_sprite"]["candidates"]), _fmt(px["colours_per_sprite"]["real"])
    )
    t.add_row("alpha crispness", _fmt(px["alpha_crispness"]["candidates"]), _fmt(px["alpha_crispness"]["real"]))
    for key, name in (
        ("isolated_rate", "isolated pixels (no neighbour shares the colour)"),
        ("speck_rate", "specks (opaque islands of 1-2 pixels)"),
        ("saturation", "mean saturation"),
        ("luma", "mean luma"),
    ):
        if key in px:
            real_col = f"{_fmt(px[key]['real'])} (held-out {_fmt(px[key]['held_out'])})"
            t.add_row(name, _fmt(px[key]["candidates"]), real_col)
    t.add_row("classifier held-out accuracy", _fmt(c["held_out_accuracy"]), "")
    return t


@click.command(name="eval")
@click.option(
    "--model",
    default=None,
    help="A .safetensors model or an exported .onnx. [default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]",
)
@click.option(
    "--data",
    "data_path",
    default=None,
    help="The real sprites. [default: the set the model was trained on (its card says), else the bundled set]",
)
@click.option(
    "--real",
    is_flag=True,
    help="Measure the real held-out split instead of generated sprites (the floor of each figure; needs no model).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1, max=MAX_COUNT),
    default=None,
    help="Sprites to generate, spread over labels like the real data. [default: as many per label as "
    "the held-out split has, so that FD compares with its floor]",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="[default: the model's]")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="[default: the model's]")
@click.option("--guidance", type=float, default=None, help="[default: the model's]")
@click.option("--raw", is_flag=True, help="Measure the raw samples, before crisp alpha and palette snap.")
@click.option("--out", "out", default="metrics.json", show_default=True, help="Where to write the JSON.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the eval classifier is cached. [default: ~/.cache/scarlet-moon]",
)
@click.option(
    "--write-card",
    is_flag=True,
    help="Also store the headline figures in the model's card (metadata 'metrics'.'eval').",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="[default: cpu; an .onnx model: CUDA when it loads, else CPU]",
)
@click.option(
    "--choose-post",
    is_flag=True,
    help="Instead: measure clean-up on/off and two colour caps on the held-out split (FD over the "
    "floor, per seed) and store the winner as the model's post-processing defaults in its card.",
)
@click.option("--seeds", default="0,1,2", show_default=True, help="With --choose-post: the seeds compared.")
@click.pass_context
def eval_(
    ctx: click.Context,
    model: str | None,
    data_path: str | None,
    real: bool,
    count: int | None,
    seed: int,
    sampler: str | None,
    steps: int | None,
    guidance: float | None,
    raw: bool,
    out: str,
    cache_dir: str | None,
    write_card: bool,
    device: str | None,
    choose_post: bool,
    seeds: str,
    force: bool,
) -> None:
    """Quality figures: FD, conditional accuracy, copies, colours, pixel fidelity (isolated pixels,
    specks, saturation, luma) and alpha crispness, beside the real floor (JSON + table). With
    --choose-post: the model's post-processing defaults, chosen on its held-out split."""
    from scarlet_moon.backends import BackendOptions
    from scarlet_moon.errors import BadInput
    from scarlet_moon.eval.metrics import evaluate, write_card_metrics
    from scarlet_moon.exporters.atomic import write_file
    from scarlet_moon.generation.request import check_seed
    from scarlet_moon.options import SamplingOptions

    if write_card and real:
        raise BadInput("--write-card with --real: the figures are of the data, not of a model; drop one")
    if not choose_post and ctx.get_parameter_source("seeds") == click.core.ParameterSource.COMMANDLINE:
        raise BadInput(f"--seeds {seeds!r} applies with --choose-post only; one sampling seed is --seed")
    target = output_file(
        out, "--out", inputs=[None if real and model is None else model_input(model), data_path], force=force
    )
    if choose_post:
        clash = [
            name
            for name, on in (
                ("--real", real),
                ("--raw", raw),
                ("--count", count is not None),
                ("--sampler", sampler),
                ("--steps", steps),
                ("--guidance", guidance is not None),
                ("--write-card", write_card),
            )
            if on
        ]
        if clash:
            raise BadInput(
                f"--choose-post with {clash[0]}: it measures the model's own sampling on the held-out "
                "split's count and writes the card itself; drop one"
            )
        _choose_post(ctx, model, data_path, seeds, cache_dir, BackendOptions(device=device), target)
        return
    sampling, backend = SamplingOptions(sampler, steps, guidance), BackendOptions(device=device)
    quiet = ctx.obj.get("quiet", False) if ctx.obj else False
    with bars(quiet) as updater:
        fig = evaluate(
            model,
            data_path,
            count=count,
            seed=check_seed(seed),
            sampling=sampling,
            real=real,
            raw=raw,
            cache_dir=cache_dir,
            backend=backend,
            progress=updater("sampling"),
            classifier_progress=updater("training eval classifier (epochs)"),
        )
    write_file(target, (json.dumps(fig, indent=2) + "\n").encode())
    if write_card:
        write_card_metrics(fig["model"], fig)
    if not quiet:
        console.print(_table(fig))
        if not real and not fig["frechet"]["like_for_like"]:
            console.print(
                text(
                    f"note: {fig['frechet']['n_candidates']} generated vs {fig['frechet']['n_floor']} held "
                    "out: FD is biased by set size, so it is not compared with the floor (leave --count "
                    "out for that)"
                ),
                soft_wrap=True,
            )
    echo(target)


def _choose_post(
    ctx: click.Context,
    model: str | None,
    data_path: str | None,
    seeds: str,
    cache_dir: str | None,
    backend: Any,
    target: Any,
) -> None:
    from scarlet_moon.backends import read_card
    from scarlet_moon.errors import BadInput
    from scarlet_moon.eval.post_choice import choose_post, write_post
    from scarlet_moon.exporters.atomic import write_file
    from scarlet_moon.generation.request import check_seed
    from scarlet_moon.models.card import is_bundled_model

    try:
        seed_list = [check_seed(int(s)) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise BadInput(f"--seeds {seeds!r}: expected whole numbers separated by commas, e.g. 0,1,2") from None
    card = read_card(model)
    if card.path.suffix != ".safetensors":
        raise BadInput(f"--choose-post writes the card of a .safetensors model, not {str(card.path)!r}")
    if is_bundled_model(card.path):
        raise BadInput(
            f"--choose-post on the bundled model {model or 'bundled'!r} would change the installed "
            "package; copy its model.safetensors and pass that copy"
        )
    quiet = ctx.obj.get("quiet", False) if ctx.obj else False
    with bars(quiet) as updater:
        result = choose_post(
            card,
            data_path,
            seeds=seed_list,
            cache_dir=cache_dir,
            backend=backend,
            progress=updater("seeds"),
            classifier_progress=updater("training eval classifier (epochs)"),
        )
    result["card_post"] = write_post(card.path, result)
    write_file(target, (json.dumps(result, indent=2) + "\n").encode())
    if not quiet:
        for r in result["variants"]:
            per = ", ".join(f"{v:.2f}" for v in r["fd_over_floor"])
            console.print(
                text(
                    f"{'cleanup' if r['cleanup'] else 'no cleanup':>10} cap {r['colors']}: FD/floor "
                    f"{r['mean_fd_over_floor']:.3f} ({per})"
                )
            )
        c = result["chosen"]
        console.print(
            text(
                f"chosen: {'cleanup' if c['cleanup'] else 'no cleanup'}, cap {c['colors']}"
                f"{'' if result['changed'] else ' (the default: no variant beat it on every seed)'}; "
                f"stored in {card.path}"
            )
        )
    echo(target)
