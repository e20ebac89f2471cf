"""onnxruntime sessions: the import, provider choice (CUDA only when it really loads), CUDA EP options.

numpy + onnxruntime only (no torch, no onnx package).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from scarlet_moon.errors import BadInput, arg

log = logging.getLogger(__name__)
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
ORT_DEFAULT_SEVERITY = 2  # WARNING in a terminal; restored after a silenced CUDA probe (default_severity)
DEVICES = ("auto", "cpu", "cuda")


def import_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise BadInput(
            "the onnx backend needs onnxruntime: pip install 'scarlet-moon[onnx]' (or onnxruntime-gpu for CUDA)"
        ) from None
    ort.set_default_logger_severity(default_severity())
    return ort


def default_severity() -> int:
    """onnxruntime's own log level: warnings in a terminal; errors only when stderr is a pipe or a file,
    where its coloured lines would land raw (ANSI codes) in a log or a plugin's output."""
    import sys

    return ORT_DEFAULT_SEVERITY if sys.stderr.isatty() else 3


def make_session(
    ort: Any,
    path: Path,
    providers: list[Any],
    *,
    threads: int | None = None,
    light: bool = False,
    what: str = "ONNX model",
    save_to: Path | None = None,
    optimised: bool = False,
) -> Any:
    """An InferenceSession; a file onnxruntime cannot load is BadInput naming it. `light`: metadata
    only (no graph optimisation, one thread). `save_to`: onnxruntime writes the optimised graph there;
    `optimised`: `path` is such a graph (not optimised again)."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    if save_to is not None:
        so.optimized_model_filepath = str(save_to)
    if light or optimised:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if light:
        so.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile...: all "not a usable .onnx"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"{str(path)!r} is not a loadable {what} ({first[:200]})") from None


def _preload_cuda_libs(ort: Any) -> None:
    """onnxruntime-gpu >= 1.21 can load CUDA/cuDNN from the nvidia-* pip wheels (the ones torch
    installs); without it, a process that has not imported torch finds no libcublasLt/libcudnn."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception as exc:  # noqa: BLE001  missing wheels: the CUDA probe then fails cleanly
            log.debug("onnxruntime.preload_dlls: %s", exc)


def cuda_options(**base: str) -> dict[str, str]:
    """CUDA EP provider options: TF32 off (fp32 means fp32: with TF32 the CUDA sprites of torch and
    onnxruntime agreed on 94% of values, without it on 99.997%), `base`, then SM_ONNX_CUDA_OPTIONS
    ("key=value,key=value", e.g. "use_tf32=1,prefer_nhwc=1"), passed to onnxruntime as they are."""
    opts = {"use_tf32": "0", **base}
    raw = os.environ.get("SM_ONNX_CUDA_OPTIONS", "").strip()
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise BadInput(f"SM_ONNX_CUDA_OPTIONS entry {part!r}: expected key=value (e.g. use_tf32=0)")
        opts[key.strip()] = value.strip()
    return opts


def check_device(device: str | None) -> str:
    d = (device or "auto").lower()
    if d not in DEVICES:
        raise BadInput(f"{arg('device')} {device!r}: expected cpu or cuda")
    return d


def open_session(path: Path, device: str | None = None) -> tuple[Any, str]:
    """(session, device) with device 'cuda' only if the CUDA EP really loaded.

    device None/'auto': CUDA when it loads, else CPU; 'cpu' forces CPU; 'cuda' fails (BadInput)
    when the CUDA EP cannot load. onnxruntime-gpu lists CUDA even with no GPU and silently
    falls back to CPU, so the check is get_providers()[0], never get_available_providers().
    """
    ort = import_ort()
    device = check_device(device)
    if device != "cpu" and CUDA in ort.get_available_providers():
        opts = cuda_options()  # a malformed SM_ONNX_CUDA_OPTIONS is bad input, not "no CUDA"
        ort.set_default_logger_severity(4)  # the failed probe logs E/W lines (libcublas...)
        try:
            _preload_cuda_libs(ort)
            sess = make_session(ort, path, [(CUDA, opts), CPU])
        except BadInput:
            sess = None
        finally:
            ort.set_default_logger_severity(default_severity())
        if sess is not None and sess.get_providers()[0] == CUDA:
            return sess, "cuda"
    if device == "cuda":
        raise BadInput(
            f"{arg('device')} cuda: onnxruntime {ort.__version__} cannot load the CUDA provider here "
            f"(providers built in: {', '.join(ort.get_available_providers())}); install "
            f"onnxruntime-gpu with a matching CUDA/cuDNN, or use {arg('device')} cpu"
        )
    return cpu_session(ort, path), "cpu"


def cpu_session(ort: Any, path: Path) -> Any:
    """A CPU session on every core, opened from onnxruntime's cached optimised graph when there is one
    (backends.onnx_cache)."""
    from scarlet_moon.backends.onnx_cache import cached_session

    def open_(p: Path, save_to: Path | None = None, optimised: bool = False) -> Any:
        return make_session(ort, p, [CPU], threads=os.cpu_count() or 1, save_to=save_to, optimised=optimised)

    return cached_session(path, ort.__version__, open_)


def open_step_session(
    path: Path, device: str, *, cuda_graph: bool, threads: int | None = None, what: str = "step graph"
) -> Any:
    """A session on the fused step graph (or the unrolled graph): CUDA (optionally with CUDA graphs) or CPU."""
    ort = import_ort()
    if device == "cuda":
        providers: list[Any] = [(CUDA, cuda_options(enable_cuda_graph="1" if cuda_graph else "0")), CPU]
    else:
        providers = [CPU]
    sess = make_session(ort, path, providers, threads=threads, what=what)
    if device == "cuda" and sess.get_providers()[0] != CUDA:
        raise BadInput(f"{str(path)!r}: the CUDA provider did not load for the {what}")
    return sess
