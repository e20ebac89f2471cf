"""Quality figures of a model's sprites (`sm eval`), and the numpy metric functions behind them.

    from scarlet_moon.eval.metrics import evaluate
    figures = evaluate(None, None, seed=0)       # bundled model, bundled data, as many sprites as held out

Four figure groups, each measured for a candidate set against the TRAIN part of the real data
(`split_holdout(data, 0.2, seed 0)`, stratified, the same split the classifier learns from):

- "frechet": Frechet distance between the candidates and the train split in the 64-d
  penultimate feature space of the eval classifier (see scarlet_moon.eval.classifier), beside its
  floor (the held-out split's own distance). FD is biased upward for small sets (at 193 sprites
  the bundled model scores 1.2-1.4x what it scores at 600), so `ratio_to_floor` is given only when the
  candidates are as many as the held-out sprites, in its class mix: the default count.
- "conditional_accuracy": the share of candidates the classifier puts in the label they were
  generated for (overall and per label).
- "copies": the share of candidates whose nearest train sprite is within COPY_THRESHOLD in
  mean absolute RGBA difference (uint8 units, 0..255, averaged over all H*W*4 values).
- "pixels": the fidelity figures of scarlet_moon.eval.fidelity (isolated-pixel and speck rates,
  saturation, luma of opaque pixels) for the candidates, the train split ("real") and the held-out
  split (the floor a model is held to); mean distinct opaque colours per sprite, and alpha crispness (the share of alpha
  values that are exactly 0 or 255), for the candidates and for the real train split.

The candidates are generated sprites (after `finish`, as `sm sample` writes them, unless
raw=True): by default exactly the held-out split's count per label; with another count, spread
over the labels in proportion to the real label frequencies (at least one per label when count >=
the number of labels). With real=True
the held-out split stands in for them: the floor each figure can reach (no model needed).

The metric functions are numpy only (no scipy, no torch); torch is imported for the
classifier and generation only.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from scarlet_moon import memory
from scarlet_moon.backends import BackendOptions
from scarlet_moon.data.pixels import alpha_crispness, colors_per_sprite  # noqa: F401  (re-exported)
from scarlet_moon.data.sprites import SpriteSet
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.eval.fidelity import fidelity
from scarlet_moon.generation.chunks import CHUNK_SIZE
from scarlet_moon.limits import MAX_COUNT
from scarlet_moon.models.card import ModelCard
from scarlet_moon.options import SamplingOptions

SCHEMA = "scarlet-moon-eval/3"  # 2: pixels gained the fidelity figures; 3: frechet gained floor, ratio_to_floor, like_for_like
FIDELITY = ("isolated_rate", "speck_rate", "saturation", "luma")
COPY_THRESHOLD = 2.0  # mean |a - b| over RGBA uint8 values; an exact copy is 0

ProgressFn = Callable[[int, int], None]


# ------------------------------------------------------------------ metric functions (numpy)
def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigh; negative eigenvalues -> 0)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N x D) and b (M x D).

    |mu_a - mu_b|^2 + tr(Sa) + tr(Sb) - 2 tr((Sa Sb)^1/2), with tr((Sa Sb)^1/2) computed as
    tr((Sa^1/2 Sb Sa^1/2)^1/2): the same eigenvalues, but a symmetric PSD product.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise BadInput(f"frechet_distance needs two N x D feature sets with N >= 2, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sa, sb = np.cov(a, rowvar=False).reshape(a.shape[1], -1), np.cov(b, rowvar=False).reshape(b.shape[1], -1)
    root = _psd_sqrt(sa)
    cross = np.linalg.eigvalsh((root @ sb @ root + (root @ sb @ root).T) / 2)
    tr_cross = float(np.sqrt(np.clip(cross, 0, None)).sum())
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * tr_cross)
    return max(fd, 0.0)


def nearest_distances(images: np.ndarray, reference: np.ndarray, chunk: int = 64) -> np.ndarray:
    """For each sprite: the mean absolute RGBA difference (uint8 units) to its nearest reference sprite."""
    x = np.asarray(images).reshape(len(images), -1).astype(np.int16)
    r = np.asarray(reference).reshape(len(reference), -1).astype(np.int16)
    if len(r) == 0 or x.shape[1] != r.shape[1]:
        raise BadInput(f"nearest_distances: reference {np.shape(reference)} does not fit images {np.shape(images)}")
    out = np.empty(len(x), np.float64)
    for i in range(0, len(x), chunk):
        d = np.abs(x[i : i + chunk, None, :] - r[None, :, :]).sum(axis=2, dtype=np.int64)
        out[i : i + chunk] = d.min(axis=1) / x.shape[1]
    return out


def copy_share(images: np.ndarray, reference: np.ndarray, threshold: float = COPY_THRESHOLD) -> dict[str, Any]:
    """Share of sprites within `threshold` of a reference sprite, and the nearest-distance summary."""
    d = nearest_distances(images, reference)
    return {
        "share": float((d <= threshold).mean()),
        "threshold": threshold,
        "distance": "mean absolute RGBA difference to the nearest train sprite (uint8 units, 0-255)",
        "mean_nearest": float(d.mean()),
        "median_nearest": float(np.median(d)),
        "copies": int((d <= threshold).sum()),
        "n": int(len(d)),
    }


def pixel_stats(images: np.ndarray) -> dict[str, float]:
    return {"colours_per_sprite": float(colors_per_sprite(images).mean()), "alpha_crispness": alpha_crispness(images)}


def spread_labels(counts: list[int], total: int) -> list[int]:
    """`total` over labels in proportion to `counts` (largest remainder; >= 1 each when total allows)."""
    counts_a = np.asarray(counts, np.float64)
    k = len(counts_a)
    if counts_a.sum() <= 0:
        counts_a = np.ones(k)
    share = counts_a / counts_a.sum() * total
    base = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - base), kind="stable")
    base[order[: total - int(base.sum())]] += 1
    present = counts_a > 0
    if total >= int(present.sum()):
        for i in np.nonzero(present & (base == 0))[0]:
            base[int(np.argmax(base))] -= 1
            base[i] = 1
    return [int(v) for v in base]


# ------------------------------------------------------------------ evaluate
def load_inputs(
    model: ModelCard | str | Path | None, data: SpriteSet | str | Path | None, need_model: bool
) -> tuple[ModelCard | None, SpriteSet]:
    from scarlet_moon.backends import read_card
    from scarlet_moon.data.sprites import load_sprites

    card = None
    if isinstance(model, ModelCard):
        card = model
    elif model is not None or need_model:
        card = read_card(model)
    if data is None and card is not None:
        data = data_of(card)
    ds = data if isinstance(data, SpriteSet) else load_sprites(data)
    if card is not None:
        if card.label_names != list(ds.label_names):
            raise BadInput(
                f"data {ds.source!r} has labels {list(ds.label_names)}; model {str(card.path)!r} "
                f"was trained on labels {card.label_names}"
            )
        if card.size != ds.size:
            raise BadInput(
                f"data {ds.source!r} holds {ds.size[0]}x{ds.size[1]} sprites; model "
                f"{str(card.path)!r} makes {card.size[0]}x{card.size[1]}"
            )
    return card, ds


def data_of(card: ModelCard) -> SpriteSet | None:
    """The set the model was trained on, loaded as it was (its card records where and how), or None for the
    bundled 16x16 set; BadInput when that set is not on this machine."""
    from scarlet_moon.data.sprites import bundled_source, load_sprites

    source = str(card.meta.get("data_source") or "bundled:angband16")
    if source.startswith("bundled:"):
        name = bundled_source(source)
        if name is None:
            raise BadInput(
                f"model {str(card.path)!r} was trained on {source!r}, which this version does not "
                f"bundle; pass the real sprites with {arg('data')}"
            )
        return None if name == "bundled:angband16" else load_sprites(name)
    if not Path(source).exists():
        raise BadInput(
            f"model {str(card.path)!r} was trained on {source!r}, which is not here; pass the real "
            f"sprites with {arg('data')}"
        )
    options = card.meta.get("data_options") or {}
    return load_sprites(source, **{k: v for k, v in options.items() if k in ("tile", "background_key", "size")})


def generate_for_eval(
    card: ModelCard,
    labels: list[int],
    *,
    seed: int,
    sampling: SamplingOptions,
    raw: bool,
    backend: BackendOptions,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Sprites for `labels` through the one generation loop (generation.chunks), RGBA uint8."""
    from scarlet_moon.backends import open_denoiser
    from scarlet_moon.generation.chunks import generate_all
    from scarlet_moon.generation.request import Request

    den = open_denoiser(
        card, backend=backend.backend, device=backend.device, fp16=backend.fp16, compile=backend.compile
    )
    images = generate_all(
        den,
        Request(tuple(labels), seed=seed, sampling=sampling),
        raw=raw,
        progress=None if progress is None else lambda done, total: progress(int(done), total),
    )
    if images.shape[-1] == 3:
        images = np.concatenate([images, np.full(images.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    return images


def evaluate(
    model: ModelCard | str | Path | None = None,
    data: SpriteSet | str | Path | None = None,
    *,
    count: int | None = None,
    seed: int = 0,
    sampling: SamplingOptions | None = None,
    real: bool = False,
    raw: bool = False,
    cache_dir: str | Path | None = None,
    backend: BackendOptions | None = None,
    progress: ProgressFn | None = None,
    classifier_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """All eval figures as a JSON-able dict (see the module docstring).

    model: a ModelCard, a model path, or None (the bundled model; with real=True, None means no
    model at all). data: a SpriteSet, a path, or None (the bundled sprites). count: None generates
    as many sprites per label as the held-out split has, so that FD compares with its floor.
    """
    from scarlet_moon.eval.classifier import get_classifier

    sampling = sampling or SamplingOptions()
    if not real and count is not None and not (isinstance(count, int) and 1 <= count <= MAX_COUNT):
        raise BadInput(f"{arg('count')} {count!r}: must be 1..{MAX_COUNT:,}")
    card, ds = load_inputs(model, data, need_model=not real)
    n = len(ds.labels) if count is None or real else count
    memory.check(
        memory.image_bytes(n, *ds.size, copies=4) + 2 * 8 * 64 * (n + len(ds.labels)),
        f"eval of {n:,} sprites of {ds.size[1]}x{ds.size[0]}",
    )
    t0 = time.perf_counter()
    clf, train, held = get_classifier(ds, cache_dir=cache_dir, progress=classifier_progress)
    if len(train.labels) < 2:
        raise BadInput(f"data {ds.source!r} has {len(ds.labels)} sprites; eval needs at least a few per label")
    names = list(ds.label_names)
    generation = None
    if real:
        if len(held.labels) < 2:
            raise BadInput(f"data {ds.source!r} is too small for a held-out split ({len(held.labels)} held out)")
        cand, cand_labels = held.images, held.labels
    else:
        assert card is not None
        per = (
            [int((held.labels == k).sum()) for k in range(len(names))]
            if count is None
            else spread_labels([int((train.labels == k).sum()) for k in range(len(names))], count)
        )
        cand_labels = np.asarray([k for k, n in enumerate(per) for _ in range(n)], np.int64)
        s = sampling.resolve(card)
        tg = time.perf_counter()
        cand = generate_for_eval(
            card,
            cand_labels.tolist(),
            seed=seed,
            sampling=sampling,
            raw=raw,
            backend=backend or BackendOptions(),
            progress=progress,
        )
        generation = {
            "count": int(len(cand)),
            "seed": seed,
            "sampler": s.sampler,
            "steps": s.steps,
            "guidance": s.guidance,
            "raw": raw,
            "post_processing": "none" if raw else "finish (crisp alpha, palette snap)",
            "per_label": dict(zip(names, per)),
            "spread": "the held-out split's count per label"
            if count is None
            else "proportional to the real label frequencies",
            "chunk_size": CHUNK_SIZE,
            "seconds": round(time.perf_counter() - tg, 2),
        }
    return _figures(clf, train, held, ds, card, cand, cand_labels, real, raw, generation, t0)


def candidate_figures(
    ds: SpriteSet,
    cand: np.ndarray,
    cand_labels: np.ndarray,
    card: ModelCard | None = None,
    *,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The eval figures of sprites made elsewhere (a benchmark that also scores them another way):
    `cand` uint8 N x H x W x 4 with their labels, against `ds`'s train split."""
    from scarlet_moon.eval.classifier import get_classifier

    clf, train, held = get_classifier(ds, cache_dir=cache_dir)
    return _figures(
        clf, train, held, ds, card, cand, np.asarray(cand_labels, np.int64), False, False, None, time.perf_counter()
    )


def _figures(
    clf: Any,
    train: SpriteSet,
    held: SpriteSet,
    ds: SpriteSet,
    card: ModelCard | None,
    cand: np.ndarray,
    cand_labels: np.ndarray,
    real: bool,
    raw: bool,
    generation: dict[str, Any] | None,
    t0: float,
) -> dict[str, Any]:
    """The figures of `cand` (the candidates) against the train split."""
    from scarlet_moon.eval.classifier import accuracy

    names = list(ds.label_names)
    feats_ref = clf.features(train.images)
    feats = clf.features(cand)
    acc = accuracy(clf.predict(cand), cand_labels, names)
    acc["per_label"] = {k: v for k, v in acc["per_label"].items() if v is not None}
    copies = copy_share(cand, train.images)
    copies["reference"] = "train split"
    if not real:
        copies["share_vs_all_real"] = float((nearest_distances(cand, ds.images) <= COPY_THRESHOLD).mean())
    cand_px, real_px = pixel_stats(cand), pixel_stats(train.images)
    fid = {"candidates": fidelity(cand), "real": fidelity(train.images), "held_out": fidelity(held.images)}
    info = clf.info
    return {
        "schema": SCHEMA,
        "mode": "real" if real else "generated",
        "candidates": "real held-out split" if real else ("generated (raw)" if raw else "generated"),
        "model": str(card.path) if card is not None else None,
        "data": ds.source,
        "data_fingerprint": ds.fingerprint(),
        "labels": names,
        "split": {"fraction": 0.2, "seed": 0, "train": int(len(train.labels)), "held_out": int(len(held.labels))},
        "generation": generation,
        "classifier": {
            "architecture": info["recipe"]["architecture"],
            "feature_dim": info["recipe"]["feature_dim"],
            "recipe": info["recipe"],
            "held_out_accuracy": info.get("held_out_accuracy"),
            "held_out_per_label": info.get("held_out_per_label"),
            "train_accuracy": info.get("train_accuracy"),
            "train_seconds": info.get("train_seconds"),
            "cached": info.get("cached"),
            "cache_file": str(clf.cache_path) if clf.cache_path else None,
        },
        "frechet": _frechet(feats, feats_ref, clf.features(held.images), cand_labels, held.labels),
        "conditional_accuracy": acc,
        "copies": copies,
        "pixels": {
            "colours_per_sprite": {"candidates": cand_px["colours_per_sprite"], "real": real_px["colours_per_sprite"]},
            "alpha_crispness": {"candidates": cand_px["alpha_crispness"], "real": real_px["alpha_crispness"]},
            **{k: {who: fid[who][k] for who in fid} for k in FIDELITY},
        },
        "seconds": round(time.perf_counter() - t0, 2),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _frechet(
    feats: np.ndarray, feats_ref: np.ndarray, feats_held: np.ndarray, labels: np.ndarray, held_labels: np.ndarray
) -> dict[str, Any]:
    """FD of the candidates and of the held-out split (the floor), both against the train split; their
    ratio when the two sets match in size and class mix (FD's small-sample bias then cancels)."""
    fd, floor = frechet_distance(feats, feats_ref), frechet_distance(feats_held, feats_ref)
    k = int(max(labels.max(initial=0), held_labels.max(initial=0))) + 1
    like = bool(np.array_equal(np.bincount(labels, minlength=k), np.bincount(held_labels, minlength=k)))
    return {
        "distance": fd,
        "floor": floor,
        "ratio_to_floor": fd / floor if like and floor > 0 else None,
        "like_for_like": like,
        "reference": "train split",
        "features": "eval classifier penultimate layer (64-d)",
        "n_candidates": int(len(feats)),
        "n_floor": int(len(feats_held)),
        "n_reference": int(len(feats_ref)),
    }


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers (what goes into a model card)."""
    g = figures.get("generation") or {}
    fr = figures["frechet"]
    return {
        "fd": fr["distance"],
        "fd_floor": fr.get("floor"),
        "fd_ratio_to_floor": fr.get("ratio_to_floor"),
        "conditional_accuracy": figures["conditional_accuracy"]["overall"],
        "copies": figures["copies"]["share"],
        "copy_threshold": figures["copies"]["threshold"],
        "colours_per_sprite": figures["pixels"]["colours_per_sprite"]["candidates"],
        **{k: figures["pixels"][k]["candidates"] for k in FIDELITY if k in figures["pixels"]},
        "alpha_crispness": figures["pixels"]["alpha_crispness"]["candidates"],
        "classifier_held_out_accuracy": figures["classifier"]["held_out_accuracy"],
        "count": g.get("count"),
        "seed": g.get("seed"),
        "sampler": g.get("sampler"),
        "steps": g.get("steps"),
        "guidance": g.get("guidance"),
        "raw": g.get("raw"),
        "data_fingerprint": figures["data_fingerprint"],
        "classifier_recipe": figures["classifier"]["recipe"]["version"],
        "schema": figures["schema"],
        "created": figures["created"],
    }


def write_card_metrics(path: str | Path, figures: dict[str, Any], key: str = "eval") -> dict[str, Any]:
    """Store summary(figures) as metrics[key] in a checkpoint's card, atomically; the new metrics."""
    from scarlet_moon.models.card import read_meta, write_card_entry

    metrics = dict(read_meta(path).get("metrics") or {})
    metrics[key] = summary(figures)
    return write_card_entry(path, "metrics", metrics)["metrics"]
