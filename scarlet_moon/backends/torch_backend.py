"""The torch backend: a checkpoint's network (or the network being trained) as a Denoiser."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Iterator, Sequence

import numpy as np
import torch

from scarlet_moon.backends.base import Denoiser
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import ModelCard


def torch_device(name: str | None) -> str:
    """'auto'/None: CUDA when torch sees a GPU, else the CPU; 'cuda' without one is BadInput."""
    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"{arg('device')} {name}: no CUDA device is visible to torch here; use {arg('device')} cpu")
    return str(name)


def load_torch_model(card: ModelCard, device: str = "cpu") -> torch.nn.Module:
    """The card's network with its sampling weights, in eval mode on `device`."""
    from scarlet_moon.models.checkpoint import load_checkpoint
    from scarlet_moon.models.config import ModelConfig
    from scarlet_moon.models.unet import build_model

    if card.meta.get("anim") is not None:
        raise BadInput(
            f"checkpoint {str(card.path)!r} is an animation model (it draws characters, a frame per direction "
            "and step, from reference frames): it does not draw single sprites"
        )
    ckpt = load_checkpoint(card.path, with_optim=False)
    cfg = ModelConfig.from_dict(card.config).check(f"checkpoint {str(card.path)!r}")
    check_weights_fit(card, cfg, sum(int(w.numel()) for w in ckpt.weights.values()))
    model = build_model(
        cfg,
        channels=card.channels,
        size=card.size,
        num_classes=len(card.label_names),
        timesteps=card.schedule.num_steps,
    )
    try:
        model.load_state_dict(ckpt.weights)
    except RuntimeError as exc:
        raise BadInput(
            f"checkpoint {str(card.path)!r}: weights do not fit its config ({str(exc).splitlines()[0]})"
        ) from None
    return model.to(device).eval()


def check_weights_fit(card: ModelCard, cfg: Any, stored: int) -> None:
    """A card whose network would hold another parameter count than the file stores is refused before
    the network is built (a card claiming n_feat 1024 over small weights allocated gigabytes first)."""
    from scarlet_moon.memory import unet_footprint

    if cfg.arch != "unet":
        return
    mult = cfg.for_size(*card.size).channel_mult
    want, _ = unet_footprint(cfg.n_feat, mult, card.channels, card.size, len(card.label_names), cfg.attention)
    if want != stored:
        raise BadInput(
            f"checkpoint {str(card.path)!r}: its card describes a network of {want:,} parameters "
            f"(n_feat {cfg.n_feat}, channel_mult {list(mult)}), the file stores {stored:,}; the card "
            "or the weights were altered"
        )


def no_tf32() -> Any:
    """cuDNN convolutions in true fp32 while sampling (torch's default lets them use TF32): the
    same choice as the onnx backend (backends.onnx_session.cuda_options), so both give the same sprites."""
    b = torch.backends.cudnn
    return b.flags(enabled=b.enabled, benchmark=b.benchmark, deterministic=b.deterministic, allow_tf32=False)


class TorchDenoiser(Denoiser):
    """`model` (x, t, y -> prediction) on `device`; `flags` name what wraps it (fp16, compile)."""

    backend = "torch"

    def __init__(self, card: ModelCard, model: torch.nn.Module, device: str, flags: Sequence[str] = ()):
        super().__init__(card, device)
        self.model, self.flags = model, tuple(flags)

    def describe(self) -> str:
        return f"torch on {self.device}" + (f" ({', '.join(self.flags)})" if self.flags else "")

    def asarray(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device)

    def to_numpy(self, x: torch.Tensor) -> np.ndarray:
        return x.float().cpu().numpy()

    def runner(self, y: np.ndarray) -> Callable[[torch.Tensor, int], torch.Tensor]:
        labels = torch.as_tensor(y, dtype=torch.int64, device=self.device)

        def run(x: torch.Tensor, t: int) -> torch.Tensor:
            return self.model(x, torch.full((x.shape[0],), float(t), device=x.device), labels)

        return run

    def cat(self, parts: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
        return torch.cat(list(parts), dim=axis)

    def finite(self, x: torch.Tensor) -> bool:
        return bool(torch.isfinite(x).all())

    def context(self) -> ContextManager[Any]:
        return self._sampling()

    @contextlib.contextmanager
    def _sampling(self) -> Iterator[None]:
        """no_grad, eval mode (restored after: the network may be one being trained), no TF32."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), no_tf32():
                yield
        finally:
            self.model.train(was_training)


def open_torch(card: ModelCard, device: str | None, *, fp16: bool = False, compile: bool = False) -> TorchDenoiser:
    """The card's checkpoint on `device` (None: the CPU), with fp16 autocast / torch.compile if asked."""
    from scarlet_moon.backends.torch_fast import accelerate

    device = torch_device(device or "cpu")
    model = load_torch_model(card, device)
    flags = [name for name, on in (("fp16", fp16), ("compile", compile)) if on]
    if flags:
        model = accelerate(model, device, fp16=fp16, compile=compile)
    return TorchDenoiser(card, model, device, flags)
