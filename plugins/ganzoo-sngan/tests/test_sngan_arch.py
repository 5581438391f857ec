"""The ``sngan`` architecture against Miyato et al. 2018 and its reference code (pfnet-research/sngan_projection)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import ganzoo
from ganzoo.testing import check_registered, train_step
from ganzoo_losses import top_singular_value
from ganzoo_sngan import ARCH, DBlock, GBlock, SNGANConfig

NARROW = dict(g_ch=8, d_ch=8)  # same layers, fewer channels: for the tests that run the networks


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_registered_with_the_papers_recipe():
    check_registered(ARCH, "ganzoo-sngan")
    assert (ARCH.objective, ARCH.objective_kwargs) == ("hinge", {"n_critic": 5})
    opt = ARCH.optimizer  # Adam alpha 2e-4, beta1 0, beta2 0.9, batch 64, n_dis 5
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (2e-4, 2e-4, (0.0, 0.9), 64)
    assert set(ARCH.image_sizes) == {32, 64} and not ARCH.conditional
    assert "1802.05957" in ARCH.reference
    c32, c64 = ARCH.make_config(), ARCH.make_config(image_size=64)
    assert (c32.latent_dim, c32.g_ch, c32.d_ch) == (128, 256, 128)
    assert (c64.g_ch, c64.d_ch) == (64, 64)
    assert ARCH.make_config(g_ch=32).g_ch == 32


def test_parameter_counts_of_the_cifar_resnets():
    """Table 4 at ch 256 (G) / 128 (D), counted layer by layer from the reference code."""
    G, D = ganzoo.create("sngan")
    conv = lambda i, o, k: i * o * k * k + o  # noqa: E731
    gblock = 2 * 256 + conv(256, 256, 3) + 2 * 256 + conv(256, 256, 3) + conv(256, 256, 1)
    assert n_params(G) == (128 * 16 * 256 + 16 * 256) + 3 * gblock + 2 * 256 + conv(256, 3, 3) == 4_276_739
    first = conv(3, 128, 3) + conv(128, 128, 3) + conv(3, 128, 1)
    down = 2 * conv(128, 128, 3) + conv(128, 128, 1)
    plain = 2 * conv(128, 128, 3)
    assert n_params(D) == first + down + 2 * plain + 128 == 1_053_824  # the head has no bias at 32 px
    assert [type(b) for b in G.blocks] == [GBlock] * 3 and [type(b) for b in D.blocks] == [DBlock] * 4
    assert [b.down for b in D.blocks] == [True, True, False, False]
    assert [b.c_sc is not None for b in D.blocks] == [True, True, False, False]


def test_64_px_networks_double_the_width_at_each_scale():
    G, D = ganzoo.create("sngan", image_size=64, g_ch=4, d_ch=4)
    assert [b.c1.out_channels for b in G.blocks] == [32, 16, 8, 4] and G.linear.out_features == 16 * 64
    assert [b.c2.out_channels for b in D.blocks] == [4, 8, 16, 32, 64] and all(b.down for b in D.blocks)
    assert D.linear.bias is not None


def test_spectral_norm_on_every_discriminator_layer_and_none_in_the_generator():
    torch.manual_seed(0)
    G, D = ganzoo.create("sngan", **NARROW)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(parametrize.is_parametrized(m) for m in G.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    x = torch.randn(4, 3, 32, 32)
    for _ in range(30):  # power iterations
        D(x)
    for m in layers:
        assert top_singular_value(m.weight) == pytest.approx(1.0, abs=2e-2)


def test_blocks_follow_the_reference():
    torch.manual_seed(0)
    g = GBlock(4, 6).eval()
    x = torch.randn(2, 4, 5, 5)
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
    h = g.c2(F.relu(g.b2(g.c1(up(F.relu(g.b1(x)))))))
    assert torch.allclose(g(x), h + g.c_sc(up(x)), atol=1e-5)  # shortcut: conv1x1 of the up-sampled input
    d = DBlock(4, 4, down=False)
    assert d.c_sc is None and torch.allclose(d(x), d.c2(F.relu(d.c1(F.relu(x)))) + x)
    first = DBlock(3, 4, down=True, first=True)
    y = torch.randn(2, 3, 8, 8)
    ref = F.avg_pool2d(first.c2(F.relu(first.c1(y))), 2) + first.c_sc(F.avg_pool2d(y, 2))
    assert torch.allclose(first(y), ref, atol=1e-6)
    # init: Glorot uniform, gain sqrt(2) in the residual path: bound = gain * sqrt(6 / (fan_in + fan_out))
    big = GBlock(64, 64)
    bound = math.sqrt(2) * math.sqrt(6 / (64 * 9 + 64 * 9))
    assert big.c1.weight.abs().max() <= bound and big.c1.weight.abs().max() > 0.95 * bound


def test_discriminator_scores_global_sum_pooled_features():
    torch.manual_seed(0)
    _, D = ganzoo.create("sngan", **NARROW)
    D.eval()
    x = torch.randn(3, 3, 32, 32)
    h = x
    for b in D.blocks:
        h = b(h)
    phi = F.relu(h).sum(dim=(2, 3))
    assert torch.allclose(D.features(x), phi) and torch.allclose(D(x), D.linear(phi).squeeze(1), atol=1e-5)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(size, channels):
    G, D = ganzoo.create("sngan", image_size=size, channels=channels, g_ch=4, d_ch=4)
    images = G.sample(2, seed=0)
    assert images.shape == (2, channels, size, size) and images.abs().max() <= 1
    assert D(images).shape == (2,)


def test_unsupported_configs_are_rejected():
    with pytest.raises(ganzoo.GanzooError):
        ganzoo.create("sngan", image_size=48)
    with pytest.raises(ganzoo.GanzooError, match="unconditional"):
        ganzoo.create("sngan", num_classes=10)
    assert isinstance(SNGANConfig(image_size=48).g_ch, int)


def test_one_training_step_with_the_registered_objective():
    train_step("sngan", torch.rand(4, 3, 32, 32) * 2 - 1, logged=None,
               watch=lambda G, D: (G.linear.weight, D.linear.parametrizations.weight.original), **NARROW)


def test_trains_with_the_trainer_and_reloads(tmp_path):
    from ganzoo.data import ImageDataset
    from ganzoo.trainer import TrainConfig, train

    data = ImageDataset(torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8))
    cfg = TrainConfig(arch="sngan", data="folder:unused", arch_config={"channels": 1, **NARROW}, batch_size=4, steps=2)
    trainer = train(cfg, tmp_path / "run", dataset=data, progress=False)
    assert trainer.step == 2
    G = ganzoo.load(tmp_path / "run")  # the spectrally normalised D's state (u, v vectors) round-trips too
    assert G.sample(2, seed=0).shape == (2, 1, 32, 32)
