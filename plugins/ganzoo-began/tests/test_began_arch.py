"""What defines source 003's BEGAN: the networks, the init, the k controller, one step.

Line numbers ``L<n>`` refer to source 003, the BEGAN thesis and its code listing.
"""
from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import nn

import ganzoo
from ganzoo.testing import check_rejected
from ganzoo.objective import StepContext
from ganzoo_began import (
    ARCH, BEGANConfig, BEGANDiscriminator, BEGANGenerator, BoundaryEquilibrium, recon_loss,
)

torch.set_num_threads(2)


def cfg(size=32, channels=1, **kw) -> BEGANConfig:
    return ARCH.make_config(image_size=size, channels=channels, **kw)


@pytest.fixture(scope="module")
def nets32():
    torch.manual_seed(0)
    c = cfg(32, 1)
    return BEGANGenerator(c), BEGANDiscriminator(c)


# -- registration and defaults ---------------------------------------------------

def test_registered_through_entry_point():
    from ganzoo.plugins import get_registry

    reg = get_registry()
    assert reg.architectures["began"] is ARCH or reg.architectures["began"].name == "began"
    assert reg.objectives["began"].__name__ == "BoundaryEquilibrium"
    assert not [f for f in reg.failures if "began" in f.name]


def test_trains_in_nchw():
    # channels_last measured slower for BEGAN's training step (see the Architecture)
    assert ganzoo.plugins.get_registry().architecture("began").channels_last is False


def test_defaults_are_the_seeds():
    c = BEGANConfig()
    assert (c.image_size, c.channels, c.latent_dim, c.num_classes) == (64, 1, 48, 0)  # L769, L800, L764
    assert c.base_channels == 64 and c.pretrained_encoder is False  # L903
    opt = ARCH.optimizer
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (1e-4, 1e-5, (0.5, 0.999), 64)  # L957-958, L763
    assert ARCH.objective == "began"
    obj = BoundaryEquilibrium()
    assert obj.config() == {"gamma": 0.5, "lambda_k": 0.001, "k_init": 0.0}  # L767, L768, L963
    assert obj.k.dtype == torch.float32 and obj.k.ndim == 0 and float(obj.k) == 0.0


def test_unsupported_sizes_rejected():
    check_rejected("began", {"image_size": 48}, {"channels": 2})


# -- networks --------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    torch.manual_seed(0)
    c = cfg(size, channels)
    G, D = BEGANGenerator(c), BEGANDiscriminator(c)
    z = torch.randn(2, 48)
    x = G(z)
    assert x.shape == (2, channels, size, size)
    assert x.abs().max() <= 1.0
    r = D(x)
    assert r.shape == x.shape  # D is an autoencoder: output = reconstruction
    assert r.abs().max() <= 1.0  # tanh (L857)
    # up-sampling blocks: 4 at 64 px (L842-L856), one fewer at 32 px
    n_up = int(math.log2(size // 4))
    for net in (G, D.decoder):
        convts = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]
        assert len(convts) == n_up
        assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) for m in convts)
        assert convts[0].in_channels == 512 and convts[-1].out_channels == channels
        assert [m.in_channels for m in convts] == [512, 256, 128, 64][:n_up]
        # BN -> ReLU before each ConvT (L840-L842), Tanh last (L857)
        seq = list(net.deconv)
        assert isinstance(seq[-1], nn.Tanh)
        for i, m in enumerate(seq):
            if isinstance(m, nn.ConvTranspose2d):
                assert isinstance(seq[i - 2], nn.BatchNorm2d) and isinstance(seq[i - 1], nn.ReLU)
                assert seq[i - 2].num_features == m.in_channels
        # PyTorch BatchNorm2d defaults (eps 1e-5, momentum 0.1), not Keras' 0.99/1e-3
        assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert (G.fc.in_features, G.fc.out_features) == (48, 512 * 4 * 4)  # L905
    assert (D.decoder.fc.in_features, D.decoder.fc.out_features) == (512, 512 * 4 * 4)  # L836


@pytest.mark.parametrize("channels", [1, 3])
def test_encoder_is_timm_resnet18(channels):
    c = cfg(32, channels)
    D = BEGANDiscriminator(c)
    enc = D.encoder
    assert isinstance(enc, timm.models.resnet.ResNet)
    assert enc.conv1.in_channels == channels
    assert enc.num_features == 512
    assert isinstance(enc.fc, nn.Identity)  # num_classes=0: no classifier
    assert [len(layer) for layer in (enc.layer1, enc.layer2, enc.layer3, enc.layer4)] == [2, 2, 2, 2]
    ref = timm.create_model("resnet18", pretrained=False, in_chans=channels, num_classes=0)
    assert sum(p.numel() for p in enc.parameters()) == sum(p.numel() for p in ref.parameters())
    assert enc(torch.randn(2, channels, 32, 32)).shape == (2, 512)  # pooled features (L823-L825)
    # freezable part
    parts = ARCH.freezable["encoder"](None, D)
    assert parts == [enc]


def test_generator_param_names_are_the_seeds(nets32):
    G, _ = nets32
    names = set(dict(G.named_parameters()))
    assert {"fc.weight", "fc.bias", "deconv.0.weight", "deconv.2.weight"} <= names  # L905-L909


def test_xavier_init_gain_002():
    """L940-L952: xavier_normal_(gain=0.02) + zero bias on G and D.decoder, not on the encoder."""
    torch.manual_seed(0)
    c = cfg(64, 1)
    G, D = BEGANGenerator(c), BEGANDiscriminator(c)
    for net in (G, D.decoder):
        layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d))]
        assert layers
        for m in layers:
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            expected = 0.02 * math.sqrt(2.0 / (fan_in + fan_out))
            if m.weight.numel() >= 1000:
                assert m.weight.std().item() == pytest.approx(expected, rel=0.1)
            assert m.weight.abs().max().item() < 10 * expected
            assert torch.count_nonzero(m.bias) == 0
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    # the encoder keeps timm's init: its first conv is far from gain-0.02 scale
    w = D.encoder.conv1.weight
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
    assert w.std().item() > 10 * 0.02 * math.sqrt(2.0 / (fan_in + fan_out))
    # tiny weights -> G starts near 0 (L476 "generated data is close to 0")
    with torch.no_grad():
        assert G(torch.randn(4, 48)).abs().max() < 0.5


# -- the k controller on hand-computed values ------------------------------------

class ConstG(ganzoo.Generator):
    """G(z) = b everywhere."""

    def __init__(self, value, shape=(1, 2, 2)):
        super().__init__(latent_dim=3, image_shape=shape)
        self.b = nn.Parameter(torch.tensor(float(value)))

    def forward(self, z):
        return self.b.expand(z.shape[0], *self.image_shape)


class ScaleD(ganzoo.Discriminator):
    """D(x) = a * x, so with a = 0 the reconstruction loss is mean |x|."""

    def __init__(self, a=0.0, shape=(1, 2, 2)):
        super().__init__(latent_dim=3, image_shape=shape)
        self.a = nn.Parameter(torch.tensor(float(a)))

    def forward(self, x):
        return self.a * x


def frozen_ctx(fake_value, step=0):
    """A StepContext whose optimizers have lr 0: losses stay exactly as computed by hand."""
    G, D = ConstG(fake_value), ScaleD(0.0)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.0)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.0)
    return StepContext(G, D, opt_g, opt_d, torch.device("cpu"), step)


def test_recon_loss_is_mean_l1():
    x = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    r = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert recon_loss(x, r).item() == pytest.approx((1 + 1 + 0.5 + 1) / 4)  # L972


def test_k_update_and_M_on_hand_computed_values():
    obj = BoundaryEquilibrium()  # gamma 0.5, lambda_k 0.001, k 0
    ctx = frozen_ctx(0.2)
    real = torch.full((4, 1, 2, 2), 0.8)
    # L(x) = 0.8, L(G(z)) = 0.2 (D(v) = 0)
    out = obj.step(ctx, real, None)
    assert out["l_real"].item() == pytest.approx(0.8)
    assert out["l_fake"].item() == pytest.approx(0.2)
    assert out["loss_g"].item() == pytest.approx(0.2)
    assert out["loss_d"].item() == pytest.approx(0.8 - 0.0 * 0.2)
    # k1 = 0 + 0.001 * (0.5*0.8 - 0.2) = 0.0002;  M = 0.8 + |0.4 - 0.2| = 1.0
    assert out["k"].item() == pytest.approx(0.0002, abs=1e-9)
    assert out["M"].item() == pytest.approx(1.0)
    assert obj.k.item() == pytest.approx(0.0002, abs=1e-9)
    # second step uses k1 in L_D = L(x) - k1 * L(G(z_D))
    out = obj.step(ctx, real, None)
    assert out["loss_d"].item() == pytest.approx(0.8 - 0.0002 * 0.2, abs=1e-7)
    assert out["k"].item() == pytest.approx(0.0004, abs=1e-9)
    for v in out.values():
        assert isinstance(v, torch.Tensor) and v.ndim == 0 and not v.requires_grad
    assert obj.k.dtype == torch.float32 and obj.k.ndim == 0


def test_k_interior_and_M_when_fake_dominates():
    obj = BoundaryEquilibrium(gamma=0.7, lambda_k=0.5, k_init=0.6)
    ctx = frozen_ctx(-0.3)  # L(G(z)) = 0.3
    real = torch.full((2, 1, 2, 2), 0.5)  # L(x) = 0.5
    out = obj.step(ctx, real, None)
    balance = 0.7 * 0.5 - 0.3  # 0.05
    assert out["loss_d"].item() == pytest.approx(0.5 - 0.6 * 0.3)
    assert out["k"].item() == pytest.approx(0.6 + 0.5 * balance)
    assert out["M"].item() == pytest.approx(0.5 + abs(balance))


def test_k_is_clipped_to_0_1():
    obj = BoundaryEquilibrium(gamma=0.5, lambda_k=10.0)
    real = torch.full((2, 1, 2, 2), 0.8)
    out = obj.step(frozen_ctx(0.0), real, None)  # k = clip(0 + 10*(0.4 - 0)) = 1
    assert out["k"].item() == 1.0 and obj.k.item() == 1.0
    real = torch.full((2, 1, 2, 2), 0.2)
    out = obj.step(frozen_ctx(0.8), real, None)  # k = clip(1 + 10*(0.1 - 0.8)) = 0
    assert out["k"].item() == 0.0 and obj.k.item() == 0.0
    # M uses the absolute balance: 0.2 + |0.1 - 0.8|
    assert out["M"].item() == pytest.approx(0.9)


def test_state_dict_round_trip():
    obj = BoundaryEquilibrium(k_init=0.25)
    state = obj.state_dict()
    assert set(state) == {"k"} and state["k"].item() == 0.25
    other = BoundaryEquilibrium()
    other.load_state_dict(state)
    assert other.k.item() == 0.25 and other.k.dtype == torch.float32 and other.k.ndim == 0
    state["k"].fill_(0.9)  # the state is a copy, not an alias
    assert obj.k.item() == 0.25 and other.k.item() == 0.25
    other.load_state_dict({"k": 0.125})  # a plain float (e.g. from JSON) works too
    assert other.k.item() == 0.125
    with pytest.raises(ValueError):
        other.load_state_dict({"k": 0.1, "extra": 1.0})
    with pytest.raises(ValueError):
        other.load_state_dict({})
    with pytest.raises(ValueError):
        BoundaryEquilibrium(k_init=1.5)


# -- one real step ---------------------------------------------------------------

def test_full_step_updates_G_and_D(nets32):
    torch.manual_seed(0)
    G, D = nets32
    opt = ARCH.optimizer
    opt_g = torch.optim.Adam(G.parameters(), lr=opt.lr_g, betas=opt.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=opt.lr_d, betas=opt.betas)
    ctx = StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0)
    obj = BoundaryEquilibrium()
    g0 = {k: v.detach().clone() for k, v in G.state_dict().items()}
    d0 = {k: v.detach().clone() for k, v in D.state_dict().items()}
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    out = obj.step(ctx, real, None)
    assert set(out) == {"loss_d", "loss_g", "l_real", "l_fake", "k", "M"}
    assert all(torch.isfinite(v) for v in out.values())
    assert 0.0 <= out["k"].item() <= 1.0
    assert out["M"].item() >= out["l_real"].item()
    changed = lambda net, before: any(  # noqa: E731
        not torch.equal(p.detach(), before[n]) for n, p in net.named_parameters()
    )
    assert changed(G, g0) and changed(D, d0)
    assert changed(D.encoder, {k[len("encoder."):]: v for k, v in d0.items() if k.startswith("encoder.")})
    assert changed(D.decoder, {k[len("decoder."):]: v for k, v in d0.items() if k.startswith("decoder.")})
    # D's params are trainable again after the G step (gradients were switched off only during it)
    assert all(p.requires_grad for p in D.parameters())


def test_frozen_encoder_stays_frozen(nets32):
    G, D = nets32
    for m in ARCH.freezable["encoder"](G, D):
        m.requires_grad_(False)
    try:
        enc0 = {k: v.detach().clone() for k, v in D.encoder.named_parameters()}
        dec0 = {k: v.detach().clone() for k, v in D.decoder.named_parameters()}
        opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=1e-5, betas=(0.5, 0.999))
        ctx = StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0)
        BoundaryEquilibrium().step(ctx, torch.rand(2, 1, 32, 32) * 2 - 1, None)
        assert all(not p.requires_grad for p in D.encoder.parameters())
        assert all(p.requires_grad for p in D.decoder.parameters())
        assert all(torch.equal(p, enc0[k]) for k, p in D.encoder.named_parameters())
        assert any(not torch.equal(p, dec0[k]) for k, p in D.decoder.named_parameters())
    finally:
        D.requires_grad_(True)


def test_create_via_ganzoo():
    G, D = ganzoo.create("began", image_size=32, channels=3)
    assert isinstance(G, BEGANGenerator) and isinstance(D, BEGANDiscriminator)
    assert G.image_shape == D.image_shape == (3, 32, 32) and G.latent_dim == 48
    assert G.sample(2, seed=0).shape == (2, 3, 32, 32)
