"""Checkpoints: one safetensors file holding the tensors and JSON metadata.

Tensors are prefixed: `model.*` (raw weights), `ema.*` (EMA weights, used for sampling when
present), `optim.<param>.<key>` (optimizer state). The metadata entry "scarlet_moon" is a JSON
object: format tag, package version, config, label names, schedule, sprite size and channels,
data fingerprint, palette, step, tracking ids. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from scarlet_moon.errors import BadInput
from scarlet_moon.exporters.atomic import write_file
from scarlet_moon.models.card import FORMAT, META_KEY, read_meta
from scarlet_moon.models.card import check_path as _check_path
from scarlet_moon.version import __version__


@dataclass
class Checkpoint:
    meta: dict[str, Any]
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] = field(default_factory=dict)
    optim: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The weights to sample with: EMA when the run kept one."""
        return self.ema or self.model


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, part in (("model.", ckpt.model), ("ema.", ckpt.ema), ("optim.", ckpt.optim)):
        for k, v in part.items():
            tensors[prefix + k] = v.detach().to("cpu").contiguous()
    meta = dict(ckpt.meta, format=FORMAT, package_version=__version__)
    data = st_save(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    write_file(path, data)


def load_checkpoint(path: str | Path, *, with_optim: bool = True) -> Checkpoint:
    path = _check_path(path)
    meta = read_meta(path)
    parts: dict[str, dict[str, torch.Tensor]] = {"model": {}, "ema": {}, "optim": {}}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():
                prefix, _, name = key.partition(".")
                if prefix not in parts or (prefix == "optim" and not with_optim):
                    continue
                parts[prefix][name] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise BadInput(f"{str(path)!r} is truncated or corrupt ({exc})") from None
    if not parts["model"] and not parts["ema"]:
        raise BadInput(f"{str(path)!r} holds no model weights")
    return Checkpoint(meta=meta, **parts)


def optim_to_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Flatten `optimizer.state_dict()` into tensors + JSON-able param groups."""
    tensors = {}
    for idx, st in state["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"{idx}.{k}"] = t
    return tensors, state["param_groups"]


def optim_from_tensors(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = v
    return {"state": state, "param_groups": groups}


def sampling_weights(src: str | Path, dst: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
    """Write the sampling weights (EMA if kept) of a checkpoint, with its card, as a small model file."""
    ckpt = load_checkpoint(src, with_optim=False)
    meta = {k: v for k, v in ckpt.meta.items() if k not in ("optim_groups", "format", "package_version")}
    meta.update(kind="model", **(extra_meta or {}))
    save_checkpoint(dst, Checkpoint(meta=meta, model=ckpt.weights))
    return Path(dst)
