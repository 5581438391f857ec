"""The ``infogan`` architecture against Chen et al. 2016 (arXiv:1606.03657).

What defines InfoGAN, each checked below: z = noise + categorical + continuous
codes with the paper's MNIST sizes, a Q head on D's trunk, the mutual-information
term (cross-entropy / Gaussian NLL with lambda 1 and 0.1) in both D/Q's and G's
updates, and, trained on a toy dataset for a few dozen steps, a Q that recovers
the categorical code of fresh samples far better than chance.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.objective import StepContext
from ganzoo.testing import check_registered, check_shapes_and_range
from ganzoo_infogan import ARCH, InfoGANObjective, QOutput, info_nll

torch.set_num_threads(1)

SMALL = dict(noise_dim=4, g_fc=32, g_base=8, d_base=8, d_fc=32, q_hidden=16)


def test_registered_with_the_papers_defaults():
    reg = check_registered(ARCH, "ganzoo-infogan")
    assert reg.objective("infogan") is InfoGANObjective and ARCH.objective == "infogan"
    assert "1606.03657" in ARCH.reference
    opt = ARCH.optimizer  # D 2e-4, G 1e-3, Adam beta1 0.5, batch 128 (the authors' MNIST run)
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (1e-3, 2e-4, (0.5, 0.999), 128)
    obj = InfoGANObjective()
    assert (obj.lambda_cat, obj.lambda_cont) == (1.0, 0.1)
    cfg = ARCH.make_config()
    # MNIST: 62 noise + one 10-way categorical + 2 continuous codes = 74 (Table 1 "Input in R^74")
    assert (cfg.image_size, cfg.channels, cfg.noise_dim, cfg.categorical, cfg.continuous) == (28, 1, 62, (10,), 2)
    assert cfg.latent_dim == 74
    assert ARCH.make_config(noise_dim=10, categorical=[3, 4], continuous=1).latent_dim == 18
    with pytest.raises(ganzoo.GanzooError):
        ARCH.make_config(latent_dim=100)


def test_layers_of_table_1():
    G, D = ganzoo.create("infogan")
    lin = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(74, 1024), (1024, 7 * 7 * 128)]
    ups = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in ups] == [(64, (4, 4), (2, 2)), (1, (4, 4), (2, 2))]
    convs = [m for m in D.trunk if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in convs] == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2))]
    assert not isinstance(D.trunk[2], nn.BatchNorm2d)  # no batch norm after D's first layer
    assert D.d_head.out_features == 1
    q = list(D.q_head)
    assert [type(m) for m in q] == [nn.Linear, nn.BatchNorm1d, nn.LeakyReLU, nn.Linear]
    assert (q[0].in_features, q[0].out_features, q[-1].out_features) == (1024, 128, 10 + 2)
    assert all(m.negative_slope == 0.1 for m in D.modules() if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    G, D, x = check_shapes_and_range("infogan", image_size=size, channels=channels, **SMALL)
    assert x.shape == (3, channels, size, size)
    logits, q = D.heads(x)
    assert logits.shape == (3,)
    assert [c.shape for c in q.cat_logits] == [(3, 10)] and q.cont_mean.shape == (3, 2) and q.cont_logstd is None


def test_latent_layout_and_priors():
    G, _ = ganzoo.create("infogan", **SMALL)
    z = G.sample_latent(2000, generator=torch.Generator().manual_seed(0))
    noise, cats, cont = G.split_latent(z)
    assert z.shape == (2000, 4 + 10 + 2)
    assert noise.min() >= -1 and noise.max() <= 1 and noise.std() > 0.5            # U(-1, 1)
    one_hot = z[:, 4:14]
    assert torch.equal(one_hot.sum(1), torch.ones(2000)) and set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert torch.bincount(cats[0], minlength=10).min() > 150                       # uniform over 10 values
    assert cont.min() >= -1 and cont.max() <= 1 and cont.std() > 0.5
    # codes chosen by the caller
    z = G.make_latent(cat=[0, 3, 9], cont=[0.5, -0.25])
    assert z.shape == (3, 16)
    assert G.split_latent(z)[1][0].tolist() == [0, 3, 9]
    assert torch.equal(z[:, 14:], torch.tensor([[0.5, -0.25]]).expand(3, 2))
    z = G.make_latent(4, noise=torch.zeros(4, 4), cat=7, cont=torch.full((4, 2), 0.1))
    assert torch.equal(z[:, :4], torch.zeros(4, 4)) and torch.equal(z[:, 11], torch.ones(4))
    with pytest.raises(ValueError):
        G.make_latent(cat=[10])
    with pytest.raises(ValueError):
        G.make_latent(cat=[1, 2], cont=torch.zeros(3, 2))


def test_sampling_with_fixed_codes():
    torch.manual_seed(0)
    G, _ = ganzoo.create("infogan", **SMALL)
    a = G.sample(4, cat=2, seed=5)
    assert torch.equal(a, G.sample(4, cat=2, seed=5))
    # same seed: same noise and continuous codes; only the categorical code differs
    b = G.sample(4, cat=3, seed=5)
    assert not torch.equal(a, b)
    za = G.make_latent(4, cat=2, generator=torch.Generator().manual_seed(5))
    zb = G.make_latent(4, cat=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(za[:, :4], zb[:, :4]) and torch.equal(za[:, 14:], zb[:, 14:])
    assert torch.equal(a, G.sample(4, z=za))
    # without codes, sample() is the usual seeded draw
    assert torch.equal(G.sample(4, seed=1), G.sample(4, seed=1))


def test_info_nll_is_cross_entropy_plus_gaussian_nll():
    G, _ = ganzoo.create("infogan", **SMALL)
    z = G.make_latent(cat=[1, 4], cont=[[0.5, -1.0], [0.0, 0.25]])
    logits = torch.randn(2, 10)
    mean = torch.tensor([[0.0, 0.0], [0.5, 0.5]])
    nll_cat, nll_cont, acc = info_nll(G, QOutput([logits], mean, None), z)
    assert torch.allclose(nll_cat, F.cross_entropy(logits, torch.tensor([1, 4])))
    # fixed std 1: 0.5 (c - mu)^2 + 0.5 log(2 pi), summed over codes, averaged over the batch
    sq = torch.tensor([[0.25, 1.0], [0.25, 0.0625]])
    assert torch.allclose(nll_cont, (0.5 * sq + 0.5 * math.log(2 * math.pi)).sum(1).mean())
    assert float(acc) == float((logits.argmax(1) == torch.tensor([1, 4])).float().mean())
    # learned std: the Gaussian log-likelihood with it
    logstd = torch.full((2, 2), math.log(2.0))
    _, nll_s, _ = info_nll(G, QOutput([logits], mean, logstd), z)
    want = -torch.distributions.Normal(mean, 2.0).log_prob(torch.tensor([[0.5, -1.0], [0.0, 0.25]])).sum(1).mean()
    assert torch.allclose(nll_s, want)


def _ctx(G, D, lr_d=2e-4):
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr_d, betas=(0.5, 0.999))
    return StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0)


def test_the_information_term_updates_q_and_g():
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    results = {}
    for lambdas in ((0.0, 0.0), (1.0, 0.1)):
        torch.manual_seed(0)
        G, D = ganzoo.create("infogan", **SMALL)
        q0 = [p.detach().clone() for p in D.q_head.parameters()]
        torch.manual_seed(1)
        out = InfoGANObjective(*lambdas).step(_ctx(G, D), real, None)
        assert all(torch.isfinite(v) for v in out.values())
        q_moved = any(not torch.equal(a, b) for a, b in zip(q0, D.q_head.parameters()))
        results[lambdas] = (q_moved, [p.detach().clone() for p in G.parameters()])
    # Q (in D, on D's optimizer) learns only from the information term ...
    assert results[(1.0, 0.1)][0] and not results[(0.0, 0.0)][0]
    # ... and the term also reaches G's update
    assert any(not torch.equal(a, b) for a, b in zip(results[(0.0, 0.0)][1], results[(1.0, 0.1)][1]))


def test_q_recovers_the_categorical_code_of_a_trained_toy_model():
    # 10 classes of toy images: a bright 6x6 square at one of 10 positions
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(10, (256,), generator=g)
    data = torch.full((256, 1, 28, 28), -1.0)
    for i, lab in enumerate(labels.tolist()):
        r, c = divmod(lab, 4)
        data[i, 0, 2 + 8 * r:8 + 8 * r, 2 + 6 * c:8 + 6 * c] = 1.0
    torch.manual_seed(0)
    G, D = ganzoo.create("infogan", **SMALL)
    ctx = _ctx(G, D, lr_d=1e-3)
    obj = InfoGANObjective()
    cat = torch.arange(200) % 10

    def accuracy():
        pred, _ = D.infer_codes(G.sample(200, cat=cat, seed=1))
        return float((pred[:, 0] == cat).float().mean())

    before = accuracy()
    for step in range(80):
        ctx.step = step
        obj.step(ctx, data[torch.randint(256, (16,), generator=g)], None)
    after = accuracy()
    assert before < 0.3            # chance is 0.1
    assert after > 0.5, after      # fresh samples, eval mode: G.sample(cat=...) -> D.infer_codes
