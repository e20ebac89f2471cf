"""Fine-tuning from a prior: a new run that starts from an existing model's weights (`--init-from`).

The network and its noise schedule come from the parent (its card's config); the optimisation
settings (steps, lr, batch, time budget...) from the run, with a fine-tune's own defaults
(FINE_TUNE_DEFAULTS). Labels may differ: a label whose name the parent knows keeps its embedding row,
a new label keeps the row the run's fresh network drew for it (label_rows), and the null label
(guidance) keeps its row. Sprite size and channels must match. The run's card and tracking record
the parent.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import torch

from scarlet_moon.data.sprites import SpriteSet
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import (
    BUNDLED_MODEL,
    BUNDLED_MODELS,
    FINE_TUNE_PRIOR,
    ModelCard,
    bundled_name,
    file_fingerprint,
    model_path,
    read_checkpoint_card,
)
from scarlet_moon.models.config import ModelConfig
from scarlet_moon.training.config import TrainConfig
from scarlet_moon.training.state import TrainState

log = logging.getLogger(__name__)
FROM_PARENT = (*ModelConfig.names(), "schedule", "timesteps", "beta_start", "beta_end", "prediction")
LABEL_ROWS = "label_emb.weight"  # SpriteUNet: one embedding row per label, then the null label
# Settings a fine-tune takes unless asked otherwise (bench/results/finetune.md measured them).
# lr 1e-3 and shrink 0.5: ahead of scratch on both judges' FD at 10 minutes on minetest and micropolis
# (bench/results/finetune-recipe.md, 2026-12-05); at lr 2e-4 without shrink the prior lost to scratch.
FINE_TUNE_DEFAULTS: dict[str, Any] = {"label_lr_scale": 10.0, "lr": 1e-3, "init_shrink": 0.5}


def parent_card(spec: str | Path, *, anim: bool = False) -> ModelCard:
    """The model to start from: 'bundled', 'bundled-32' or a .safetensors checkpoint. 'bundled' (the
    few-step student, which predicts jumps) stands for bundled-prior, an ordinary denoiser trained with
    the plain diffusion loss: a guidance-distilled or few-step network has learnt another objective,
    which a short fine-tune first has to unlearn (bench/results/finetune.md). An animation model
    (models.anim) can start only an animation model (`anim`)."""
    path = model_path(spec)
    if str(path).lower().endswith(".onnx"):
        raise BadInput(f"{arg('init_from')} {str(spec)!r} is ONNX; fine-tuning needs the .safetensors checkpoint")
    if path.resolve() == BUNDLED_MODEL.resolve():
        path = BUNDLED_MODELS[FINE_TUNE_PRIOR["bundled"]]
    card = read_checkpoint_card(path)
    if card.meta.get("anim") is not None and not anim:
        raise BadInput(
            f"{arg('init_from')} {str(spec)!r} is an animation model: it starts animation models only "
            "(train on an animated set), not a sprite model"
        )
    if card.meta.get("fewstep"):
        raise BadInput(
            f"{arg('init_from')} {str(spec)!r} is a few-step student (its card has fewstep): its network "
            "predicts jumps, not noise; fine-tune its teacher instead"
        )
    if card.config.get("arch", "unet") != "unet":
        raise BadInput(
            f"{arg('init_from')} {str(spec)!r} is a {card.config.get('arch')!r} network; fine-tuning "
            "takes a model of the unet arch"
        )
    return card


def config_from_parent(cfg: TrainConfig, parent: ModelCard, given: Iterable[str]) -> TrainConfig:
    """`cfg` with the parent's network and schedule; a setting given for the run that differs from the
    parent's is BadInput naming each (it cannot change without starting over)."""
    theirs = TrainConfig.from_dict(parent.config, source=f"the card of {str(parent.path)!r}")
    clash = [k for k in given if k in FROM_PARENT and cfg.get(k) != theirs.get(k)]
    if clash:
        listed = ", ".join(f"{k} (parent {theirs.get(k)!r}, asked {cfg.get(k)!r})" for k in clash)
        raise BadInput(
            f"{arg('init_from')} {str(parent.path)!r}: {listed}: the network and noise schedule come "
            "from the model fine-tuned; leave them out"
        )
    defaults = {k: v for k, v in FINE_TUNE_DEFAULTS.items() if k not in given}
    return cfg.replace({**{k: theirs.get(k) for k in FROM_PARENT}, **defaults}, source="fine-tuning")


def check_data(parent: ModelCard, data: SpriteSet) -> None:
    if parent.size != data.size or parent.channels != data.images.shape[-1]:
        raise BadInput(
            f"{arg('init_from')} {str(parent.path)!r} makes {parent.size[1]}x{parent.size[0]} sprites "
            f"with {parent.channels} channels; the data {data.source!r} holds {data.size[1]}x{data.size[0]} "
            f"with {data.images.shape[-1]}: fine-tuning needs the same size"
        )


def load_parent(state: TrainState, parent: ModelCard, data: SpriteSet, cfg: TrainConfig) -> dict[str, Any]:
    """Copy the parent's sampling weights into the run's network (and its EMA); a new label keeps the
    row the run's fresh network drew for it (label_rows). Returns what the card records about the parent."""
    from scarlet_moon.models.checkpoint import load_checkpoint

    labels = list(data.label_names)
    weights = {k: v.float() for k, v in load_checkpoint(parent.path, with_optim=False).weights.items()}
    weights = shrunk(weights, state.model.state_dict(), cfg.init_shrink)
    emb = getattr(state.model, "label_emb", None)
    fresh = emb.weight.detach().clone() if isinstance(emb, torch.nn.Embedding) else None
    weights[LABEL_ROWS] = label_rows(weights[LABEL_ROWS], parent.label_names, labels, fresh)
    load_weights((state.model, state.ema), weights, parent.path)
    kept = [n for n in labels if n in parent.label_names]
    log.info(
        "fine-tuning %s: %d of %d labels keep their embedding (%s); the others start from fresh rows",
        parent.path.name,
        len(kept),
        len(labels),
        ", ".join(kept) or "none",
    )
    return {
        "fingerprint": file_fingerprint(parent.path),
        "name": bundled_name(parent.path),
        "labels": parent.label_names,
        "labels_kept": kept,
        "step": parent.meta.get("step"),
    }


def load_weights(nets: Iterable[torch.nn.Module | None], weights: dict[str, torch.Tensor], path: Path) -> None:
    """The parent's `weights` into each network (the run's model and its EMA; None skipped); weights that do
    not fit are BadInput naming the parent."""
    for net in nets:
        if net is None:
            continue
        try:
            net.load_state_dict(weights)
        except RuntimeError as exc:
            raise BadInput(
                f"{arg('init_from')} {str(path)!r}: its weights do not fit its config ({str(exc).splitlines()[0]})"
            ) from None


def shrunk(weights: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], shrink: float) -> dict[str, torch.Tensor]:
    """Shrink and perturb (Ash & Adams 2020, a warm start that generalises like a fresh one): every
    weight but the label rows at `shrink` x the prior's + (1 - shrink) x the run's fresh init; 1 keeps
    the prior as it is. Zero-initialised layers (a residual branch's last conv) just shrink."""
    if shrink >= 1:
        return weights
    return {
        k: shrink * w + (1 - shrink) * fresh[k].float()
        if k != LABEL_ROWS and k in fresh and fresh[k].shape == w.shape and w.is_floating_point()
        else w
        for k, w in weights.items()
    }


def label_rows(
    rows: torch.Tensor, theirs: list[str], ours: list[str], fresh: torch.Tensor | None = None
) -> torch.Tensor:
    """The embedding rows for `ours` + null: a row of the same name, else the run's fresh row for that
    label (`fresh`, [len(ours) + 1, D]; without it the mean of the parent's label rows); the parent's null
    row (its last) last.

    Why fresh rows: the prior's rows are still near their random start (norms ~sqrt(D), pairwise
    distances ~sqrt(2 D): Adam at 2e-4 barely moves them), and its network has learnt to read such
    codes. A mean row is short and shared by every new label, a best-matching parent row is often
    shared by several: either way the labels start identical and take thousands of CPU steps to part
    (bench/results/finetune.md). Fresh rows are distinct codes of the same kind from step 0."""
    mean = rows[: len(theirs)].mean(dim=0)
    new = [rows[theirs.index(n)] if n in theirs else mean if fresh is None else fresh[k] for k, n in enumerate(ours)]
    return torch.stack([*new, rows[len(theirs)]]).clone()
