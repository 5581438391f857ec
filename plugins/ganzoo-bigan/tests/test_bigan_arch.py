"""The ``bigan`` architecture against BiGAN (arXiv:1605.09782) / ALI (arXiv:1606.00704).

What defines BiGAN, each checked below: an encoder E (inside the generator
module, trained by G's optimizer, saved with G) mapping images to the latent
shape; a discriminator on (x, z) pairs; an objective that scores (x, E(x))
against (G(z), z) and trains G and E with the reversed labels; and, on a toy
problem whose data come from a fixed generator, an encoder that learns to
invert that generator (BiGAN's optimum is E = G^-1).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.objective import StepContext
from ganzoo.testing import check_registered
from ganzoo_bigan import ARCH, BiGANObjective

torch.set_num_threads(1)

SMALL = dict(g_fc=32, g_base=8, e_base=8, e_fc=32, d_base=8, d_fc=32)


def test_registered_with_the_papers_defaults():
    reg = check_registered(ARCH, "ganzoo-bigan")
    assert reg.objective("bigan") is BiGANObjective and ARCH.objective == "bigan"
    assert "1605.09782" in ARCH.reference and "1606.00704" in ARCH.reference
    opt = ARCH.optimizer  # the authors' train_gan.py: Adam 2e-4, momentum 0.5, batch 128
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (2e-4, 2e-4, (0.5, 0.999), 128)
    cfg = ARCH.make_config()
    assert (cfg.image_size, cfg.channels, cfg.latent_dim, cfg.prior) == (28, 1, 50, "uniform")  # "u-50"
    G, _ = ganzoo.create("bigan", **SMALL)
    z = G.sample_latent(4000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 50) and z.min() >= -1 and z.max() <= 1 and abs(z.std().item() - 3 ** -0.5) < 0.01


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_encoder_maps_to_the_latent_and_d_takes_pairs(size, channels):
    G, D = ganzoo.create("bigan", image_size=size, channels=channels, **SMALL)
    x = G.sample(3, seed=0)
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1
    z = G.encode(x)
    assert z.shape == (3, 50) and z.abs().max() < 1            # tanh: inside the U(-1, 1) support
    assert D(x, z).shape == (3,)
    with pytest.raises(ganzoo.GanzooError, match=r"D\(x, z\)"):
        D(x)
    assert G.reconstruct(x).shape == x.shape
    # the encoder is part of the generator: trained by G's optimizer, saved in generator.safetensors
    enc = {id(p) for p in G.encoder.parameters()}
    assert enc and enc <= {id(p) for p in G.parameters()}
    assert any(k.startswith("encoder.") for k in G.state_dict())
    # the joint discriminator depends on z as well as on x
    D.eval()
    assert not torch.equal(D(x, z), D(x, torch.zeros_like(z)))


def test_normal_prior_is_alis():
    G, _ = ganzoo.create("bigan", prior="normal", **SMALL)
    z = G.sample_latent(4000, generator=torch.Generator().manual_seed(0))
    assert abs(z.std().item() - 1) < 0.02 and z.abs().max() > 2
    assert isinstance(G.encoder.net[-1], nn.Identity)
    with pytest.raises(ganzoo.GanzooError):
        ganzoo.create("bigan", prior="laplace")


def test_objective_scores_the_right_pairs_and_updates_e_g_and_d():
    torch.manual_seed(0)
    G, D = ganzoo.create("bigan", **SMALL)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    ctx = StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0)
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    calls = []
    forward = D.forward

    def spy(x, z=None):
        calls.append((x.detach().clone(), z.detach().clone(), torch.is_grad_enabled() and z.requires_grad))
        return forward(x, z)

    D.forward = spy
    latents = []
    sample_latent = G.sample_latent

    def spy_latent(n, **kw):
        latents.append(sample_latent(n, **kw))
        return latents[-1]

    G.sample_latent = spy_latent
    before = {name: p.detach().clone() for name, p in list(G.named_parameters()) + list(D.named_parameters())}
    D_before = {k: v.clone() for k, v in D.state_dict().items()}
    out = BiGANObjective().step(ctx, real, None)
    assert all(torch.isfinite(v) for v in out.values())
    # D step: (x, E(x)) then (G(z), z); G step: (x, E(x)) with gradients into E, then (G(z'), z')
    assert len(calls) == 4 and len(latents) == 2
    assert torch.equal(calls[0][0], real) and torch.equal(calls[1][1], latents[0])
    assert torch.equal(calls[2][0], real) and calls[2][2]           # E(x) carries gradients to E
    assert torch.equal(calls[3][1], latents[1])
    assert calls[1][0].shape == real.shape and not calls[0][2] and not calls[1][2]  # D step: E and G detached
    moved = lambda prefix: any(not torch.equal(before[k], p) for k, p in  # noqa: E731
                               (list(G.named_parameters()) + list(D.named_parameters())) if k.startswith(prefix))
    assert moved("encoder.") and moved("fc.") and moved("net.")     # E and G: one optimizer
    assert any(not torch.equal(D_before[k], v) for k, v in D.state_dict().items() if k.startswith("z_net"))


def test_the_encoder_learns_to_invert_a_fixed_generator():
    """BiGAN's optimum is E = G^-1. With G frozen and the data drawn from it, the objective must teach E that."""
    torch.manual_seed(0)
    G, D = ganzoo.create("bigan", latent_dim=2, **SMALL)
    with torch.no_grad():  # a fixed, well-conditioned generator (He-scaled weights, eval-mode batch norm)
        for part in (G.fc, G.net):
            for m in part.modules():
                if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
                    nn.init.normal_(m.weight, 0.0, 2.0 / m.weight.shape[1 if isinstance(m, nn.Linear) else 0] ** 0.5)
            part.requires_grad_(False)
    G.eval()
    with torch.no_grad():
        data = G(G.sample_latent(512, generator=torch.Generator().manual_seed(0)))
    opt_g = torch.optim.Adam([p for p in G.parameters() if p.requires_grad], 3e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 3e-4, betas=(0.5, 0.999))
    ctx = StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0)
    obj = BiGANObjective()
    z = G.sample_latent(200, generator=torch.Generator().manual_seed(1))

    def inversion():
        with torch.no_grad():
            x = G(z)
        zc = G.encode(x)
        err = float((zc - z).pow(2).mean())
        a, b = zc - zc.mean(0), z - z.mean(0)
        corr = float(((a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0) + 1e-8)).mean())
        return err, corr

    err0, corr0 = inversion()
    g = torch.Generator().manual_seed(0)
    for step in range(60):
        G.eval()
        G.encoder.train()  # only E trains (batch norm in train mode); G stays the fixed function
        ctx.step = step
        obj.step(ctx, data[torch.randint(512, (16,), generator=g)], None)
    err, corr = inversion()
    assert err0 > 0.3 and abs(corr0) < 0.3          # at init E(G(z)) knows nothing of z (E[z^2] = 1/3)
    assert err < 0.5 * err0 and corr > 0.5, (err, corr)


def test_truncation_follows_the_prior():
    from ganzoo import GanzooError

    G, _ = ganzoo.create("bigan", prior="normal", **SMALL)
    assert G.latent_distribution == "normal"
    assert G.sample(4, seed=0, truncation=0.5).shape[0] == 4
    U, _ = ganzoo.create("bigan", **SMALL)
    with pytest.raises(GanzooError, match="latent is uniform"):
        U.sample(4, seed=0, truncation=0.5)
