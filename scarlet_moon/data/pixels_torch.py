"""Crisp alpha and palette snap as batched torch ops on the sampling device, byte-identical to
scarlet_moon.data.pixels (numpy) on the same raw samples.

Images are uint8 tensors N x H x W x 4 (RGBA) on any device. crisp_alpha is integer work: exact.
The palette snap works as pixels.quantize_to_palette does: the batch's distinct colours (keys
R << 16 | G << 8 | B, ascending), each looked up once, the nearest palette colour in CIELAB (CIE76)
or RGB, first palette index on ties. The distances are float64 on the device. Its Lab values are
not bit for bit numpy's (pow and cube root are other implementations; on all 2^24 colours they
differ by at most 1.2e-13: bench/postprocess.py --lab-check) and the distances are taken in the
expanded form |t|² - 2 x.t (one matmul), so a squared distance is off by < 1e-9 at most; a
colour whose best palette entry leads the second by more than TIE (1e-6) has the same nearest
entry in numpy's exact search. The others (ties, near-ties: a handful per batch, or none)
are looked up on the host by numpy's own code on numpy's own Lab values, so the result is
numpy's, byte for byte, whatever the device's float rounding.

Not here (still numpy, after the device): the per-sprite colour cap (k-means, pixels.cap_colors)
and the clean-up (data.neighbours).
"""

from __future__ import annotations

import numpy as np
import torch

from scarlet_moon.data.palettes import as_palette
from scarlet_moon.data.pixels import _nearest, _space
from scarlet_moon.errors import BadInput

TIE = 1e-6  # squared-distance lead below which a colour is looked up on the host (see the module doc)
_M = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)


def _check(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 4:
        raise BadInput(
            f"expected a uint8 tensor N x H x W x 4, got {getattr(images, 'dtype', type(images))} "
            f"{tuple(getattr(images, 'shape', ()))}"
        )
    return images


def crisp_alpha(images: torch.Tensor, threshold: int = 128) -> torch.Tensor:
    """Alpha >= threshold -> 255, else 0; fully transparent pixels get RGB 0 (pixels.crisp_alpha)."""
    if not 1 <= int(threshold) <= 255:
        raise BadInput(f"bad alpha threshold {threshold!r}; expected an integer in 1..255")
    opaque = _check(images)[..., 3] >= threshold  # N x H x W
    out = torch.where(opaque[..., None], images, torch.zeros_like(images))
    out[..., 3] = opaque.to(torch.uint8) * 255
    return out


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3) sRGB -> float64 CIELAB (D65), the formula of data.colour.srgb_to_lab."""
    c = rgb.to(torch.float64) / 255.0
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(_M, dtype=torch.float64, device=rgb.device)
    xyz = lin @ m.T / torch.tensor(_WHITE, dtype=torch.float64, device=rgb.device)
    eps, kappa = 216 / 24389, 24389 / 27
    f = torch.where(xyz > eps, xyz.clamp(min=eps) ** (1.0 / 3.0), (kappa * xyz + 16) / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _space_t(rgb: torch.Tensor, space: str) -> torch.Tensor:
    if space == "lab":
        return srgb_to_lab(rgb)
    if space == "rgb":
        return rgb.to(torch.float64)
    raise BadInput(f"unknown colour space {space!r}; expected lab or rgb")


def nearest_palette(colours: torch.Tensor, palette: np.ndarray, space: str = "lab") -> torch.Tensor:
    """uint8 U x 3 colours (distinct, ascending keys: the rows numpy looks up) -> int64 U palette
    indices, numpy's (pixels._nearest on pixels._space) byte for byte (see the module doc)."""
    pal = torch.as_tensor(palette, device=colours.device)
    x, t = _space_t(colours, space), _space_t(pal, space)  # U x 3, K x 3
    # |t|² - 2 x.t: the squared distance less |x|² (the same for every entry of a row), one float64
    # matmul; off from the exact squared distance by < 1e-9 (values < 1e5, a few roundings of 2^-53)
    d = torch.addmm((t * t).sum(1).expand(len(x), -1), x, t.T, alpha=-2.0)  # U x K
    if len(palette) == 1:
        return torch.zeros(len(colours), dtype=torch.int64, device=colours.device)
    best = torch.topk(d, 2, dim=1, largest=False)  # ascending: best, second
    idx = best.indices[:, 0].clone()
    close = torch.nonzero(best.values[:, 1] - best.values[:, 0] <= TIE).flatten()
    if len(close):  # numpy's lookup of those rows, on numpy's Lab values of all the rows (see pixels.py)
        host = _space(colours.cpu().numpy(), space)
        exact = _nearest(host[close.cpu().numpy()], _space(palette, space))
        idx[close] = torch.as_tensor(exact, device=idx.device)
    return idx


def quantize_to_palette(images: torch.Tensor, palette: np.ndarray, *, space: str = "lab") -> torch.Tensor:
    """Every opaque pixel -> the nearest palette colour; alpha unchanged (pixels.quantize_to_palette)."""
    out = _check(images).clone()
    pal = as_palette(palette)
    flat = out.view(-1, 4)
    opaque = flat[:, 3] > 0
    if not bool(opaque.any()):
        return out
    rgb = flat[opaque, :3].to(torch.int64)
    keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)  # ascending, as np.unique
    colours = torch.stack([uniq >> 16, (uniq >> 8) & 255, uniq & 255], -1).to(torch.uint8)
    idx = nearest_palette(colours, pal, space)
    flat[opaque, :3] = torch.as_tensor(pal, device=out.device)[idx[inverse]]
    return out


def postprocess(
    images: torch.Tensor, *, alpha_threshold: int = 128, palette: np.ndarray | None = None, space: str = "lab"
) -> torch.Tensor:
    """crisp_alpha, then (palette) the snap: pixels.postprocess with colors=None, cleanup=False."""
    out = crisp_alpha(images, alpha_threshold)
    return out if palette is None else quantize_to_palette(out, palette, space=space)
