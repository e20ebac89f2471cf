"""Training configuration: a frozen, typed dataclass and the named presets.

Precedence when the CLI builds one: preset < TOML file (--config) < flags.
The whole config is stored in every checkpoint, so a model can be rebuilt from it.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from scarlet_moon.errors import BadInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class TrainConfig:
    # network
    arch: str = "unet"               # "seed" (the ancestor's ContextUnet) | "unet" (ours)
    n_feat: int = 32                 # base channel count
    channel_mult: tuple[int, ...] = (1, 2, 4)  # "unet" only: channel multiplier per resolution level
    attention: bool = True           # "unet" only: self-attention at the lowest resolution
    dropout: float = 0.0
    # diffusion
    schedule: str = "cosine"         # "linear" | "cosine" | "linear-zsnr"
    timesteps: int = 1000            # T, training timesteps
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction: str = "v"            # "eps" | "v"
    loss_weighting: str = "min-snr"  # "none" | "min-snr"
    min_snr_gamma: float = 5.0
    cond_drop: float = 0.1           # label dropout to the null label (classifier-free guidance)
    # optimisation
    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-4
    lr_schedule: str = "cosine"      # "constant" | "linear-decay" (the ancestor's) | "cosine"
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0           # 0 = off
    ema_decay: float = 0.999         # 0 = no EMA
    hflip: bool = True               # grid-safe augmentation: mirror left-right
    seed: int = 0
    # bookkeeping
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    sampler: str = "dpmpp-2m"        # used for the sample grids
    sample_steps: int = 25
    guidance: float = 2.0            # classifier-free guidance scale; 1 = off
    clip_x0: bool = True             # clip the predicted clean sprite to [-1, 1] while sampling

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        return cls().replace(d, source=source)

    def replace(self, overrides: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        """A copy with `overrides` applied; unknown keys and bad types are BadInput."""
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for key, value in overrides.items():
            name = key.replace("-", "_")
            if name not in known:
                allowed = ", ".join(sorted(known))
                raise BadInput(f"unknown setting {key!r} in {source}; allowed: {allowed}")
            clean[name] = _coerce(name, value, getattr(self, name), source)
        cfg = dataclasses.replace(self, **clean)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        checks = [
            (self.arch in ("seed", "unet"), "arch", "seed, unet"),
            (self.schedule in ("linear", "cosine", "linear-zsnr"), "schedule", "linear, cosine, linear-zsnr"),
            (self.prediction in ("eps", "v"), "prediction", "eps, v"),
            (self.loss_weighting in ("none", "min-snr"), "loss_weighting", "none, min-snr"),
            (self.lr_schedule in ("constant", "linear-decay", "cosine"), "lr_schedule",
             "constant, linear-decay, cosine"),
            (self.steps >= 1, "steps", "an integer >= 1"),
            (self.batch_size >= 1, "batch_size", "an integer >= 1"),
            (self.timesteps >= 2, "timesteps", "an integer >= 2"),
            (self.lr > 0, "lr", "a number > 0"),
            (0.0 <= self.cond_drop < 1.0, "cond_drop", "0 <= p < 1"),
            (0.0 <= self.ema_decay < 1.0, "ema_decay", "0 <= d < 1"),
            (self.schedule != "linear-zsnr" or self.prediction == "v", "prediction",
             "v with schedule linear-zsnr (eps cannot be inverted at zero SNR)"),
            (self.n_feat >= 8 and self.n_feat % 8 == 0, "n_feat", "a multiple of 8, >= 8"),
            (min(self.sample_every, self.checkpoint_every, self.log_every) >= 0,
             "sample_every/checkpoint_every/log_every", "integers >= 0"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise BadInput(f"bad {name}={getattr(self, name.split('/')[0])!r} in {source}; allowed: {allowed}")


def _coerce(name: str, value: Any, current: Any, source: str) -> Any:
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(current, tuple):
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
            return tuple(value)
    elif isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(current, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(current, str):
        if isinstance(value, str):
            return value
    raise BadInput(f"bad {name}={value!r} in {source}; expected {type(current).__name__}")


# The ancestor's recipe (DeepLearning.AI ContextUnet): kept so every claim is measured against it.
SEED = TrainConfig(
    arch="seed", n_feat=64, attention=False, schedule="linear", timesteps=500, beta_start=1e-4,
    beta_end=0.02, prediction="eps", loss_weighting="none", cond_drop=0.1, batch_size=100, lr=1e-3,
    lr_schedule="linear-decay", warmup_steps=0, grad_clip=0.0, ema_decay=0.0, hflip=False,
    sampler="ddpm", sample_steps=500, guidance=1.0, clip_x0=False,
)
DEFAULT = TrainConfig()
PRESETS: dict[str, TrainConfig] = {"default": DEFAULT, "seed": SEED}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise BadInput(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]


def load_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file: top-level keys, or a [train] table."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"config file {str(p)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    return dict(data.get("train", data))
