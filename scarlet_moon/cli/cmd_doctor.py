"""`sm doctor`: what this machine can run (python, torch and CUDA, onnxruntime and the providers
that really load, the trackers). Never fails."""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys
from typing import Any

import click


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
        shape = field(2, field(1, field(1, 1)))  # TensorShapeProto{dim{dim_value:1}}
        tensor_type = field(1, field(1, 1) + shape)  # TypeProto{tensor_type{elem FLOAT}}
        return field(1, name.encode()) + field(2, tensor_type)

    node = field(1, b"x") + field(2, b"y") + field(4, b"Identity")
    graph = field(1, node) + field(2, b"probe") + field(11, value_info("x")) + field(12, value_info("y"))
    return field(1, 8) + field(7, graph) + field(8, field(2, 13))  # ir_version 8, opset {version 13}


def probe_providers(ort: Any) -> dict[str, bool]:
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


def tensorrt_line(probed: dict[str, bool]) -> str:
    """What onnxruntime's TensorRT execution provider can do here (sm samples with CUDA or the CPU)."""
    trt = "TensorrtExecutionProvider"
    if probed.get(trt):
        return "its execution provider loads (sm does not choose it: it samples with CUDA or the CPU)"
    if trt in probed:
        return "listed by onnxruntime but does not load (TensorRT's libnvinfer is missing or does not match)"
    return "not in this onnxruntime build (onnxruntime-gpu builds list it; it loads where TensorRT is installed)"


def doctor_report() -> list[tuple[str, str]]:
    from scarlet_moon.version import __version__

    rows = [
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", platform.platform()),
        ("scarlet-moon", __version__),
    ]
    try:
        import torch

        cuda = torch.cuda.is_available()
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
        rows.append(
            (
                "torch",
                f"{torch.__version__}; CUDA available: {cuda}"
                + (f"; devices: {', '.join(devices)}" if devices else ""),
            )
        )
    except Exception as exc:  # not installed, or a broken install: report, never fail
        rows.append(("torch", f"not importable ({type(exc).__name__}: {exc})"[:200]))
    try:
        import onnxruntime as ort

        dists = md.packages_distributions().get("onnxruntime", [])
        pkgs = ", ".join(f"{d} {_dist_version(d)}" for d in sorted(set(dists))) or "unknown"
        rows.append(("onnxruntime", f"{ort.__version__} from {pkgs}"))
        if len(set(dists)) > 1:
            rows.append(
                (
                    "  warning",
                    "several onnxruntime packages share one folder; keep exactly one "
                    "(pip uninstall the others, then reinstall the one you want)",
                )
            )
        rows.append(("  providers", ", ".join(ort.get_available_providers())))
        probed = probe_providers(ort)
        rows.append(("  providers that load", ", ".join(p for p, ok in probed.items() if ok) or "none"))
        failed = [p for p, ok in probed.items() if not ok]
        if failed:
            rows.append(("  listed but not loading", ", ".join(failed)))
        rows.append(("  TensorRT", tensorrt_line(probed)))
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
