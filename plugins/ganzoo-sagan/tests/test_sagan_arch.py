"""The ``sagan`` architecture against Zhang et al. 2019: self-attention, spectral norm in G and D, TTUR, hinge."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import ganzoo
from ganzoo.testing import check_registered, train_step
from ganzoo_losses import gradient_penalty
from ganzoo_sagan import ARCH, SAGANConfig, SelfAttention

NARROW = dict(g_ch=8, d_ch=16)


def test_registered_with_the_papers_recipe():
    check_registered(ARCH, "ganzoo-sagan")
    assert (ARCH.objective, ARCH.objective_kwargs) == ("hinge", {"n_critic": 1})
    opt = ARCH.optimizer  # TTUR: D 4e-4, G 1e-4; Adam beta1 0, beta2 0.9
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (1e-4, 4e-4, (0.0, 0.9), 256)
    assert "1805.08318" in ARCH.reference and not ARCH.conditional
    assert SAGANConfig().attention_resolution == 16 and SAGANConfig(image_size=64).attention_resolution == 32
    assert ARCH.make_config(attention_resolution=8).attention_resolution == 8


def test_spectral_norm_in_both_networks_including_the_attention():
    G, D = ganzoo.create("sagan", **NARROW)
    for net in (G, D):
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
        assert isinstance(net.attention, SelfAttention)
        assert parametrize.is_parametrized(net.attention.f, "weight")


def test_self_attention_follows_the_equations():
    torch.manual_seed(0)
    att = SelfAttention(16)
    x = torch.randn(2, 16, 3, 4)
    assert torch.equal(att(x), x)  # gamma = 0 at initialisation: the identity
    assert (att.f.out_channels, att.g.out_channels, att.h.out_channels, att.v.in_channels) == (2, 2, 2, 2)  # C/8
    with torch.no_grad():
        att.gamma.fill_(0.7)
    f, g, h = att.f(x).flatten(2), att.g(x).flatten(2), att.h(x).flatten(2)
    n_loc = 12
    o = torch.zeros_like(h)
    for j in range(n_loc):
        s = torch.stack([(f[:, :, i] * g[:, :, j]).sum(1) for i in range(n_loc)], 1)  # s_ij = f(x_i) . g(x_j)
        beta = torch.softmax(s, dim=1)  # over i: where location j looks
        o[:, :, j] = (beta[:, None, :] * h).sum(2)
    expected = x + 0.7 * att.v(o.view(2, 2, 3, 4))
    assert torch.allclose(att(x), expected, atol=1e-5)
    beta = att.attention_map(x)
    assert beta.shape == (2, 12, 12) and torch.allclose(beta.sum(2), torch.ones(2, 12))


@pytest.mark.parametrize("size,res", [(32, 16), (32, 8), (64, 32)])
def test_attention_sits_at_the_chosen_resolution_in_g_and_d(size, res):
    G, D = ganzoo.create("sagan", image_size=size, attention_resolution=res, g_ch=4, d_ch=16)
    seen = {}
    for name, net in (("G", G), ("D", D)):
        net.attention.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[0].shape[-1]))
    x = G.sample(2, seed=0)
    D(x)
    assert seen == {"G": res, "D": res} and x.shape == (2, 3, size, size)


def test_unsupported_attention_resolution_names_the_choices():
    with pytest.raises(ganzoo.GanzooError, match="pick one of"):
        ganzoo.create("sagan", attention_resolution=4, **NARROW)
    with pytest.raises(ganzoo.GanzooError, match="pick one of"):
        ganzoo.create("sagan", attention_resolution=32, **NARROW)  # D's maps at 32 px are 16 and 8


def test_gradient_penalty_runs_through_the_attention():
    torch.manual_seed(0)
    G, D = ganzoo.create("sagan", **NARROW)
    with torch.no_grad():
        D.attention.gamma.fill_(1.0)
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    gp = gradient_penalty(D, real, G.sample(2, seed=0))
    gp.backward()  # double backward through softmax/bmm
    assert D.attention.f.parametrizations.weight.original.grad is not None


def test_one_training_step_with_the_registered_objective():
    G, D, _ = train_step("sagan", torch.rand(4, 1, 32, 32) * 2 - 1, logged=None, channels=1, **NARROW)
    assert G.attention.gamma.item() != 0 and D.attention.gamma.item() != 0  # attention starts to be used


def test_trains_with_the_trainer_and_reloads(tmp_path):
    from ganzoo.data import ImageDataset
    from ganzoo.trainer import TrainConfig, train

    data = ImageDataset(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8))
    cfg = TrainConfig(arch="sagan", data="folder:unused", arch_config=NARROW, batch_size=4, steps=2)
    trainer = train(cfg, tmp_path / "run", dataset=data, progress=False)
    G, D = ganzoo.load(tmp_path / "run", discriminator=True)  # spectral norm in G: its u, v round-trip
    assert torch.equal(G.attention.gamma, trainer.G.attention.gamma)
    z = torch.randn(2, G.latent_dim)
    trainer.G.eval()
    assert torch.allclose(G(z), trainer.G(z), atol=1e-5)
