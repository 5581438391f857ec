"""The ``mlp`` architecture against source 001's Keras Listing A-1.

The listing calls ``summary()`` but the seed does not print its output, so the
expected counts are worked out by hand, as Keras would print them. Keras
counts 4 numbers per BatchNormalization unit (gamma, beta, moving mean, moving
variance); PyTorch has 2 parameters and 2 running-stat buffers: we compare
like for like (Keras count = PyTorch parameters + running_mean + running_var;
Keras "trainable params" = PyTorch parameters).

* Dense 100->128: 12,928   BN 128: 512     Dense 128->256: 33,024   BN 256: 1,024
* Dense 256->512: 131,584  BN 512: 2,048   Dense 512->784: 402,192  -> 583,312 (896 non-trainable)
* D: Dense 784->128: 100,480, 128->256: 33,024, 256->512: 131,584, 512->1: 513 -> 265,601
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.testing import check_registered, check_rejected, train_step
from ganzoo_mlp import ARCH, MLPConfig

G_KERAS = [12_928, 512, 33_024, 1_024, 131_584, 2_048, 402_192]
D_KERAS = [100_480, 33_024, 131_584, 513]


def keras_counts(net):
    out = []
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.BatchNorm1d)):
            n = sum(p.numel() for p in m.parameters(recurse=False))
            if isinstance(m, nn.BatchNorm1d):
                n += m.running_mean.numel() + m.running_var.numel()
            out.append(n)
    return out


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return ganzoo.create("mlp")


def test_registered_through_the_entry_point():
    check_registered(ARCH, "ganzoo-mlp")
    assert ARCH.objective == "nonsaturating" and ARCH.objective_kwargs == {"joint_batch": True}
    assert (ARCH.image_sizes, ARCH.channels) == ((28,), (1,))
    opt = ARCH.optimizer  # Adam(lr=0.0004, beta_1=0.5), batch_size=256
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (4e-4, 4e-4, (0.5, 0.999), 256)


def test_parameter_counts_match_the_listing(nets):
    G, D = nets
    assert keras_counts(G) == G_KERAS and sum(G_KERAS) == 583_312
    assert sum(p.numel() for p in G.parameters()) == 583_312 - 2 * (128 + 256 + 512)
    assert keras_counts(D) == D_KERAS and sum(D_KERAS) == 265_601
    assert sum(p.numel() for p in D.parameters()) == 265_601


def test_layer_order_dense_leakyrelu_batchnorm(nets):
    G, D = nets
    kinds = [type(m) for m in G.body]
    assert kinds == [nn.Linear, nn.LeakyReLU, nn.BatchNorm1d] * 3
    assert [type(m) for m in D.body] == [nn.Linear, nn.LeakyReLU] * 3
    assert all(m.negative_slope == 0.2 for net in nets for m in net.modules() if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Dropout)) for m in D.modules())


def test_batchnorm_is_keras_momentum_0_8_and_eps_1e_3(nets):
    G, _ = nets
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(bns) == 3
    for bn in bns:
        # Keras BatchNormalization(momentum=0.8) == PyTorch momentum 0.2 (NOT BatchNorm1d(c, 0.8))
        assert bn.momentum == pytest.approx(0.2) and bn.eps == pytest.approx(1e-3)


def test_initialisation(nets):
    for net in nets:
        first = net.body[0]
        # RandomNormal(stddev=0.02) on the first Dense only
        assert abs(first.weight.std().item() - 0.02) < 0.002 and abs(first.weight.mean().item()) < 0.002
        for m in [m for m in net.modules() if isinstance(m, nn.Linear)][1:]:
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            limit = math.sqrt(6.0 / (fan_in + fan_out))  # glorot_uniform, Keras' default
            assert m.weight.abs().max() <= limit + 1e-6 and m.weight.abs().max() > 0.9 * limit
        for m in net.modules():
            if isinstance(m, nn.Linear):
                assert torch.count_nonzero(m.bias) == 0


def test_shapes_and_range(nets):
    G, D = nets
    images = G.sample(5, seed=0)
    assert images.shape == (5, 1, 28, 28)
    G.train()
    raw = G(torch.randn(5, 100) * 3)
    assert raw.shape == (5, 1, 28, 28) and raw.abs().max() <= 1
    assert D(images).shape == (5,)


def test_unsupported_shapes_are_rejected():
    check_rejected("mlp", {"image_size": 32}, {"channels": 3})


def test_config_round_trips_through_json_types():
    cfg = ARCH.make_config()
    again = MLPConfig.from_dict({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.to_dict().items()})
    assert again == cfg


def test_one_training_step_with_the_registered_objective():
    train_step("mlp", torch.rand(8, 1, 28, 28) * 2 - 1, watch=lambda G, D: (G.to_image.weight, D.head.weight))
