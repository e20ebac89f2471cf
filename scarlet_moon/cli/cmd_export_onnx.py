"""`sm export-onnx`: the denoiser as ONNX (and its fused step graph) for the onnxruntime backend.

torch, onnx and onnxscript are imported inside the command only.
"""

from __future__ import annotations

from pathlib import Path

import click

from scarlet_moon.cli.console import console, echo
from scarlet_moon.cli.paths import model_input, output_file


@click.command("export-onnx")
@click.option(
    "--model",
    default=None,
    help="A .safetensors checkpoint. [default: the bundled model; bundled-25: its 25-step teacher; bundled-32: the 32x32 one]",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="The .onnx file to write (one file). [default for a bundled model: the cache, where "
    "--backend onnx finds it; required for any other]",
)
@click.option("--force", is_flag=True, help="Replace --out (and its side graphs) if it exists.")
@click.option("--fp16", is_flag=True, help="fp16 weights (time embedding kept fp32); for GPUs, slower on CPU.")
@click.option(
    "--opset",
    type=click.IntRange(17, 23),
    default=None,
    help="ONNX opset. [default: the exporter's, 20 with torch 2.13]",
)
@click.option(
    "--step-graph/--no-step-graph",
    default=True,
    show_default=True,
    help="Also write OUT.step.onnx, the fused sampler step that keeps sprites on the GPU.",
)
@click.option(
    "--unrolled/--no-unrolled",
    default=True,
    show_default=True,
    help="Also write OUT.unrolled.onnx: the model's default sampling (sampler, steps, guidance) as one "
    "graph, run in one call on a GPU (needs the step graph; not for samplers that add noise).",
)
def export_onnx(
    model: str | None, out: str | None, fp16: bool, opset: int | None, step_graph: bool, unrolled: bool, force: bool
) -> None:
    """Export the denoiser to ONNX for the onnxruntime backend (`sm sample --model OUT.onnx`).

    The graph is the bare network (x, t, y -> prediction) with a dynamic batch axis;
    guidance and the sampler run in the sampling loop. The model card is embedded in the
    file's metadata. Also writes OUT.step.onnx (the fused step for the GPU loop) and
    OUT.unrolled.onnx (the default sampling in one graph). Checks parity against torch
    (the unrolled graph against the step-by-step loop) before writing.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        from scarlet_moon.errors import BadInput

        raise BadInput(
            f"export-onnx needs torch, onnx and onnxscript ({exc.name} is missing): "
            "pip install 'scarlet-moon[train,export,onnx]'"
        ) from None
    from scarlet_moon.onnx.export import export_onnx as run_export

    if (
        out is not None and Path(out).parent.is_dir()
    ):  # a missing folder or a wrong suffix: the library's one-line errors
        output_file(out, "--out", inputs=[model_input(model)], force=force)

    with console.status("exporting to ONNX", spinner="dots"):
        from scarlet_moon.options import SamplingOptions

        res = run_export(
            model, out, fp16=fp16, opset=opset, step_graph=step_graph, unroll=SamplingOptions() if unrolled else None
        )
    diffs = ", ".join(f"batch {b}: {d:.2e}" for b, d in res.max_abs_diff.items())
    step = f"; fused step graph x0 max |diff| {res.step_diff:.2e}" if res.step_path else ""
    step += f"; unrolled graph vs step loop {res.unrolled_diff:.2e}" if res.unrolled_path else ""
    console.print(
        f"parity vs torch ({res.precision}, opset {res.opset}): max |diff| {diffs}{step} "
        f"(limit {res.tolerance:g}); {res.bytes / 1e6:.2f} MB in {res.seconds:.1f} s",
        highlight=False,
    )
    echo(res.path)
    if res.step_path:
        echo(res.step_path)
    if res.unrolled_path:
        echo(res.unrolled_path)
    elif res.unrolled_note:
        console.print(res.unrolled_note, highlight=False)
