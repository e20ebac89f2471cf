"""The evaluation classifier: a small CNN trained on the real sprites, used by `sm eval`.

Its penultimate layer is the feature space of the Frechet distance, and its predictions give
the conditional accuracy of generated sprites. One classifier per data set (keyed by the data
fingerprint and the recipe below) is trained once, deterministically, and cached as a
safetensors file (never a pickle), so repeated evals are fast and comparable.

Architecture (`ARCHITECTURE`, also written into the eval JSON), for C x H x W input:

    conv3x3(C->32) BN ReLU, conv3x3(32->32) BN ReLU, maxpool2         # H/2
    conv3x3(32->64) BN ReLU, conv3x3(64->64) BN ReLU, maxpool2        # H/4
    adaptive-avgpool(4x4), flatten (1024)
    linear(1024->64) ReLU          <- the features (64-d, the penultimate layer)
    dropout(0.2), linear(64->K)    <- label logits

Input: RGBA premultiplied by alpha (so colours under transparent pixels, which are
invisible, do not count), scaled to [-1, 1]. Training: the train part of
`split_holdout(data, HOLDOUT_FRACTION, SPLIT_SEED)` (stratified), AdamW (lr 3e-3, weight
decay 1e-4, cosine decay), batch 64, EPOCHS epochs, random left-right mirroring, seed
CLASSIFIER_SEED, on ONE torch thread: the result then does not depend on the core count, and
it is faster than two threads on a busy 2-core machine (about 10-15 s for the 963-sprite
bundled set; 2 threads under load took 30-60 s). BN = BatchNorm (eval mode once trained).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from scarlet_moon.cache import default_cache_dir  # noqa: F401 (re-exported: callers import it from here)
from scarlet_moon.data.sprites import SpriteSet, split_holdout
from scarlet_moon.diffusion.scaling import to_model_range
from scarlet_moon.exporters.atomic import write_file

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2
SPLIT_SEED = 0
CLASSIFIER_SEED = 0
EPOCHS = 40
BATCH = 64
LR = 3e-3
WEIGHT_DECAY = 1e-4
FEATURE_DIM = 64
WIDTHS = (32, 64)
VERSION = 1  # bump when the recipe changes: old cache files are then ignored
ARCHITECTURE = (
    "conv3x3(C->32) BN ReLU, conv3x3(32->32) BN ReLU, maxpool2; conv3x3(32->64) BN ReLU, "
    "conv3x3(64->64) BN ReLU, maxpool2; adaptive-avgpool 4x4; linear(1024->64) ReLU [features]; "
    "dropout 0.2; linear(64->K)"
)
CACHE_FORMAT = "scarlet-moon-eval-classifier"

ProgressFn = Callable[[int, int], None]


def recipe() -> dict[str, Any]:
    """Everything that changes the trained classifier besides the data."""
    return {
        "version": VERSION,
        "architecture": ARCHITECTURE,
        "feature_dim": FEATURE_DIM,
        "widths": list(WIDTHS),
        "epochs": EPOCHS,
        "batch": BATCH,
        "lr": LR,
        "weight_decay": WEIGHT_DECAY,
        "hflip": True,
        "input": "RGBA premultiplied by alpha, [-1, 1]",
        "holdout_fraction": HOLDOUT_FRACTION,
        "split_seed": SPLIT_SEED,
        "seed": CLASSIFIER_SEED,
    }


def recipe_key() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:8]


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x 3|4 -> float32 N x 4 x H x W, RGB premultiplied by alpha, in [-1, 1]."""
    images = np.asarray(images)
    if images.shape[-1] == 3:
        images = np.concatenate([images, np.full(images.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    a = images[..., 3:4].astype(np.uint16)
    rgb = ((images[..., :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
    return to_model_range(np.concatenate([rgb, images[..., 3:4]], axis=-1))


def build_network(channels: int, num_classes: int) -> Any:
    import torch
    from torch import nn

    w1, w2 = WIDTHS

    def conv(cin: int, cout: int) -> list:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    class SpriteClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                *conv(channels, w1),
                *conv(w1, w1),
                nn.MaxPool2d(2),
                *conv(w1, w2),
                *conv(w2, w2),
                nn.MaxPool2d(2),
                nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
                nn.Linear(w2 * 16, FEATURE_DIM),
                nn.ReLU(),
            )
            self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    return SpriteClassifier()


class _one_thread:
    """torch on one thread inside the block (deterministic across machines; fast under load)."""

    def __enter__(self) -> Any:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


@dataclass
class Classifier:
    """A trained classifier with its card (label names, size, held-out accuracy, ...)."""

    net: Any
    info: dict[str, Any] = field(default_factory=dict)
    cache_path: Path | None = None

    def _run(self, images: np.ndarray, fn: Callable[[Any], Any], batch: int = 256) -> np.ndarray:
        import torch

        x = prepare(images)
        out = []
        self.net.eval()
        with torch.no_grad(), _one_thread():
            for i in range(0, len(x), batch):
                out.append(fn(torch.from_numpy(x[i : i + batch])).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def features(self, images: np.ndarray) -> np.ndarray:
        """N x FEATURE_DIM float64: the penultimate layer."""
        return self._run(images, self.net.body).astype(np.float64).reshape(len(images), -1)

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, self.net).reshape(len(images), -1)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.logits(images).argmax(axis=1).astype(np.int64)


def accuracy(pred: np.ndarray, labels: np.ndarray, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Overall and per-label share of `pred == labels` (a label with no sprites: None)."""
    ok = pred == labels
    per = {n: (float(ok[labels == k].mean()) if (labels == k).any() else None) for k, n in enumerate(names)}
    return {"overall": float(ok.mean()) if len(ok) else None, "per_label": per}


def train_classifier(
    train: SpriteSet,
    held: SpriteSet | None = None,
    *,
    seed: int = CLASSIFIER_SEED,
    epochs: int = EPOCHS,
    progress: ProgressFn | None = None,
) -> Classifier:
    """Train deterministically (same data + seed -> same weights on the same machine)."""
    import torch
    from torch.nn import functional as F

    t0 = time.perf_counter()
    x_all = torch.from_numpy(prepare(train.images))
    y_all = torch.from_numpy(train.labels.astype(np.int64))
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(seed)
        net = build_network(x_all.shape[1], len(train.label_names))
        opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        n = len(x_all)
        steps_per_epoch = max(1, math.ceil(n / BATCH))
        total = epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        net.train()
        for epoch in range(epochs):
            order = rng.permutation(n)
            flips = rng.random(n) < 0.5
            for i in range(0, n, BATCH):
                idx = order[i : i + BATCH]
                xb = x_all[idx]
                fb = torch.from_numpy(flips[idx])
                xb = torch.where(fb[:, None, None, None], xb.flip(-1), xb)
                loss = F.cross_entropy(net(xb), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if progress:
                progress(epoch + 1, epochs)
        net.eval()
    clf = Classifier(net)
    info: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "recipe": recipe(),
        "recipe_key": recipe_key(),
        "label_names": list(train.label_names),
        "image_size": list(train.size),
        "channels": 4,
        "n_train": len(train.labels),
        "train_seconds": round(time.perf_counter() - t0, 2),
        "torch_version": torch.__version__,
    }
    info["train_accuracy"] = accuracy(clf.predict(train.images), train.labels, train.label_names)["overall"]
    if held is not None and len(held.labels):
        acc = accuracy(clf.predict(held.images), held.labels, held.label_names)
        info.update(n_held_out=len(held.labels), held_out_accuracy=acc["overall"], held_out_per_label=acc["per_label"])
    clf.info = info
    return clf


def cache_file(data: SpriteSet, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"classifier-{data.fingerprint()}-{recipe_key()}.safetensors"


def save_classifier(clf: Classifier, path: str | Path) -> Path:
    from safetensors.torch import save as st_save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in clf.net.state_dict().items()}
    write_file(path, st_save(tensors, metadata={CACHE_FORMAT: json.dumps(clf.info, sort_keys=True)}))
    return path


def load_classifier(path: str | Path, data: SpriteSet | None = None) -> Classifier | None:
    """A cached classifier, or None when the file is missing, corrupt or for other data/recipe."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        return None
    try:
        with p.open("rb") as f:
            head = f.read(9)
        if len(head) < 9 or head[8:9] != b"{" or struct.unpack("<Q", head[:8])[0] > p.stat().st_size:
            raise ValueError("not a safetensors file")
        with safe_open(str(p), framework="pt", device="cpu") as f:
            info = json.loads((f.metadata() or {})[CACHE_FORMAT])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if info.get("format") != CACHE_FORMAT or info.get("recipe_key") != recipe_key():
            return None
        if data is not None and (
            info["label_names"] != list(data.label_names) or info["image_size"] != list(data.size)
        ):
            return None
        net = build_network(int(info["channels"]), len(info["label_names"]))
        net.load_state_dict(tensors)
    except Exception as exc:  # a bad cache file is only a cache miss
        log.warning("ignoring the cached classifier %s (%s: %s)", p, type(exc).__name__, exc)
        return None
    net.eval()
    return Classifier(net, info, p)


def get_classifier(
    data: SpriteSet, *, cache_dir: str | Path | None = None, use_cache: bool = True, progress: ProgressFn | None = None
) -> tuple[Classifier, SpriteSet, SpriteSet]:
    """(classifier, train split, held-out split) for `data`: from the cache, else trained and cached."""
    train, held = split_holdout(data, HOLDOUT_FRACTION, SPLIT_SEED)
    path = cache_file(data, cache_dir if cache_dir is not None else default_cache_dir())
    clf = load_classifier(path, data) if use_cache else None
    if clf is not None:
        clf.info["cached"] = True
        return clf, train, held
    log.info("training the eval classifier on %d sprites (once per data set)", len(train.labels))
    clf = train_classifier(train, held, progress=progress)
    clf.info["data_fingerprint"] = data.fingerprint()
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            clf.cache_path = save_classifier(clf, path)
        except OSError as exc:
            log.warning("could not cache the eval classifier in %s (%s)", path.parent, exc)
    clf.info["cached"] = False
    return clf, train, held
