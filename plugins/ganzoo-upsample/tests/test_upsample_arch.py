"""The ``upsample`` architecture against source 000's printed Keras summaries (Figuras 7 and 8).

Parameter counts: Keras counts 4 numbers per BatchNormalization channel (gamma,
beta, moving mean, moving variance); PyTorch has 2 parameters (weight, bias)
and 2 buffers (running_mean, running_var). We compare like for like: a
BatchNorm's Keras count is its PyTorch parameters PLUS its running-stat
buffers, and Keras' "trainable params" are PyTorch's parameters.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo_upsample import ARCH, UpsampleConfig, UpsampleDiscriminator, UpsampleGenerator
from ganzoo.layers.keras import KerasSameConv2d, keras_batchnorm, keras_same_padding
from ganzoo.testing import check_registered, check_rejected, check_shapes_and_range, train_step

# Figura 7 (generator summary): (layer, Keras output shape without batch, Keras param count)
G_SUMMARY = [
    ("dense", (4096,), 413_696),
    ("conv2d", (8, 8, 256), 590_080),
    ("batch_normalization", (8, 8, 256), 1_024),
    ("conv2d_1", (16, 16, 256), 590_080),
    ("batch_normalization_1", (16, 16, 256), 1_024),
    ("conv2d_2", (32, 32, 256), 590_080),
    ("batch_normalization_2", (32, 32, 256), 1_024),
    ("conv2d_3", (64, 64, 128), 295_040),
    ("batch_normalization_3", (64, 64, 128), 512),
    ("conv2d_4", (64, 64, 3), 3_459),
]
# Figura 8 (discriminator summary), every layer in order
D_SUMMARY = [
    ("conv2d_10", (32, 32, 32), 896),
    ("leaky_re_lu_5", (32, 32, 32), 0),
    ("dropout_5", (32, 32, 32), 0),
    ("conv2d_11", (16, 16, 64), 18_496),
    ("zero_padding2d_1", (17, 17, 64), 0),
    ("batch_normalization_8", (17, 17, 64), 256),
    ("leaky_re_lu_6", (17, 17, 64), 0),
    ("dropout_6", (17, 17, 64), 0),
    ("conv2d_12", (9, 9, 128), 73_856),
    ("batch_normalization_9", (9, 9, 128), 512),
    ("leaky_re_lu_7", (9, 9, 128), 0),
    ("dropout_7", (9, 9, 128), 0),
    ("conv2d_13", (9, 9, 256), 295_168),
    ("batch_normalization_10", (9, 9, 256), 1_024),
    ("leaky_re_lu_8", (9, 9, 256), 0),
    ("dropout_8", (9, 9, 256), 0),
    ("conv2d_14", (9, 9, 512), 1_180_160),
    ("batch_normalization_11", (9, 9, 512), 2_048),
    ("leaky_re_lu_9", (9, 9, 512), 0),
    ("dropout_9", (9, 9, 512), 0),
    ("flatten_1", (41_472,), 0),
    ("dense_2", (1,), 41_473),
]
_KIND = {"conv2d": KerasSameConv2d, "batch_normalization": nn.BatchNorm2d, "leaky_re_lu": nn.LeakyReLU,
         "dropout": nn.Dropout, "zero_padding2d": nn.ZeroPad2d, "dense": nn.Linear, "flatten": nn.Flatten}


def keras_count(m: nn.Module) -> int:
    """Parameter count as Keras prints it (BatchNorm: gamma, beta AND moving mean/variance)."""
    n = sum(p.numel() for p in m.parameters(recurse=False))
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        n += m.running_mean.numel() + m.running_var.numel()
    return n


def nchw(keras_shape):
    return keras_shape if len(keras_shape) == 1 else (keras_shape[2], keras_shape[0], keras_shape[1])


# The widths scaled down (same layers, strides, padding and BatchNorm) so that the tests
# that run the networks forward and backward stay fast on a CPU
NARROW = dict(base_channels=16, gen_channels=(16, 16, 16, 8), disc_channels=(4, 8, 8, 8, 8))


def weighted(net):
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))]


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return ganzoo.create("upsample")


def test_registered_through_the_entry_point():
    reg = check_registered(ARCH, "ganzoo-upsample")
    assert ARCH.objective == "nonsaturating" and ARCH.objective_kwargs == {"joint_batch": True}
    assert reg.objective(ARCH.objective)(**ARCH.objective_kwargs).joint_batch is True
    assert ARCH.image_sizes == (64,) and set(ARCH.channels) == {1, 3}


def test_generator_parameter_counts_match_figura_7(nets):
    G, _ = nets
    layers = weighted(G)
    assert [keras_count(m) for m in layers] == [n for _, _, n in G_SUMMARY]
    # Figura 7 totals: 2,486,019 in Keras, of which 2 x (3*256 + 128) = 1,792 are moving statistics
    assert sum(keras_count(m) for m in G.modules()) == 2_486_019
    assert sum(p.numel() for p in G.parameters()) == 2_486_019 - 1_792  # Keras "trainable params"


def test_discriminator_parameter_counts_match_figura_8(nets):
    _, D = nets
    layers = weighted(D)
    assert [keras_count(m) for m in layers] == [n for _, _, n in D_SUMMARY if n]
    assert sum(keras_count(m) for m in D.modules()) == 1_613_889
    assert sum(p.numel() for p in D.parameters()) == 1_613_889 - 2 * (64 + 128 + 256 + 512)


def test_generator_shapes_match_figura_7(nets):
    G, _ = nets
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, k=i_: shapes.__setitem__(k, tuple(o.shape[1:])))
             for i_, m in enumerate(weighted(G))]
    try:
        G.eval()
        with torch.no_grad():
            G(torch.randn(1, 100))
    finally:
        for h in hooks:
            h.remove()
    assert [shapes[i] for i in range(len(G_SUMMARY))] == [nchw(s) for _, s, _ in G_SUMMARY]


def test_discriminator_layers_and_shapes_match_figura_8(nets):
    _, D = nets
    x = torch.zeros(1, 3, 64, 64)
    seen = []
    D.eval()
    with torch.no_grad():
        for layer in D.features:
            x = layer(x)
            seen.append((layer, tuple(x.shape[1:])))
        x = x.flatten(1)
        seen.append((nn.Flatten(), tuple(x.shape[1:])))
        seen.append((D.head, tuple(D.head(x).shape[1:])))
    assert len(seen) == len(D_SUMMARY)
    for (layer, shape), (name, keras_shape, _) in zip(seen, D_SUMMARY):
        kind = name.rstrip("_0123456789")
        assert isinstance(layer, _KIND[kind]), name
        assert shape == nchw(keras_shape), name
    assert D.flat_features == 41_472


def test_zero_padding_is_bottom_right(nets):
    _, D = nets
    pad = next(m for m in D.features if isinstance(m, nn.ZeroPad2d))
    assert pad.padding == (0, 1, 0, 1)  # Keras ((top 0, bottom 1), (left 0, right 1))


def test_batchnorm_is_keras_momentum_0_8_and_eps_1e_3(nets):
    bns = [m for net in nets for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 4 + 4
    for bn in bns:
        # Keras BatchNormalization(momentum=0.8) == PyTorch momentum 0.2 (NOT BatchNorm2d(c, 0.8))
        assert bn.momentum == pytest.approx(0.2) and bn.eps == pytest.approx(1e-3)
    # behaviourally: moving = 0.8 * moving + 0.2 * batch, as Keras does
    bn = keras_batchnorm(3, keras_momentum=0.8, eps=1e-3)
    x = torch.randn(8, 3, 4, 4) + 5.0
    bn.train()(x)
    torch.testing.assert_close(bn.running_mean, 0.8 * torch.zeros(3) + 0.2 * x.mean(dim=(0, 2, 3)))


def test_keras_same_padding_is_asymmetric_for_stride_2():
    assert keras_same_padding(64, 3, 2) == (0, 1)  # even input: the extra row/column at the end
    assert keras_same_padding(17, 3, 2) == (1, 1)  # conv2d_12 in Figura 8: 17 -> 9
    assert keras_same_padding(64, 3, 1) == (1, 1)
    conv = KerasSameConv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left pixel of each window
    x = torch.arange(1.0, 1 + 64 * 64).view(1, 1, 64, 64)
    y = conv(x)
    assert y.shape == (1, 1, 32, 32)
    # Keras windows start at pixel 0 (no top/left padding): output (0, 0) is x[0, 0];
    # PyTorch's symmetric padding=1 would give the zero padding there
    assert y[0, 0, 0, 0] == x[0, 0, 0, 0] and y[0, 0, 1, 1] == x[0, 0, 2, 2]


def test_keras_default_initialisation(nets):
    for net in nets:
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
                assert m.weight.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out)) + 1e-6  # glorot_uniform
                assert torch.count_nonzero(m.bias) == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(channels):
    _, _, images = check_shapes_and_range("upsample", channels=channels, **NARROW)  # the tanh itself: raw G
    assert images.shape == (3, channels, 64, 64)
    assert images.min() >= -1 and images.max() <= 1


def test_unsupported_sizes_are_rejected():
    check_rejected("upsample", {"image_size": 32}, networks=[{"image_size": 128}])


def test_config_round_trips_through_json_types():
    cfg = ARCH.make_config(channels=1)
    again = UpsampleConfig.from_dict({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.to_dict().items()})
    assert again == cfg


def test_one_training_step_with_the_registered_objective():
    train_step("upsample", torch.rand(2, 3, 64, 64) * 2 - 1, watch=lambda G, D: (G.project.weight, D.head.weight),
               **NARROW)


# --- anti-aliasing options (not in the source; module doc "Anti-aliasing") ---

def _nyquist_power(images: torch.Tensor) -> tuple[float, float]:
    """Mean spectral power in the Nyquist row and column (period 2 px along y, along x) over the mean power."""
    power = torch.fft.fft2(images.double()).abs().pow(2).mean((0, 1))
    n = images.shape[-1] // 2
    return (power[n, :].mean() / power.mean()).item(), (power[:, n].mean() / power.mean()).item()


@pytest.mark.parametrize("blur", [False, True])
def test_disc_blur_hides_period_2_patterns_and_their_gradient(blur):
    torch.manual_seed(0)
    D = UpsampleDiscriminator(UpsampleConfig(disc_blur=blur)).eval()
    x = (torch.rand(8, 3, 64, 64) * 2 - 1).requires_grad_()
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    out = D(x)
    out.sum().backward()
    with torch.no_grad():
        for lattice in ((-1.0) ** (xx + yy), (-1.0) ** xx, (-1.0) ** yy):
            change = (D(x + 0.3 * lattice) - out).abs().max().item()
            assert (change < 1e-6) if blur else (change > 1e-4), change
    # the gradient D sends back to G: no checkerboard at all with the blur (Odena et al. 2016)
    for p in _nyquist_power(x.grad):
        assert (p < 1e-8) if blur else (p > 0.1), p


def test_anti_aliasing_keeps_the_source_parameters():
    plain, aa = UpsampleConfig(), UpsampleConfig(disc_blur=True, gen_upsample="bilinear")
    for build in (UpsampleGenerator, UpsampleDiscriminator):
        a, b = build(plain), build(aa)
        assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
        assert len(a.state_dict()) == len(b.state_dict())  # the blur kernel is not saved


def test_bilinear_upsampling_changes_the_generator_output():
    torch.manual_seed(0)
    nearest = UpsampleGenerator(UpsampleConfig()).eval()
    bilinear = UpsampleGenerator(UpsampleConfig(gen_upsample="bilinear")).eval()
    bilinear.load_state_dict(nearest.state_dict())
    z = torch.randn(4, 100)
    with torch.no_grad():
        a, b = nearest(z), bilinear(z)
    assert b.shape == a.shape and not torch.allclose(a, b, atol=1e-3)
    # nearest upsampling repeats pixels in 2x2 blocks before the last convs; bilinear does not
    assert isinstance(bilinear.blocks[0][0], nn.Upsample) and bilinear.blocks[0][0].mode == "bilinear"


def test_unknown_upsampling_mode_is_refused():
    with pytest.raises(ganzoo.GanzooError, match="gen_upsample='bicubic'.*'nearest'.*'bilinear'"):
        UpsampleGenerator(UpsampleConfig(gen_upsample="bicubic"))
