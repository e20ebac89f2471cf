"""Backends: one call from a model file to the denoiser every sampler takes, whatever runs it.

    den = open_denoiser("model.safetensors")                 # torch (the file's suffix decides)
    den = open_denoiser("model.onnx", device="cuda")         # onnxruntime, no torch imported
    den = open_denoiser(None, backend="onnx")                # the .onnx exported beside the bundled model

Which backend runs a model is decided here and only here (`default_backend`): `backend=None`
means onnxruntime for a .onnx file and for a bundled model whose export ships beside it (when
onnxruntime is installed: no torch import, the fast path), torch for any other checkpoint;
`backend="onnx"` with a checkpoint uses the .onnx exported from that very file beside it.
Importing this package is cheap: torch or onnxruntime is imported by the backend that runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import (
    ModelCard,
    bundled_name,
    bundled_onnx_path,
    file_fingerprint,
    is_bundled_model,
    read_checkpoint_card,
)

if TYPE_CHECKING:
    from scarlet_moon.backends.base import Denoiser

BACKENDS = ("torch", "onnx")


def is_onnx(path: str | Path | None) -> bool:
    return path is not None and str(path).lower().endswith(".onnx")


def read_card(model: str | Path | None = None) -> ModelCard:
    """The card of a checkpoint or an exported .onnx (torch-free); None = the bundled model."""
    if is_onnx(model):
        from scarlet_moon.backends.onnx_meta import read_onnx_card

        return read_onnx_card(model)  # type: ignore[arg-type]
    return read_checkpoint_card(model)


@dataclass(frozen=True)
class BackendOptions:
    """What runs the network: backend (None: by the model file), device (None: the backend's
    default: the CPU for torch, CUDA when it loads for onnxruntime), fp16 / compile (torch on CUDA)."""

    backend: str | None = None
    device: str | None = None
    fp16: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise BadInput(f"{arg('backend')} {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.device is not None and not (self.device in ("auto", "cpu") or str(self.device).startswith("cuda")):
            raise BadInput(f"{arg('device')} {self.device!r}: expected cpu or cuda")

    def for_model(self, card: ModelCard) -> "BackendOptions":
        """These options with the backend decided for `card`; BadInput where they cannot apply to it."""
        fast = [name for name, on in (("fp16", self.fp16), ("compile", self.compile)) if on]
        cuda = str(self.device).startswith("cuda")
        backend = self.backend or default_backend(card, torch_wanted=bool(fast) or cuda)
        if backend == "torch" and is_onnx(card.path):
            raise BadInput(
                f"{arg('backend')} torch needs a .safetensors model; {str(card.path)!r} is ONNX "
                f"(use {arg('backend')} onnx)"
            )
        if fast and backend != "torch":
            raise BadInput(
                f"{arg(fast[0])} applies to the torch backend; an ONNX model's precision is chosen "
                f"at export (sm export-onnx {arg('fp16')})"
            )
        if self.fp16 and not str(self.device or "cpu").startswith("cuda"):
            raise BadInput(
                f"{arg('fp16')} needs {arg('device')} cuda with the torch backend "
                f"(got {arg('device')} {self.device or 'cpu'})"
            )
        return replace(self, backend=backend)


def default_backend(card: ModelCard, torch_wanted: bool = False) -> str:
    """onnx for a .onnx file; onnx for a bundled model shipped with its export beside it, unless torch
    options (fp16, compile, an explicit CUDA device) are asked or onnxruntime is not installed; else torch."""
    from importlib.util import find_spec

    if is_onnx(card.path):
        return "onnx"
    shipped = is_bundled_model(card.path) and card.path.with_suffix(".onnx").is_file()
    return "onnx" if shipped and not torch_wanted and find_spec("onnxruntime") is not None else "torch"


def sibling_onnx(card: ModelCard) -> Path:
    """The .onnx exported from that very checkpoint: beside it, or for a bundled model in the cache."""
    from scarlet_moon.backends.onnx_meta import META_SOURCE, metadata_props

    fingerprint = file_fingerprint(card.path)
    beside, cached = card.path.with_suffix(".onnx"), bundled_onnx_path(card.path, fingerprint)
    hint = (
        f"export it once: sm export-onnx {arg('model')} {bundled_name(card.path)} (writes {str(cached)!r})"
        if cached
        else f"export it first (sm export-onnx) to {str(beside)!r}"
    )
    for onnx_path in (beside, cached):
        if onnx_path is None or not onnx_path.is_file():
            continue
        if metadata_props(onnx_path).get(META_SOURCE) != fingerprint:  # the full check: when its session opens
            raise BadInput(
                f"{arg('backend')} onnx: {str(onnx_path)!r} was exported from another checkpoint "
                f"than {str(card.path)!r}; {hint}"
            )
        return onnx_path
    where = f"the bundled model {bundled_name(card.path)!r}" if cached else f"beside {str(card.path)!r}"
    raise BadInput(f"{arg('backend')} onnx: no ONNX export of {where}; {hint}")


def open_denoiser(
    model: str | Path | ModelCard | None = None,
    *,
    backend: str | None = None,
    device: str | None = None,
    fp16: bool = False,
    compile: bool = False,
) -> "Denoiser":
    """The model loaded on its backend, as the Denoiser the sampling loop runs (backends.base)."""
    card = model if isinstance(model, ModelCard) else read_card(model)
    opts = BackendOptions(backend, device, fp16, compile).for_model(card)
    if opts.backend == "torch":
        from scarlet_moon.backends.torch_backend import open_torch

        return open_torch(card, opts.device, fp16=fp16, compile=compile)
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser

    return OnnxDenoiser(card.path if is_onnx(card.path) else sibling_onnx(card), opts.device)
