"""A run's sample grids: GRID_PER_LABEL raw sprites per label from the weights being trained, at a
fixed seed, one row per label. They are saved and logged on schedule, tell how much of the model's
output copies a training sprite (training.memorise), and the last one chooses the card's finishing
(eval.post_choice.texture_post)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scarlet_moon.data.pixels import make_grid
from scarlet_moon.data.png import save_png
from scarlet_moon.data.sprites import SpriteSet
from scarlet_moon.models.card import ModelCard
from scarlet_moon.training.config import TrainConfig
from scarlet_moon.training.memorise import grid_copy_share
from scarlet_moon.training.state import TrainState, schedule_of
from scarlet_moon.training.tracking import MultiTracker

GRID_PER_LABEL = 8


def sample_grid(state: TrainState, cfg: TrainConfig, data: SpriteSet, path: Path | None, device: str) -> np.ndarray:
    """GRID_PER_LABEL sprites per label from the EMA weights, one row per label, fixed seed, raw
    (the one generation loop, on the network being trained), saved to `path` unless None; the sprites."""
    from scarlet_moon.backends.torch_backend import TorchDenoiser
    from scarlet_moon.generation.chunks import generate_all
    from scarlet_moon.generation.request import Request
    from scarlet_moon.options import SamplingOptions

    card = ModelCard(
        path or Path("grid.png"),
        {
            "label_names": list(data.label_names),
            "image_size": list(data.size),
            "channels": int(data.images.shape[-1]),
            "schedule": schedule_of(cfg).to_dict(),
            "prediction": cfg.prediction,
            "config": cfg.to_dict(),
        },
    )
    den = TorchDenoiser(card, state.ema or state.model, device)
    labels = tuple(k for k in range(len(data.label_names)) for _ in range(GRID_PER_LABEL))
    req = Request(labels, seed=cfg.seed, sampling=SamplingOptions(cfg.sampler, cfg.sample_steps, cfg.guidance))
    sprites = generate_all(den, req, raw=True)
    if path is not None:
        save_png(make_grid(sprites, GRID_PER_LABEL), path)
    return sprites


def log_grid(
    state: TrainState, cfg: TrainConfig, data: SpriteSet, run_dir: Path, device: str, tracker: MultiTracker
) -> tuple[float, np.ndarray]:
    """The step's sample grid saved and logged: (the share of it that copies a training sprite, its sprites)."""
    path = run_dir / "samples" / f"step_{state.step:06d}.png"
    sprites = sample_grid(state, cfg, data, path, device)
    share = grid_copy_share(sprites, data.images)
    tracker.log_artifact(path, "samples")
    tracker.log_metrics({"grid_copies": share}, state.step)
    return share, sprites
