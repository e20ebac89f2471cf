"""A second judge: a classifier of another architecture and seed than `sm eval`'s, for a second
feature space (FD) and a second conditional accuracy.

`sm eval`'s classifier (scarlet_moon.eval.classifier) is a BatchNorm/ReLU VGG-like net with max
pooling and a 64-d feature layer, seed 0. This one differs in every choice that shapes features:

    conv5x5(C->48) GroupNorm(8) SiLU                          # 16x16
    conv3x3 stride 2 (48->96) GroupNorm(8) SiLU               # 8x8
    conv3x3 stride 2 (96->128) GroupNorm(8) SiLU              # 4x4
    [global mean pool | global max pool] (256)
    linear(256->128) SiLU   <- the features (128-d)
    linear(128->K)

trained on the same train split (`split_holdout(0.2, seed 0)`), AdamW 2e-3, 30 epochs, batch 64,
mirroring and 1-pixel shifts (wrapped), seed 1, one torch thread. Input: the eval's (RGBA premultiplied
by alpha, [-1, 1]). Two feature spaces that agree make a quality claim; where they disagree, say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SEED = 1
EPOCHS = 30
BATCH = 64
LR = 2e-3


def _network(channels: int, num_classes: int) -> Any:
    import torch
    from torch import nn

    def block(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), nn.GroupNorm(8, cout), nn.SiLU()]

    class Judge(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(*block(channels, 48, 5, 1), *block(48, 96, 3, 2), *block(96, 128, 3, 2))
            self.feat = nn.Sequential(nn.Linear(256, 128), nn.SiLU())
            self.head = nn.Linear(128, num_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv(x)
            return self.feat(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x))

    return Judge()


@dataclass
class SecondJudge:
    net: Any
    held_out_accuracy: float

    def _run(self, images: np.ndarray, fn: Any) -> np.ndarray:
        import torch

        from scarlet_moon.eval.classifier import prepare

        x = torch.from_numpy(prepare(images))
        with torch.no_grad():
            return np.concatenate([fn(x[i : i + 256]).numpy() for i in range(0, len(x), 256)])

    def features(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, self.net.features).astype(np.float64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, self.net).argmax(axis=1)


def train_judge(
    images: np.ndarray, labels: np.ndarray, num_classes: int, held_images: np.ndarray, held_labels: np.ndarray
) -> SecondJudge:
    """Train on (images, labels); deterministic for the same data on the same machine."""
    import torch
    from torch.nn import functional as F

    from scarlet_moon.eval.classifier import prepare

    x_all, y_all = torch.from_numpy(prepare(images)), torch.from_numpy(labels.astype(np.int64))
    rng = np.random.default_rng(SEED)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            net = _network(x_all.shape[1], num_classes)
            opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=1e-4)
            total = EPOCHS * math.ceil(len(x_all) / BATCH)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
            )
            net.train()
            for _ in range(EPOCHS):
                order = rng.permutation(len(x_all))
                for i in range(0, len(x_all), BATCH):
                    idx = order[i : i + BATCH]
                    xb = _augment(x_all[idx], rng)
                    loss = F.cross_entropy(net(xb), y_all[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
            net.eval()
    finally:
        torch.set_num_threads(before)
    judge = SecondJudge(net, 0.0)
    judge.held_out_accuracy = float((judge.predict(held_images) == held_labels).mean())
    return judge


def _augment(xb: Any, rng: np.random.Generator) -> Any:
    """Mirror half the batch, then shift it by one of -1, 0, 1 pixels each way (wrapped)."""
    import torch

    flip = torch.from_numpy(rng.random(len(xb)) < 0.5)
    xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
    dy, dx = (int(v) for v in rng.integers(-1, 2, size=2))
    return torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
