"""A model's card: what a checkpoint (or an ONNX file's metadata) says about the model.

Torch-free, so label checks and `sm labels` / `sm info` stay fast and serve both backends. This
module reads a checkpoint's card from its safetensors header; scarlet_moon.backends.read_card
reads any model file (an exported .onnx carries its card in its metadata).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from scarlet_moon.diffusion.schedule import Schedule
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.exporters.atomic import write_file
from scarlet_moon.models.card_check import check_card_meta
from scarlet_moon.models.fingerprint import file_fingerprint

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "bundled" / "model" / "model.safetensors"
# Names a --model / model= argument may give instead of a path: the bundled 16x16 model (trained on
# bundled/angband16) and the bundled 32x32 one (bundled/angband32).
# "bundled" is a few-step student (sm distill --few-step); "bundled-25" its 25-step teacher (guidance
# distilled); "bundled-prior" an ordinary denoiser (the plain diffusion loss, guidance by the null
# label), which `--init-from bundled` fine-tunes (bundled/prior/README.md).
BUNDLED_TEACHER = BUNDLED_MODEL.parents[1] / "model25" / "model.safetensors"
BUNDLED_PRIOR = BUNDLED_MODEL.parents[1] / "prior" / "model.safetensors"
BUNDLED_MODELS = {
    "bundled": BUNDLED_MODEL,
    "bundled-16": BUNDLED_MODEL,
    "bundled-25": BUNDLED_TEACHER,
    "bundled-prior": BUNDLED_PRIOR,
    "bundled-32": BUNDLED_MODEL.parents[1] / "model32" / "model.safetensors",
}
# What `--init-from NAME` starts from, where that is not the named file itself.
FINE_TUNE_PRIOR = {"bundled": "bundled-prior", "bundled-16": "bundled-prior"}
FORMAT = "scarlet-moon-checkpoint"
META_KEY = "scarlet_moon"
MAX_HEADER = 100 << 20  # safetensors caps its JSON header at 100 MB


def check_path(path: str | Path) -> Path:
    """An existing file that is not a pickle (refused before anything is read from it)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"checkpoint {str(p)!r} does not exist or is not a file")
    with p.open("rb") as f:
        head = f.read(9)
    # safetensors: u64 header length, then a JSON object; anything else that looks like a
    # pickle (protocol 2..5 opcode) or torch's zip container is refused
    looks_safetensors = len(head) == 9 and head[8:9] == b"{"
    is_pickle = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if not looks_safetensors and (head.startswith(b"PK\x03\x04") or is_pickle):
        raise BadInput(
            f"{str(p)!r} looks like a pickle (.pt/.pth); refusing to load it, since unpickling "
            "can run arbitrary code. Use a .safetensors checkpoint written by `sm train`"
        )
    return p


def read_meta(path: str | Path) -> dict[str, Any]:
    """The Scarlet Moon metadata of a safetensors file, from its header alone (no torch)."""
    p = check_path(path)
    not_ours = f"{str(p)!r} is not a Scarlet Moon checkpoint"
    with p.open("rb") as f:
        raw_len = f.read(8)
        n = struct.unpack("<Q", raw_len)[0] if len(raw_len) == 8 else -1
        if not 2 <= n <= min(MAX_HEADER, p.stat().st_size - 8):
            raise BadInput(f"{not_ours} (not a readable safetensors file)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            raise BadInput(f"{not_ours} (its safetensors header is not JSON)") from None
    if isinstance(header, dict):
        _check_data_size(p, header, p.stat().st_size - 8 - n)
    raw = (header.get("__metadata__") or {}).get(META_KEY) if isinstance(header, dict) else None
    if raw is None:
        raise BadInput(
            f"{str(p)!r} is a safetensors file without Scarlet Moon metadata; "
            "expected a checkpoint written by `sm train`"
        )
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, TypeError, RecursionError):
        raise BadInput(f"{str(p)!r} has corrupt Scarlet Moon metadata (not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInput(f"{not_ours} (format tag missing)")
    return meta


def _check_data_size(p: Path, header: dict[str, Any], available: int) -> None:
    """The tensors' data_offsets must end exactly at the end of the file: a cut-off copy fails here,
    from the header alone, before any command starts work."""
    ends: list[Any] = [v.get("data_offsets") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    try:
        end = max((int(e[1]) for e in ends), default=0)
    except (TypeError, ValueError, IndexError, KeyError, OverflowError):
        raise BadInput(f"{str(p)!r} is not a Scarlet Moon checkpoint (its safetensors header is malformed)") from None
    if end != available:
        raise BadInput(
            f"{str(p)!r} is truncated or corrupt (its header describes {end} bytes of tensor data, "
            f"the file holds {available})"
        )


def bundled_model_path(name: str | Path | None) -> Path | None:
    """The file behind None or a bundled model's name ('bundled', 'bundled-16', 'bundled-25', 'bundled-prior',
    'bundled-32');
    None for a path. A file of that name in the working folder is the user's, not ours."""
    if name is None:
        return BUNDLED_MODEL
    if str(name) in BUNDLED_MODELS and not Path(name).exists():
        return BUNDLED_MODELS[str(name)]
    return None


def is_bundled_model(checkpoint: str | Path) -> bool:
    """Whether the file is one of the bundled models (by path: no hashing)."""
    p = Path(checkpoint).resolve()
    return p in {q.resolve() for q in BUNDLED_MODELS.values()} and p.is_file()


def bundled_onnx_path(checkpoint: str | Path, fingerprint: str | None = None) -> Path | None:
    """Where `sm export-onnx` puts, and the onnx backend finds, the export of a bundled model (the package
    folder may be read-only): <cache>/onnx/<folder>-<fingerprint>.onnx; None for any other checkpoint.
    `fingerprint`: the file's, when the caller has it (hashing 19 MB twice is measurable latency)."""
    from scarlet_moon.cache import default_cache_dir

    p = Path(checkpoint).resolve()
    if not is_bundled_model(p):
        return None
    return default_cache_dir() / "onnx" / f"{p.parent.name}-{fingerprint or file_fingerprint(p)}.onnx"


def bundled_name(checkpoint: str | Path) -> str:
    """'bundled', 'bundled-25', 'bundled-prior' or 'bundled-32' for a bundled model's file, else the path
    as given."""
    p = Path(checkpoint).resolve()
    for name in ("bundled", "bundled-25", "bundled-prior", "bundled-32"):
        if BUNDLED_MODELS[name].resolve() == p:
            return name
    return str(checkpoint)


def fine_tune_prior_note(checkpoint: str | Path) -> str:
    """What `sm train --init-from` starts from when given this bundled model's name (sm info says it)."""
    name = bundled_name(checkpoint)
    prior = FINE_TUNE_PRIOR.get(name, name)
    why = (
        "an ordinary denoiser, n-feat 32, 6,172 GPU steps: bundled/prior/README.md"
        if prior == "bundled-prior"
        else "this model itself"
    )
    return f"fine-tuning from {name!r} starts from {prior} ({why})"


def attribution_meta(card: "ModelCard | None") -> dict[str, str]:
    """{"attribution": ...} for the atlas meta of sheets this model made (its card's, else its bundled
    set's), or {} when it owes none."""
    from scarlet_moon.data.sprites import ATTRIBUTION

    if card is None:
        return {}
    text = card.meta.get("data_attribution") or ATTRIBUTION.get(str(card.meta.get("data_source")))
    return {"attribution": str(text)} if text else {}


def model_path(path: str | Path | None) -> Path:
    """A --model argument as a file path: bundled names resolved, anything else as given."""
    return bundled_model_path(path) or Path(path)  # type: ignore[arg-type]


def read_checkpoint_card(path: str | Path | None = None) -> "ModelCard":
    """The card of a .safetensors checkpoint; None or 'bundled' = the bundled model, 'bundled-32' the 32x32 one."""
    bundled = bundled_model_path(path)
    p = bundled or Path(path)  # type: ignore[arg-type]
    if bundled is not None and not p.is_file():
        raise BadInput(
            f"the bundled model {str(path or 'bundled')!r} is missing ({p}); reinstall the package "
            f"or pass a {arg('model')}"
        )
    meta = read_meta(p)
    required = ("label_names", "image_size", "channels", "schedule", "prediction")
    missing = [k for k in required if k not in meta]
    if missing:
        raise BadInput(f"checkpoint {str(p)!r} lacks {', '.join(missing)} in its metadata")
    check_card_meta(meta, f"checkpoint {str(p)!r}")
    return ModelCard(p, meta)


@dataclass(frozen=True)
class ModelCard:
    path: Path
    meta: dict[str, Any]

    @property
    def label_names(self) -> list[str]:
        return list(self.meta["label_names"])

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.meta["image_size"]
        return int(h), int(w)

    @property
    def channels(self) -> int:
        return int(self.meta["channels"])

    @property
    def schedule(self) -> Schedule:
        return Schedule.from_dict(self.meta["schedule"])

    @property
    def prediction(self) -> str:
        return str(self.meta["prediction"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.meta.get("config", {}))

    @property
    def palette(self) -> np.ndarray | None:
        pal = self.meta.get("palette")
        return np.asarray(pal, np.uint8).reshape(-1, 3) if pal else None

    @property
    def guidance_base(self) -> float:
        """S for a guidance-distilled model (scarlet_moon.training.distill: its labelled rows already give the
        prediction guided at S), else 1. Backends sample with guidance w / S: one row at w = S."""
        return float((self.meta.get("distilled") or {}).get("guidance", 1.0))

    def guidance_between_rows(self, guidance: float | None) -> float:
        """The scale a backend applies between its labelled and null rows: the asked guidance
        (None: the card's default) over guidance_base; 1 means one row per sprite and step."""
        w = self.defaults()["guidance"] if guidance is None else float(guidance)
        return w / self.guidance_base

    def defaults(self) -> dict[str, Any]:
        """Sampler settings the model was trained to be sampled with."""
        cfg = self.config
        return {
            "sampler": cfg.get("sampler", "dpmpp-2m"),
            "steps": int(cfg.get("sample_steps", 20)),
            "guidance": float(cfg.get("guidance", 1.0)),
        }

    def post_defaults(self) -> dict[str, Any]:
        """Post-processing the model's sprites get unless asked otherwise: `cleanup` (on unless the card's
        `post` says off) and the colour cap with palette snapping (the card's `post.colors`, else the
        training set's 90th percentile of colours per sprite). bench/fidelity.py measures the choices."""
        post = self.meta.get("post") or {}
        colors = post.get("colors") or (self.meta.get("colors_per_sprite") or {}).get("p90")
        return {"cleanup": bool(post.get("cleanup", True)), "colors": colors}

    def fingerprint(self) -> str:
        """The weights' identity in sprite metadata: the checkpoint's file_fingerprint; for an exported
        .onnx, that of the checkpoint it came from (so both backends' sprites name the same model)."""
        source = (self.meta.get("onnx") or {}).get("source_fingerprint")
        return str(source) if source else file_fingerprint(self.path)

    def summary(self) -> dict[str, Any]:
        m = self.meta
        return {
            "path": str(self.path),
            "labels": self.label_names,
            "size": f"{self.size[0]}x{self.size[1]}",
            "channels": self.channels,
            "arch": self.config.get("arch"),
            "params": m.get("num_params"),
            "training_steps": m.get("step"),
            "schedule": m["schedule"],
            "prediction": self.prediction,
            "data_fingerprint": m.get("data_fingerprint"),
            "data_source": m.get("data_source"),
            "palette_colors": len(m.get("palette") or []),
            "metrics": m.get("metrics", {}),
            "package_version": m.get("package_version"),
            "defaults": self.defaults(),
            "post_defaults": self.post_defaults(),
            **({"post_chosen": m["post"]["source"]} if (m.get("post") or {}).get("source") else {}),
            **({"parent": m["parent"]} if m.get("parent") else {}),  # fine-tuned from (--init-from)
            **({"grid_copies": m["grid_copies"]} if m.get("grid_copies") else {}),  # the last sample grid's copies
            **({"init_from_bundled": fine_tune_prior_note(self.path)} if is_bundled_model(self.path) else {}),
            **({"fewstep": m["fewstep"]} if m.get("fewstep") else {}),
        }  # sm distill --few-step


def resolve_labels(specs: Sequence[str | int], names: Sequence[str]) -> list[int]:
    """Label names or indices -> indices; an unknown one is BadInput listing the labels."""
    allowed = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    out = []
    for spec in specs:
        s = str(spec).strip()
        if s in names:
            out.append(list(names).index(s))
        elif s.lstrip("-").isdigit() and 0 <= int(s) < len(names):
            out.append(int(s))
        else:
            raise BadInput(f"unknown label {s!r}; this model's labels are {allowed}")
    return out


def split_count(count: int, n_labels: int) -> list[int]:
    """`count` sprites over n labels: as even as possible, earlier labels first."""
    base, extra = divmod(count, n_labels)
    return [base + (1 if i < extra else 0) for i in range(n_labels)]


def write_card_entry(path: str | Path, key: str, value: Any) -> dict[str, Any]:
    """Set meta[key] = value in a checkpoint's card, atomically; the new meta.

    Only the safetensors header is rewritten: the tensor bytes are copied unchanged (offsets in
    the header are relative to the data section, so they stay valid)."""
    p = Path(path)
    meta = read_meta(p)  # checks it is one of our checkpoints, and not a pickle
    blob = p.read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + n])
    meta[key] = value
    header.setdefault("__metadata__", {})[META_KEY] = json.dumps(meta, sort_keys=True)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors keeps the data section 8-byte aligned
    write_file(p, struct.pack("<Q", len(raw)) + raw + blob[8 + n :])
    return meta
