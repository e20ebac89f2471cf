"""`sm export-onnx`, `sm doctor`, and the --backend hooks used by `sm sample` / `sm sheet`.

Nothing heavy at import time: torch/onnx load inside `export-onnx` only; the onnx backend
loads onnxruntime only.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys
from pathlib import Path
from typing import Any

import click

from cli.console import console

BACKENDS = ["torch", "onnx"]


# ------------------------------------------------------------------ --backend hooks
def is_onnx(path: str | Path | None) -> bool:
    return path is not None and str(path).lower().endswith(".onnx")


def load_card(opts: dict[str, Any]):
    """The card for --model/--backend: an exported .onnx reads its own metadata (no torch)."""
    from scarlet_moon.models.card import read_card
    from scarlet_moon.errors import BadInput

    path, backend = opts.get("model_path"), opts.get("backend")
    if is_onnx(path):
        if backend == "torch":
            raise BadInput(f"--backend torch needs a .safetensors model; {path!r} is ONNX (use --backend onnx)")
        from scarlet_moon.backends.onnx_backend import read_onnx_card

        return read_onnx_card(path)
    return read_card(path)


def sibling_onnx(card):
    """--backend onnx with a .safetensors model: the .onnx beside it, exported from that very file."""
    from scarlet_moon.errors import BadInput
    from scarlet_moon.backends.onnx_backend import read_onnx_card, source_fingerprint

    onnx_path = card.path.with_suffix(".onnx")
    hint = f"export it first: sm export-onnx --model {card.path} --out {onnx_path}"
    if not onnx_path.is_file():
        raise BadInput(f"--backend onnx: no {onnx_path.name} beside {str(card.path)!r}; {hint}")
    onnx_card = read_onnx_card(onnx_path)
    if onnx_card.meta["onnx"].get("source_fingerprint") != source_fingerprint(card.path):
        raise BadInput(f"--backend onnx: {str(onnx_path)!r} was exported from another checkpoint "
                       f"than {str(card.path)!r}; {hint}")
    return onnx_card


def resolve_backend(card, opts: dict[str, Any]):
    """(card, model) for sample_array: model is an OnnxDenoiserSession (onnx) or None (torch).

    Default backend: onnx for a .onnx model, else torch. Prints the backend/provider on stderr.
    """
    from scarlet_moon.errors import BadInput

    backend = opts.get("backend") or ("onnx" if is_onnx(card.path) else "torch")
    ctx = click.get_current_context(silent=True)
    quiet = bool(ctx and (ctx.find_root().obj or {}).get("quiet"))
    fast = check_fast(card, opts)
    if backend == "torch":
        if is_onnx(card.path):
            raise BadInput(f"--backend torch needs a .safetensors model; {str(card.path)!r} is ONNX")
        device = torch_device(opts)
        if not quiet:
            console.print(f"backend: torch on {device}{''.join(' ' + f for f in fast)}", highlight=False)
        return card, torch_model(card, device, opts) if fast else None
    from scarlet_moon.backends.onnx_backend import OnnxDenoiserSession

    if not is_onnx(card.path):
        card = sibling_onnx(card)
    session = OnnxDenoiserSession(card.path, opts.get("device"))
    if not quiet:
        console.print(f"backend: {session.describe()}", highlight=False)
    return session.card, session


def check_fast(card, opts: dict[str, Any]) -> list[str]:
    """The --fp16/--compile flags given; BadInput where they cannot apply (checked before any output)."""
    from scarlet_moon.errors import BadInput

    fast = [flag for flag, key in (("--fp16", "fp16"), ("--compile", "compile_model")) if opts.get(key)]
    backend = opts.get("backend") or ("onnx" if is_onnx(card.path) else "torch")
    if fast and backend != "torch":
        raise BadInput(f"{fast[0]} applies to the torch backend; an ONNX model's precision is chosen at "
                       "export (sm export-onnx --fp16)")
    if opts.get("fp16") and not torch_device(opts).startswith("cuda"):
        raise BadInput(f"--fp16 needs --device cuda with the torch backend (got --device {torch_device(opts)})")
    return fast


def torch_device(opts: dict[str, Any]) -> str:
    return opts.get("device") or "cpu"


def torch_model(card, device: str, opts: dict[str, Any]):
    """The torch network with --fp16/--compile applied (scarlet_moon.backends.torch_fast)."""
    from scarlet_moon.generation.core import load_torch_model
    from scarlet_moon.backends.torch_fast import accelerate

    return accelerate(load_torch_model(card, device), device, fp16=bool(opts.get("fp16")),
                      compile=bool(opts.get("compile_model")))


def batch_group(opts: dict[str, Any], model: Any) -> int:
    """Chunks per sampled batch: --batch (rounded up to whole chunks), else 8192 sprites on CUDA."""
    from scarlet_moon.generation.chunks import CHUNK_SIZE

    cuda = getattr(model, "device", None) == "cuda" or torch_device(opts).startswith("cuda")
    batch = opts.get("batch") or (8192 if cuda else CHUNK_SIZE)
    return -(-int(batch) // CHUNK_SIZE)


# ------------------------------------------------------------------ sm export-onnx
@click.command("export-onnx")
@click.option("--model", "model_path", default=None, help="A .safetensors checkpoint. [default: the bundled model]")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .onnx file to write (one file).")
@click.option("--fp16", is_flag=True, help="fp16 weights (time embedding kept fp32); for GPUs, slower on CPU.")
@click.option("--opset", type=click.IntRange(17, 23), default=None,
              help="ONNX opset. [default: the exporter's, 20 with torch 2.13]")
@click.option("--step-graph/--no-step-graph", default=True, show_default=True,
              help="Also write OUT.step.onnx, the fused sampler step that keeps sprites on the GPU.")
def export_onnx(model_path: str | None, out: str, fp16: bool, opset: int | None, step_graph: bool) -> None:
    """Export the denoiser to ONNX for the onnxruntime backend (`sm sample --model OUT.onnx`).

    The graph is the bare network (x, t, y -> prediction) with a dynamic batch axis;
    guidance and the sampler run in the sampling loop. The model card is embedded in the
    file's metadata. Also writes OUT.step.onnx (the fused step for the GPU loop). Checks
    parity against torch before writing.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        from scarlet_moon.errors import BadInput

        raise BadInput(f"export-onnx needs torch, onnx and onnxscript ({exc.name} is missing): "
                       "pip install 'scarlet-moon[train,export,onnx]'") from None
    from scarlet_moon.export.onnx_export import export_onnx as run_export

    with console.status("exporting to ONNX", spinner="dots"):
        res = run_export(model_path, out, fp16=fp16, opset=opset, step_graph=step_graph)
    diffs = ", ".join(f"batch {b}: {d:.2e}" for b, d in res.max_abs_diff.items())
    step = f"; fused step graph x0 max |diff| {res.step_diff:.2e}" if res.step_path else ""
    console.print(f"parity vs torch ({res.precision}, opset {res.opset}): max |diff| {diffs}{step} "
                  f"(limit {res.tolerance:g}); {res.bytes / 1e6:.2f} MB in {res.seconds:.1f} s", highlight=False)
    click.echo(str(res.path))
    if res.step_path:
        click.echo(str(res.step_path))


# ------------------------------------------------------------------ sm doctor
def _dist_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def tiny_onnx_bytes() -> bytes:
    """A serialized ONNX model y = Identity(x), float [1], opset 13: hand-encoded protobuf so
    provider probes need neither the onnx package nor a model file."""
    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    def field(num: int, payload: bytes | int) -> bytes:
        if isinstance(payload, int):
            return varint(num << 3) + varint(payload)
        return varint((num << 3) | 2) + varint(len(payload)) + payload

    def value_info(name: str) -> bytes:
        shape = field(2, field(1, field(1, 1)))                      # TensorShapeProto{dim{dim_value:1}}
        tensor_type = field(1, field(1, 1) + shape)                  # TypeProto{tensor_type{elem FLOAT}}
        return field(1, name.encode()) + field(2, tensor_type)

    node = field(1, b"x") + field(2, b"y") + field(4, b"Identity")
    graph = field(1, node) + field(2, b"probe") + field(11, value_info("x")) + field(12, value_info("y"))
    return field(1, 8) + field(7, graph) + field(8, field(2, 13))   # ir_version 8, opset {version 13}


def probe_providers(ort) -> dict[str, bool]:
    """provider -> does a session really run on it (CPU always does)."""
    import numpy as np

    model = tiny_onnx_bytes()
    result = {}
    ort.set_default_logger_severity(4)
    try:
        for p in ort.get_available_providers():
            if p == "AzureExecutionProvider":  # remote-endpoint EP, not a compute device
                continue
            try:
                chain = [p] if p == "CPUExecutionProvider" else [p, "CPUExecutionProvider"]
                sess = ort.InferenceSession(model, providers=chain)
                ok = sess.get_providers()[0] == p
                if ok:
                    sess.run(None, {"x": np.zeros(1, np.float32)})
            except Exception:
                ok = False
            result[p] = ok
    finally:
        ort.set_default_logger_severity(2)
    return result


def doctor_report() -> list[tuple[str, str]]:
    from scarlet_moon import __version__

    rows = [("python", f"{platform.python_version()} ({sys.executable})"),
            ("platform", platform.platform()), ("scarlet-moon", __version__)]
    try:
        import torch

        cuda = torch.cuda.is_available()
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
        rows.append(("torch", f"{torch.__version__}; CUDA available: {cuda}"
                              + (f"; devices: {', '.join(devices)}" if devices else "")))
    except Exception as exc:  # not installed, or a broken install: report, never fail
        rows.append(("torch", f"not importable ({type(exc).__name__}: {exc})"[:200]))
    try:
        import onnxruntime as ort

        dists = md.packages_distributions().get("onnxruntime", [])
        pkgs = ", ".join(f"{d} {_dist_version(d)}" for d in sorted(set(dists))) or "unknown"
        rows.append(("onnxruntime", f"{ort.__version__} from {pkgs}"))
        if len(set(dists)) > 1:
            rows.append(("  warning", "several onnxruntime packages share one folder; keep exactly one "
                                      "(pip uninstall the others, then reinstall the one you want)"))
        rows.append(("  providers", ", ".join(ort.get_available_providers())))
        probed = probe_providers(ort)
        rows.append(("  providers that load", ", ".join(p for p, ok in probed.items() if ok) or "none"))
        failed = [p for p, ok in probed.items() if not ok]
        if failed:
            rows.append(("  listed but not loading", ", ".join(failed)))
    except Exception as exc:
        rows.append(("onnxruntime", f"not importable ({type(exc).__name__}: {exc})"[:200]))
    for name in ("onnx", "onnxscript", "onnxconverter-common", "mlflow", "mlflow-skinny", "wandb"):
        v = _dist_version(name)
        if v or name in ("mlflow", "wandb", "onnx"):
            rows.append((name, v or "not installed"))
    return rows


@click.command()
def doctor() -> None:
    """Print the environment: python, torch/CUDA, onnxruntime and the providers that really load,
    mlflow/wandb. Never fails."""
    for key, value in doctor_report():
        click.echo(f"{key}: {value}")


COMMANDS = [export_onnx, doctor]
