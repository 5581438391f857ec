"""The ``deconv`` architecture against source 002's Keras listings (Figuras 3, 4, 10).

The seed calls ``summary()`` but does not print its output, so the expected
parameter counts below are worked out by hand from the listings, as Keras
counts them (kernel + bias; no BatchNorm in this model):

* Dense(128*8*8) on 100 inputs:            100*8192 + 8192      = 827,392
* Conv2DTranspose(128, 4x4) on 128 ch:     4*4*128*128 + 128    = 262,272
* Conv2D(3, 8x8) on 128 ch:                8*8*128*3 + 3        =  24,579
* Conv2D(128, 3x3) on 3 ch:                3*3*3*128 + 128      =   3,584
* Conv2D(128, 3x3) on 128 ch:              3*3*128*128 + 128    = 147,584
* Dense(1) on 8*8*128:                     8192 + 1             =   8,193
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo_deconv import ARCH, DeconvConfig, DeconvGenerator
from ganzoo.layers.keras import KerasSameConv2d
from ganzoo.testing import check_registered, check_rejected, check_shapes_and_range, train_step

G_COUNTS_128 = [827_392] + [262_272] * 4 + [24_579]
D_COUNTS_128 = [3_584] + [147_584] * 4 + [8_193]
# widths scaled down for the tests that run the networks forward/backward (same layers otherwise)
NARROW = dict(width=8)


def counts(net):
    return [sum(p.numel() for p in m.parameters(recurse=False))
            for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]


def test_registered_through_the_entry_point():
    reg = check_registered(ARCH, "ganzoo-deconv")
    assert ARCH.objective == "nonsaturating" and ARCH.objective_kwargs == {"joint_batch": False}
    assert reg.objective(ARCH.objective)(**ARCH.objective_kwargs).joint_batch is False
    assert set(ARCH.image_sizes) == {64, 128} and set(ARCH.channels) == {1, 3}


def test_parameter_counts_match_the_keras_listing():
    G, D = ganzoo.create("deconv")
    assert counts(G) == G_COUNTS_128 and sum(G_COUNTS_128) == 1_901_059
    assert counts(D) == D_COUNTS_128 and sum(D_COUNTS_128) == 602_113
    assert sum(p.numel() for p in G.parameters()) == 1_901_059
    assert sum(p.numel() for p in D.parameters()) == 602_113
    # 64 px: one Conv2DTranspose and one strided Conv2D fewer, same Dense layers
    G64, D64 = ganzoo.create("deconv", image_size=64)
    assert counts(G64) == [827_392] + [262_272] * 3 + [24_579]
    assert counts(D64) == [3_584] + [147_584] * 3 + [8_193]
    # 1 channel: only the first conv of D and the last of G change
    G1, D1 = ganzoo.create("deconv", channels=1)
    assert counts(G1)[-1] == 8 * 8 * 128 + 1 and counts(D1)[0] == 3 * 3 * 128 + 128


def test_no_batchnorm_as_in_the_code_not_the_text():
    # the text (§II.1 b) mentions batch normalization in both nets; Figuras 3 and 4 have none
    G, D = ganzoo.create("deconv")
    for net in (G, D):
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        assert all(m.negative_slope == 0.2 for m in net.modules() if isinstance(m, nn.LeakyReLU))
    assert sum(isinstance(m, nn.LeakyReLU) for m in G.modules()) == 1 + 4
    assert sum(isinstance(m, nn.LeakyReLU) for m in D.modules()) == 1 + 4
    assert D.dropout.p == 0.4


def test_layer_shapes_at_128_px():
    G, D = ganzoo.create("deconv")
    G.eval(), D.eval()
    with torch.no_grad():
        x = G.act(G.project(torch.randn(1, 100))).view(1, 128, 8, 8)
        for block, size in zip(G.blocks, (16, 32, 64, 128)):  # "# upsample to 16x16" ... "128x128"
            x = block(x)
            assert x.shape == (1, 128, size, size)
        assert G.pad(x).shape == (1, 128, 128 + 7, 128 + 7)
        img = torch.tanh(G.to_image(G.pad(x)))
        assert img.shape == (1, 3, 128, 128)
        strides = [m.stride[0] for m in D.features if isinstance(m, KerasSameConv2d)]
        assert strides == [1, 2, 2, 2, 2]
        y = img
        sizes = []
        for layer in D.features:
            y = layer(y)
            if isinstance(layer, KerasSameConv2d):
                sizes.append(tuple(y.shape[1:]))
        assert sizes == [(128, 128, 128), (128, 64, 64), (128, 32, 32), (128, 16, 16), (128, 8, 8)]
        assert D.flat_features == 8192 and D(img).shape == (1,)


def test_output_conv_pads_3_before_and_4_after():
    # Keras padding='same' with an 8x8 kernel at stride 1: 7 pixels, 3 top/left and 4 bottom/right
    G = DeconvGenerator(DeconvConfig(image_size=64, channels=1, **NARROW))
    assert G.pad.padding == (3, 4, 3, 4)
    with torch.no_grad():
        G.to_image.weight.zero_()
        G.to_image.bias.zero_()
        G.to_image.weight[0, 0, 0, 0] = 1.0  # output (i, j) = padded input (i, j)
        x = torch.rand(1, 8, 64, 64) + 1.0
        y = G.to_image(G.pad(x))
    assert y.shape == (1, 1, 64, 64)
    assert torch.equal(y[0, 0, 3:, 3:], x[0, 0, :-3, :-3]) and y[0, 0, :3].abs().sum() == 0


def test_conv_transpose_same_doubles_the_size():
    G = DeconvGenerator(DeconvConfig(**NARROW))
    ct = G.blocks[0][0]
    assert (ct.kernel_size, ct.stride, ct.padding, ct.output_padding) == ((4, 4), (2, 2), (1, 1), (0, 0))


def test_keras_default_initialisation():
    for net in ganzoo.create("deconv", image_size=64):
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
                assert m.weight.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out)) + 1e-6
                assert torch.count_nonzero(m.bias) == 0


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(size, channels):
    _, _, images = check_shapes_and_range("deconv", 2, image_size=size, channels=channels, **NARROW)
    assert images.shape == (2, channels, size, size)


def test_unsupported_sizes_are_rejected():
    check_rejected("deconv", {"image_size": 32}, networks=[{"image_size": 96}])


def test_one_training_step_with_the_registered_objective():
    opt = ARCH.optimizer
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (2e-4, 2e-4, (0.5, 0.999), 128)
    train_step("deconv", torch.rand(2, 3, 64, 64) * 2 - 1, watch=lambda G, D: (G.project.weight, D.head.weight),
               image_size=64, **NARROW)
