"""Training configuration: a frozen, typed dataclass and the named presets.

The network's part is a ModelConfig of its own (`cfg.model`); the config is read and written
flat (TOML files, flags, the `config` of every checkpoint), so a model can be rebuilt from it.
Precedence when the CLI builds one: preset < TOML file < flags.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from scarlet_moon import limits
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.config import LEGACY_CHANNEL_MULT, ModelConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = ModelConfig()  # the network
    # diffusion
    schedule: str = "cosine"  # "linear" | "cosine" | "linear-zsnr"
    timesteps: int = 1000  # T, training timesteps
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction: str = "v"  # "eps" | "v"
    loss_weighting: str = "min-snr"  # "none" | "min-snr"
    min_snr_gamma: float = 5.0
    cond_drop: float = 0.1  # label dropout to the null label (classifier-free guidance)
    # optimisation
    steps: int = 6000
    time_budget: float = 0.0  # seconds of wall clock (0 = the steps decide); the LR schedule spans it
    batch_size: int = 64
    lr: float = 2e-4
    label_lr_scale: float = 1.0  # the label embedding rows learn at lr x this (fine-tuning: new labels)
    init_shrink: float = 1.0  # fine-tuning: start at shrink x the prior + (1 - shrink) x a fresh init (1: the prior)
    lr_schedule: str = "cosine"  # "constant" | "linear-decay" (the ancestor's) | "cosine"
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # 0 = off
    ema_decay: float = 0.999  # 0 = no EMA
    hflip: bool = True  # grid-safe augmentation: mirror left-right
    seed: int = 0
    # bookkeeping
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    sampler: str = "dpmpp-2m"  # used for the sample grids
    sample_steps: int = 25
    guidance: float = 2.0  # classifier-free guidance scale; 1 = off
    clip_x0: bool = True  # clip the predicted clean sprite to [-1, 1] while sampling

    def to_dict(self) -> dict[str, Any]:
        """Flat: the network's keys beside the rest (as stored in checkpoints and TOML files)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        return {**self.model.to_dict(), **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        """A stored config (a card's); one without `channel_mult` was built at the old default depth."""
        if d.get("channel_mult") is None:
            d = {**d, "channel_mult": list(LEGACY_CHANNEL_MULT)}
        return cls().replace(d, source=source)

    def replace(self, overrides: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        """A copy with `overrides` applied; unknown keys and bad types are BadInput."""
        net = set(ModelConfig.names())
        known = set(self.flat_names())
        clean: dict[str, Any] = {}
        for key, value in overrides.items():
            name = key.replace("-", "_")
            if name not in known:
                raise BadInput(f"unknown setting {key!r} in {source}; allowed: {', '.join(sorted(known))}")
            current = getattr(self.model if name in net else self, name)
            clean[name] = _coerce(name, value, current, source)
        model = dataclasses.replace(self.model, **{k: v for k, v in clean.items() if k in net})
        cfg = dataclasses.replace(self, model=model, **{k: v for k, v in clean.items() if k not in net})
        cfg.validate(source)
        return cfg

    @classmethod
    def flat_names(cls) -> list[str]:
        """Every setting's name as written in files and flags."""
        return [*ModelConfig.names(), *(f.name for f in fields(cls) if f.name != "model")]

    def get(self, name: str) -> Any:
        """A setting by its flat name."""
        return getattr(self.model, name) if name in ModelConfig.names() else getattr(self, name)

    def validate(self, source: str = "config") -> None:
        """Every value a run (and the model it writes) will need, checked before step 1, with the
        limits every command uses (scarlet_moon.limits, and the model card's checks)."""
        self.model.check(source)
        for ok, name, allowed in self._checks():
            if not ok:
                raise BadInput(f"bad {name}={getattr(self, name.split('/')[0])!r} in {source}; allowed: {allowed}")

    def _checks(self) -> list[tuple[bool, str, str]]:
        from scarlet_moon.diffusion.samplers import SAMPLERS

        finite = lambda v: math.isfinite(v)  # noqa: E731
        return [
            (self.schedule in ("linear", "cosine", "linear-zsnr"), "schedule", "linear, cosine, linear-zsnr"),
            (self.prediction in ("eps", "v"), "prediction", "eps, v"),
            (self.loss_weighting in ("none", "min-snr"), "loss_weighting", "none, min-snr"),
            (
                self.lr_schedule in ("constant", "linear-decay", "cosine"),
                "lr_schedule",
                "constant, linear-decay, cosine",
            ),
            (1 <= self.steps <= limits.MAX_STEPS, "steps", f"an integer 1..{limits.MAX_STEPS}"),
            (
                finite(self.time_budget) and 0 <= self.time_budget <= limits.MAX_TIME_BUDGET_S,
                "time_budget",
                f"0 (off) or seconds up to {limits.MAX_TIME_BUDGET_S:.0f} (like 90s, 30m, 2h)",
            ),
            (1 <= self.batch_size <= limits.MAX_BATCH, "batch_size", f"an integer 1..{limits.MAX_BATCH}"),
            (2 <= self.timesteps <= limits.MAX_TIMESTEPS, "timesteps", f"an integer 2..{limits.MAX_TIMESTEPS}"),
            (0 < self.beta_start <= self.beta_end < 1, "beta_start/beta_end", "0 < beta_start <= beta_end < 1"),
            (finite(self.lr) and 0 < self.lr <= 1, "lr", "a number in (0, 1]"),
            (
                finite(self.label_lr_scale) and 0 < self.label_lr_scale <= 1000 and self.lr * self.label_lr_scale <= 1,
                "label_lr_scale",
                f"a number in (0, 1000] with lr ({self.lr:g}) x label_lr_scale <= 1",
            ),
            (
                finite(self.init_shrink) and 0 < self.init_shrink <= 1,
                "init_shrink",
                "a number in (0, 1] (1: the prior's weights as they are)",
            ),
            (0 <= self.warmup_steps <= limits.MAX_STEPS, "warmup_steps", "an integer >= 0"),
            (finite(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "a finite number >= 0"),
            (finite(self.grad_clip) and self.grad_clip >= 0, "grad_clip", "a finite number >= 0 (0 = off)"),
            (finite(self.min_snr_gamma) and self.min_snr_gamma > 0, "min_snr_gamma", "a finite number > 0"),
            (0.0 <= self.cond_drop < 1.0, "cond_drop", "0 <= p < 1"),
            (0.0 <= self.ema_decay < 1.0, "ema_decay", "0 <= d < 1"),
            (0 <= self.seed <= limits.MAX_SEED, "seed", f"an integer 0..{limits.MAX_SEED}"),
            (
                self.schedule != "linear-zsnr" or self.prediction == "v",
                "prediction",
                "v with schedule linear-zsnr (eps cannot be inverted at zero SNR)",
            ),
            (0 <= self.sample_every <= limits.MAX_STEPS, "sample_every", f"an integer 0..{limits.MAX_STEPS} (0 = off)"),
            (
                0 <= self.checkpoint_every <= limits.MAX_STEPS,
                "checkpoint_every",
                f"an integer 0..{limits.MAX_STEPS} (0 = off)",
            ),
            (0 <= self.log_every <= limits.MAX_STEPS, "log_every", f"an integer 0..{limits.MAX_STEPS} (0 = off)"),
            (self.sampler in SAMPLERS, "sampler", ", ".join(SAMPLERS)),
            (1 <= self.sample_steps <= self.timesteps, "sample_steps", f"an integer 1..timesteps ({self.timesteps})"),
            (finite(self.guidance), "guidance", "a finite number (1 = no guidance)"),
        ]


def check_training_memory(
    cfg: TrainConfig, *, channels: int = 4, size: tuple[int, int] = (8, 8), num_classes: int = 1, what: str = "training"
) -> None:
    """Refuse a run whose network, optimizer and step would not fit the memory budget (scarlet_moon.memory),
    from the config alone: nothing is built. Without the data (defaults) it is a lower bound: the
    smallest sprites, one label; the run checks again once the data is read."""
    from scarlet_moon import memory

    if cfg.model.arch != "unet":  # the seed network is fixed and small
        return
    mult = cfg.model.channel_mult or (1, 2)
    params, acts = memory.unet_footprint(cfg.model.n_feat, mult, channels, size, num_classes, cfg.model.attention)
    memory.check(
        memory.training_bytes(params, acts, cfg.batch_size),
        f"{what} (n_feat {cfg.model.n_feat}, channel_mult {list(mult)}, {params:,} parameters, "
        f"batch {cfg.batch_size} of {size[1]}x{size[0]})",
    )


def parse_duration(value: Any) -> float:
    """'90s', '30m', '1.5h', '2d' or a number of seconds -> seconds; BadInput otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(text[-1:], None)
    try:
        return float(text[:-1] if scale else text) * (scale or 1)
    except ValueError:
        raise BadInput(f"{arg('time')} {value!r}: expected a duration like 90s, 30m, 1.5h (or seconds)") from None


def _coerce(name: str, value: Any, current: Any, source: str) -> Any:
    if name == "channel_mult":
        if value == "auto":  # the depth the sprite size gets (models.config.channel_mult_for)
            return None
        current = ()
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
    expected = {
        bool: "true or false",
        tuple: "a list of whole numbers",
        int: "a whole number",
        float: "a number",
        str: "text",
    }.get(type(current), type(current).__name__)
    raise BadInput(f"bad {name}={value!r} in {source}; expected {expected}")


# The ancestor's recipe (DeepLearning.AI ContextUnet): kept so every claim is measured against it.
SEED = TrainConfig(
    model=ModelConfig(arch="seed", n_feat=64, attention=False),
    schedule="linear",
    timesteps=500,
    beta_start=1e-4,
    beta_end=0.02,
    prediction="eps",
    loss_weighting="none",
    cond_drop=0.1,
    batch_size=100,
    lr=1e-3,
    lr_schedule="linear-decay",
    warmup_steps=0,
    grad_clip=0.0,
    ema_decay=0.0,
    hflip=False,
    sampler="ddpm",
    sample_steps=500,
    guidance=1.0,
    clip_x0=False,
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
    except OSError as exc:
        raise BadInput(f"config file {str(p)!r} cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    return dict(data.get("train", data))
