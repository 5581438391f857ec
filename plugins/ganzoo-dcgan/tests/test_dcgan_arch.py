"""The ``dcgan`` architecture against Radford et al. 2015 and its reference code.

Parameter counts at 64 px, 3 channels, ngf = ndf = 64 are those of the
reference implementation (pytorch/examples ``dcgan``, bias-free convolutions):
G 3,576,704 and D 2,765,568, layer by layer below.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.testing import check_registered, check_rejected, check_shapes_and_range, train_step
from ganzoo_dcgan import ARCH

# (ConvT / Conv weights, BatchNorm weight+bias) in module order
G64 = [100 * 512 * 16, 2 * 512, 512 * 256 * 16, 2 * 256, 256 * 128 * 16, 2 * 128, 128 * 64 * 16, 2 * 64, 64 * 3 * 16]
D64 = [3 * 64 * 16, 64 * 128 * 16, 2 * 128, 128 * 256 * 16, 2 * 256, 256 * 512 * 16, 2 * 512, 512 * 1 * 16]
NARROW = dict(ngf=8, ndf=8)  # same layers, fewer channels: for the tests that train


def counts(net):
    return [sum(p.numel() for p in m.parameters(recurse=False))
            for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d))]


def test_registered_through_the_entry_point():
    check_registered(ARCH, "ganzoo-dcgan")
    assert ARCH.objective == "nonsaturating"
    assert set(ARCH.image_sizes) == {32, 64} and set(ARCH.channels) == {1, 3}
    opt = ARCH.optimizer  # §4: Adam lr 0.0002, beta1 0.5, mini-batch 128
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (2e-4, 2e-4, (0.5, 0.999), 128)


def test_parameter_counts_of_the_reference_network():
    G, D = ganzoo.create("dcgan")
    assert counts(G) == G64 and sum(p.numel() for p in G.parameters()) == 3_576_704
    assert counts(D) == D64 and sum(p.numel() for p in D.parameters()) == 2_765_568
    G32, D32 = ganzoo.create("dcgan", image_size=32, channels=1)
    assert counts(G32) == [100 * 256 * 16, 512, 256 * 128 * 16, 256, 128 * 64 * 16, 128, 64 * 1 * 16]
    assert counts(D32) == [1 * 64 * 16, 64 * 128 * 16, 256, 128 * 256 * 16, 512, 256 * 1 * 16]


def test_layer_structure_follows_section_3():
    G, D = ganzoo.create("dcgan")
    g = list(G.net)
    # projection to 4x4x(8 ngf) with a ConvTranspose(4, 1, 0), then ConvTranspose(4, 2, 1) blocks
    assert isinstance(g[0], nn.ConvTranspose2d) and (g[0].kernel_size, g[0].stride, g[0].padding) == ((4, 4), (1, 1), (0, 0))
    assert g[0].out_channels == 8 * 64
    for m in g[3::3][:-1]:
        assert isinstance(m, nn.ConvTranspose2d) and (m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1))
    # BN + ReLU after every layer but the output, which is BN-free + tanh
    assert [type(m) for m in g] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU] * 4 + [nn.ConvTranspose2d, nn.Tanh]
    d = list(D.net)
    # no BN on the input layer; BN + LeakyReLU(0.2) on the others; a final 4x4 conv to one logit
    assert [type(m) for m in d] == [nn.Conv2d, nn.LeakyReLU] + [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU] * 3 + [nn.Conv2d]
    assert all(m.negative_slope == 0.2 for m in d if isinstance(m, nn.LeakyReLU))
    assert all((m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1)) for m in d[:-1] if isinstance(m, nn.Conv2d))
    assert (d[-1].out_channels, d[-1].stride, d[-1].padding) == (1, (1, 1), (0, 0))
    assert all(m.bias is None for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    # BatchNorm with the PyTorch/Torch7 defaults (the paper's code), not Keras'
    assert all((m.momentum, m.eps) == (0.1, 1e-5) for net in (G, D) for m in net.modules() if isinstance(m, nn.BatchNorm2d))


def test_feature_map_sizes_at_64_px():
    G, D = ganzoo.create("dcgan")
    G.eval(), D.eval()
    with torch.no_grad():
        x = torch.randn(1, 100, 1, 1)
        sizes = []
        for m in G.net:
            x = m(x)
            if isinstance(m, nn.ConvTranspose2d):
                sizes.append(tuple(x.shape[1:]))
        assert sizes == [(512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32), (3, 64, 64)]  # Fig. 1 (ngf = 64)
        sizes = []
        for m in D.net:
            x = m(x)
            if isinstance(m, nn.Conv2d):
                sizes.append(tuple(x.shape[1:]))
        assert sizes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (1, 1, 1)]


def test_weight_initialisation():
    torch.manual_seed(0)
    G, D = ganzoo.create("dcgan")
    convs = [m.weight for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    w = torch.cat([c.flatten() for c in convs])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3  # N(0, 0.02)
    bns = [m for net in (G, D) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    gamma = torch.cat([m.weight.flatten() for m in bns])
    assert abs(gamma.mean().item() - 1.0) < 3e-3 and abs(gamma.std().item() - 0.02) < 3e-3  # N(1, 0.02)
    assert all(torch.count_nonzero(m.bias) == 0 for m in bns)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(size, channels):
    _, _, images = check_shapes_and_range("dcgan", image_size=size, channels=channels, **NARROW)
    assert images.shape == (3, channels, size, size)


def test_unsupported_sizes_are_rejected():
    check_rejected("dcgan", {"image_size": 128}, networks=[{"image_size": 48}])


def test_one_training_step_with_the_registered_objective():
    train_step("dcgan", torch.rand(4, 3, 32, 32) * 2 - 1, watch=lambda G, D: (G.net[0].weight, D.net[0].weight),
               image_size=32, **NARROW)
