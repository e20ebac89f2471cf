"""Fine-tuning from a prior: a new run that starts from an existing model's weights (`--init-from`).

The network and its noise schedule come from the parent (its card's config); the optimisation
settings (steps, lr, batch, time budget...) from the run. Labels may differ: a label whose name the
parent knows keeps its embedding row, a new label starts from the mean of the parent's label rows
(a label-agnostic start the data then pulls apart), and the null label (guidance) keeps its row.
Sprite size and channels must match. The run's card and tracking record the parent.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from scarlet_moon.data.sprites import SpriteSet
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import (BUNDLED_MODEL, BUNDLED_MODELS, FINE_TUNE_PRIOR, ModelCard, bundled_name, file_fingerprint,
                                      model_path, read_checkpoint_card)
from scarlet_moon.models.config import ModelConfig
from scarlet_moon.training.config import TrainConfig
from scarlet_moon.training.state import TrainState

log = logging.getLogger(__name__)
FROM_PARENT = (*ModelConfig.names(), "schedule", "timesteps", "beta_start", "beta_end", "prediction")
LABEL_ROWS = "label_emb.weight"  # SpriteUNet: one embedding row per label, then the null label
# Settings a fine-tune takes unless asked otherwise (bench/results/finetune.md measured them).
FINE_TUNE_DEFAULTS: dict[str, Any] = {"label_lr_scale": 10.0}
MATCH_SPRITES = 64  # sprites per new label scored under each parent row (row_matches)


def parent_card(spec: str | Path) -> ModelCard:
    """The model to start from: 'bundled', 'bundled-32' or a .safetensors checkpoint. 'bundled' (the
    few-step student, which predicts jumps) stands for bundled-prior, an ordinary denoiser trained with
    the plain diffusion loss: a guidance-distilled or few-step network has learnt another objective,
    which a short fine-tune first has to unlearn (bench/results/finetune.md)."""
    path = model_path(spec)
    if str(path).lower().endswith(".onnx"):
        raise BadInput(f"{arg('init_from')} {str(spec)!r} is ONNX; fine-tuning needs the .safetensors checkpoint")
    if path.resolve() == BUNDLED_MODEL.resolve():
        path = BUNDLED_MODELS[FINE_TUNE_PRIOR["bundled"]]
    card = read_checkpoint_card(path)
    if card.meta.get("fewstep"):
        raise BadInput(f"{arg('init_from')} {str(spec)!r} is a few-step student (its card has fewstep): its network "
                       "predicts jumps, not noise; fine-tune its teacher instead")
    if card.config.get("arch", "unet") != "unet":
        raise BadInput(f"{arg('init_from')} {str(spec)!r} is a {card.config.get('arch')!r} network; fine-tuning "
                       "takes a model of the unet arch")
    return card


def config_from_parent(cfg: TrainConfig, parent: ModelCard, given: Iterable[str]) -> TrainConfig:
    """`cfg` with the parent's network and schedule; a setting given for the run that differs from the
    parent's is BadInput naming each (it cannot change without starting over)."""
    theirs = TrainConfig.from_dict(parent.config, source=f"the card of {str(parent.path)!r}")
    clash = [k for k in given if k in FROM_PARENT and cfg.get(k) != theirs.get(k)]
    if clash:
        listed = ", ".join(f"{k} (parent {theirs.get(k)!r}, asked {cfg.get(k)!r})" for k in clash)
        raise BadInput(f"{arg('init_from')} {str(parent.path)!r}: {listed}: the network and noise schedule come "
                       "from the model fine-tuned; leave them out")
    defaults = {k: v for k, v in FINE_TUNE_DEFAULTS.items() if k not in given}
    return cfg.replace({**{k: theirs.get(k) for k in FROM_PARENT}, **defaults}, source="fine-tuning")


def check_data(parent: ModelCard, data: SpriteSet) -> None:
    if parent.size != data.size or parent.channels != data.images.shape[-1]:
        raise BadInput(f"{arg('init_from')} {str(parent.path)!r} makes {parent.size[1]}x{parent.size[0]} sprites "
                       f"with {parent.channels} channels; the data {data.source!r} holds {data.size[1]}x{data.size[0]} "
                       f"with {data.images.shape[-1]}: fine-tuning needs the same size")


def load_parent(state: TrainState, parent: ModelCard, data: SpriteSet, cfg: TrainConfig) -> dict[str, Any]:
    """Copy the parent's sampling weights into the run's network (and its EMA); a new label's row starts
    as the parent row that best explains its sprites (row_matches). Returns what the card records about
    the parent."""
    from scarlet_moon.models.checkpoint import load_checkpoint

    labels = list(data.label_names)
    weights = {k: v.float() for k, v in load_checkpoint(parent.path, with_optim=False).weights.items()}
    matches = row_matches(state.model, weights, parent.label_names, data, cfg)
    weights[LABEL_ROWS] = label_rows(weights[LABEL_ROWS], parent.label_names, labels, matches)
    for net in (state.model, state.ema):
        if net is None:
            continue
        try:
            net.load_state_dict(weights)
        except RuntimeError as exc:
            raise BadInput(f"{arg('init_from')} {str(parent.path)!r}: its weights do not fit its config "
                           f"({str(exc).splitlines()[0]})") from None
    kept = [n for n in labels if n in parent.label_names]
    log.info("fine-tuning %s: %d of %d labels keep their embedding (%s); new labels start from %s",
             parent.path.name, len(kept), len(labels), ", ".join(kept) or "none",
             ", ".join(f"{k}<-{v}" for k, v in matches.items()) or "none")
    return {"fingerprint": file_fingerprint(parent.path), "name": bundled_name(parent.path), "labels": parent.label_names,
            "labels_kept": kept, "labels_matched": matches, "step": parent.meta.get("step")}


def label_rows(rows: torch.Tensor, theirs: list[str], ours: list[str],
               matches: dict[str, str] | None = None) -> torch.Tensor:
    """The embedding rows for `ours` + null: a row of the same name, else the row of its match in
    `theirs`, else the mean of the parent's label rows; the parent's null row (its last) last."""
    mean, matches = rows[:len(theirs)].mean(dim=0), matches or {}
    pick = lambda n: theirs.index(n) if n in theirs else theirs.index(matches[n]) if n in matches else None  # noqa: E731
    new = [mean if pick(n) is None else rows[pick(n)] for n in ours]
    return torch.stack([*new, rows[len(theirs)]]).clone()


@torch.no_grad()
def row_matches(net: torch.nn.Module, weights: dict[str, torch.Tensor], theirs: list[str], data: SpriteSet,
                cfg: TrainConfig) -> dict[str, str]:
    """{new label: the parent label under whose row the parent denoises that label's sprites best}: the
    same MATCH_SPRITES sprites, noise and timesteps scored under each parent row (the diffusion loss).
    A new label thus starts where the prior already draws something like it, not at a shared mean."""
    from scarlet_moon.diffusion.scaling import to_model_range
    from scarlet_moon.training.loop import diffusion_loss
    from scarlet_moon.training.state import schedule_of

    new = [(k, n) for k, n in enumerate(data.label_names) if n not in theirs]
    if not new or not theirs:
        return {}
    probe = copy.deepcopy(net).cpu().eval()
    probe.label_emb = torch.nn.Embedding.from_pretrained(weights[LABEL_ROWS].clone())  # the parent's label count
    try:
        probe.load_state_dict(weights)
    except RuntimeError as exc:
        raise BadInput(f"{arg('init_from')}: the parent's weights do not fit its config "
                       f"({str(exc).splitlines()[0]})") from None
    abar = torch.from_numpy(schedule_of(cfg).alphas_cumprod()).float()
    g = torch.Generator().manual_seed(cfg.seed)
    out = {}
    for k, name in new:
        idx = np.flatnonzero(data.labels == k)[:MATCH_SPRITES]
        x0 = torch.from_numpy(to_model_range(data.images[idx]))
        t, noise = torch.randint(0, cfg.timesteps, (len(idx),), generator=g), torch.randn(x0.shape, generator=g)
        losses = [float(diffusion_loss(probe, x0, torch.full((len(idx),), j), t, noise, abar, cfg))
                  for j in range(len(theirs))]
        out[name] = theirs[int(np.argmin(losses))]
    return out
