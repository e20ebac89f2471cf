"""Denoising networks. Both take the same inputs and return the same shape:

    x: float32 [B, C, H, W] noisy sprites in [-1, 1] scale
    t: float32 [B]          timestep index (0..T-1; fractional allowed)
    y: int64   [B]          label index, or `num_classes` for the null label (guidance)
    -> float32 [B, C, H, W] the prediction (eps or v, as the config says)

`ContextUnet` is the ancestor's network (DeepLearning.AI course), shape kept, with its bug
fixed: the residual shortcut is a registered 1x1 conv, not one built inside forward.
`SpriteUNet` is ours: GroupNorm (same in training and sampling), sinusoidal time embedding,
label embedding with a learned null row, time+label FiLM in every residual block, and
self-attention at the lowest resolution.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from scarlet_moon.errors import BadInput
from scarlet_moon.limits import check_sprite_size
from scarlet_moon.models.config import ModelConfig


# ---------------------------------------------------------------- the ancestor's ContextUnet
class SeedResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, is_res: bool = False):
        super().__init__()
        self.is_res = is_res
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.GELU())
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.GELU())
        # The ancestor created this conv afresh (untrained) in every forward call.
        self.shortcut = nn.Conv2d(cin, cout, 1) if is_res and cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.conv1(x))
        return (self.shortcut(x) + h) / 1.414 if self.is_res else h


class EmbedFC(nn.Module):
    def __init__(self, din: int, dout: int):
        super().__init__()
        self.din = din
        self.model = nn.Sequential(nn.Linear(din, dout), nn.GELU(), nn.Linear(dout, dout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(-1, self.din))


class ContextUnet(nn.Module):
    def __init__(self, channels: int, size: tuple[int, int], num_classes: int, n_feat: int = 64, timesteps: int = 500):
        super().__init__()
        f = n_feat
        self.n_feat, self.num_classes, self.timesteps, self.size = f, num_classes, timesteps, size
        self.init_conv = SeedResBlock(channels, f, is_res=True)
        self.down1 = nn.Sequential(SeedResBlock(f, f), SeedResBlock(f, f), nn.MaxPool2d(2))
        self.down2 = nn.Sequential(SeedResBlock(f, 2 * f), SeedResBlock(2 * f, 2 * f), nn.MaxPool2d(2))
        # AvgPool2d(4) in the ancestor, i.e. global at 16x16; adaptive keeps 8/24/32 working.
        self.to_vec = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.GELU())
        self.timeembed1, self.timeembed2 = EmbedFC(1, 2 * f), EmbedFC(1, f)
        self.contextembed1, self.contextembed2 = EmbedFC(num_classes, 2 * f), EmbedFC(num_classes, f)
        k = (size[0] // 4, size[1] // 4)  # the 1x1 vector back to the lowest resolution, H/4 x W/4
        self.up0 = nn.Sequential(nn.ConvTranspose2d(2 * f, 2 * f, k, k), nn.GroupNorm(8, 2 * f), nn.ReLU())
        self.up1 = SeedUp(4 * f, f)
        self.up2 = SeedUp(2 * f, f)
        self.out = nn.Sequential(
            nn.Conv2d(2 * f, f, 3, 1, 1), nn.GroupNorm(8, f), nn.ReLU(), nn.Conv2d(f, channels, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f = self.n_feat
        # one-hot context; the null label (index num_classes) becomes the zero vector, as the
        # ancestor's context mask did
        c = F.one_hot(y.long(), self.num_classes + 1)[:, : self.num_classes].to(x.dtype)
        tn = (t.to(x.dtype) / self.timesteps).reshape(-1, 1)
        x = self.init_conv(x)
        d1 = self.down1(x)
        d2 = self.down2(d1)
        u1 = self.up0(self.to_vec(d2))
        u2 = self.up1(self.contextembed1(c).view(-1, 2 * f, 1, 1) * u1 + self.timeembed1(tn).view(-1, 2 * f, 1, 1), d2)
        u3 = self.up2(self.contextembed2(c).view(-1, f, 1, 1) * u2 + self.timeembed2(tn).view(-1, f, 1, 1), d1)
        return self.out(torch.cat((u3, x), 1))


class SeedUp(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 2, 2), SeedResBlock(cout, cout), SeedResBlock(cout, cout)
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat((x, skip), 1))


# ---------------------------------------------------------------- ours
def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [B] -> [B, dim] (Vaswani et al. 2017), computed in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _groups(c: int) -> int:
    return 8 if c % 8 == 0 else 1


def zero_init(conv: nn.Conv2d) -> None:
    """Weights and bias to zero: the layer starts as a no-op (a residual branch adds nothing at step 0)."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice; the embedding gives a per-channel scale and shift (FiLM)."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        zero_init(self.conv2)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, c: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(c), c)
        self.qkv, self.proj, self.heads = nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1), heads
        zero_init(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        # [b, heads, hw, d] each
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class SpriteUNet(nn.Module):
    def __init__(
        self,
        channels: int,
        size: int | tuple[int, int],  # unused: the network is fully convolutional (kept for the call's shape)
        num_classes: int,
        n_feat: int = 64,
        channel_mult: tuple[int, ...] = (1, 2, 2),
        attention: bool = True,
        dropout: float = 0.0,
        cond_channels: int = 0,
    ):
        super().__init__()
        # cond_channels: extra input planes (an animation model's reference frames and slot), read but not predicted
        self.num_classes, emb = num_classes, 4 * n_feat
        self.t_dim = n_feat
        self.time_mlp = nn.Sequential(nn.Linear(n_feat, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label_emb = nn.Embedding(num_classes + 1, emb)  # last row: the null label
        chans = [n_feat * m for m in channel_mult]
        self.inp = nn.Conv2d(channels + cond_channels, chans[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        c = chans[0]
        for i, co in enumerate(chans):
            self.down.append(nn.ModuleList([ResBlock(c, co, emb, dropout), ResBlock(co, co, emb, dropout)]))
            c = co
            last = i == len(chans) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1, self.mid2 = ResBlock(c, c, emb, dropout), ResBlock(c, c, emb, dropout)
        self.attn = Attention(c) if attention else nn.Identity()
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, co in reversed(list(enumerate(chans))):
            self.up.append(nn.ModuleList([ResBlock(c + co, co, emb, dropout), ResBlock(co + co, co, emb, dropout)]))
            c = co
            self.upsample.append(nn.Identity() if i == 0 else nn.Upsample(scale_factor=2, mode="nearest"))
        head = nn.Conv2d(c, channels, 3, padding=1)
        self.out = nn.Sequential(nn.GroupNorm(_groups(c), c), nn.SiLU(), head)
        zero_init(head)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.t_dim)) + self.label_emb(y.long())
        h = self.inp(x)
        skips = []
        for blocks, ds in zip(self.down, self.downsample):
            b1, b2 = cast(nn.ModuleList, blocks)
            h = b1(h, emb)
            skips.append(h)
            h = b2(h, emb)
            skips.append(h)
            h = ds(h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for blocks, us in zip(self.up, self.upsample):
            b1, b2 = cast(nn.ModuleList, blocks)
            h = b1(torch.cat([h, skips.pop()], 1), emb)
            h = b2(torch.cat([h, skips.pop()], 1), emb)
            h = us(h)
        return self.out(h)


def build_model(
    cfg: ModelConfig,
    *,
    channels: int,
    size: int | tuple[int, int],
    num_classes: int,
    timesteps: int,
    cond_channels: int = 0,
) -> nn.Module:
    """The network of `cfg` for sprites of `size` (side, or (height, width)); `timesteps` scales t for
    the seed arch. A "unet" without channel_mult gets the depth of the size (ModelConfig.for_size)."""
    h, w = (size, size) if isinstance(size, int) else size
    check_sprite_size(h, w)
    cfg = cfg.for_size(h, w)
    mult = tuple(cfg.channel_mult or ())  # for_size fills it for a unet
    levels = 2 if cfg.arch == "seed" else len(mult) - 1
    for side in (h, w):
        if side % (2**levels) != 0 or side < 2 ** (levels + 1):
            raise BadInput(
                f"sprite size {w}x{h} does not fit arch {cfg.arch!r} with {levels + 1} resolution "
                f"levels: each side must be a multiple of {2**levels} and at least {2 ** (levels + 1)}"
            )
    if cfg.arch == "seed":
        if cond_channels:
            raise BadInput("an animation model needs arch 'unet' (the seed arch reads no reference frames)")
        return ContextUnet(channels, (h, w), num_classes, n_feat=cfg.n_feat, timesteps=timesteps)
    return SpriteUNet(
        channels,
        size,
        num_classes,
        n_feat=cfg.n_feat,
        channel_mult=mult,
        attention=cfg.attention,
        dropout=cfg.dropout,
        cond_channels=cond_channels,
    )


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
