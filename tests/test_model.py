from __future__ import annotations

import pytest
import torch

from scarlet_moon.errors import BadInput
from scarlet_moon.models.unet import ContextUnet, SeedResBlock, count_params
from scarlet_moon.training.config import DEFAULT, SEED, TrainConfig
from scarlet_moon.training.state import build_network


@pytest.mark.parametrize("size", [8, 16, 24, 32])
@pytest.mark.parametrize("cfg", [SEED, DEFAULT], ids=["seed", "default"])
def test_models_keep_shape_for_every_supported_size(cfg: TrainConfig, size: int):
    model = build_network(cfg, channels=4, size=size, num_classes=6).eval()
    x = torch.randn(3, 4, size, size)
    out = model(x, torch.tensor([0.0, 10.5, 400.0]), torch.tensor([0, 5, 6]))  # 6 = null label
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_bad_size_is_a_one_line_bad_input():
    with pytest.raises(BadInput, match="sprite size 10"):
        build_network(DEFAULT, channels=4, size=10, num_classes=6)


def test_seed_residual_shortcut_is_a_trained_parameter_not_rebuilt_in_forward():
    block = SeedResBlock(4, 64, is_res=True).eval()
    names = [n for n, _ in block.named_parameters()]
    assert "shortcut.weight" in names
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), block(x))  # the ancestor's version gave a fresh random conv each call


def test_seed_network_has_the_ancestors_shape():
    model = build_network(SEED, channels=4, size=16, num_classes=6)
    assert isinstance(model, ContextUnet) and model.n_feat == 64
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_label_changes_the_output_and_null_label_is_distinct():
    torch.manual_seed(0)
    model = build_network(DEFAULT.replace({"n_feat": 16}), channels=4, size=16, num_classes=6)
    for p in model.parameters():  # zero-initialised output layers would hide the label
        torch.nn.init.normal_(p, std=0.05)
    model.eval()
    x, t = torch.randn(1, 4, 16, 16), torch.tensor([100.0])
    outs = [model(x, t, torch.tensor([k])) for k in (0, 5, 6)]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


def test_default_model_is_small_enough_to_ship():
    n = count_params(build_network(DEFAULT, channels=4, size=16, num_classes=6))
    assert n * 4 < 20 * 2**20  # float32 weights under 20 MB
