"""The ``fastgan`` architecture against Liu et al. 2021 (arXiv:2101.04775) and its authors' code."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

import ganzoo
from ganzoo.augment import AugmentedDiscriminator
from ganzoo.objective import StepContext
from ganzoo.plugins import get_registry
from ganzoo.trainer import TrainConfig, train
from ganzoo_fastgan import ARCH, SLE, FastGANObjective, NoiseInjection, quarter

NARROW = dict(ngf=4, ndf=4, dec_ch=4)  # the same layers, few channels: for the tests that run the networks


def test_registered_with_the_codes_recipe():
    reg = get_registry()
    assert reg.architecture("fastgan") is ARCH and reg.objective("fastgan") is FastGANObjective
    assert reg.provider[("architecture", "fastgan")] == "ganzoo-fastgan"
    opt = ARCH.optimizer  # train.py: batch 8, Adam 2e-4, betas (0.5, 0.999)
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (2e-4, 2e-4, (0.5, 0.999), 8)
    cfg = ARCH.make_config()
    assert (cfg.image_size, cfg.latent_dim, cfg.ngf, cfg.ndf, cfg.dec_ch) == (256, 256, 64, 64, 32)
    assert "2101.04775" in ARCH.reference and ARCH.objective == "fastgan"


@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes_at_every_size(size):
    G, D = ganzoo.create("fastgan", image_size=size, channels=3, **NARROW)
    x = G(torch.randn(2, 256))
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1  # tanh
    assert D(x).shape == (2, 50)  # two 5x5 logit maps
    scores, loss = D(x, reconstruct=3)
    assert scores.shape == (2, 50) and loss.ndim == 0 and loss > 0
    assert D.rec_size == min(size // 2, 128)  # the code: 128 px reconstructions of 256 px images


def test_generator_widths_follow_the_codes_nfc_multi():
    G, _ = ganzoo.create("fastgan", image_size=256, ngf=8)
    # nfc = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5} * ngf; GLU halves a conv's 2x output
    assert G.init[0].out_channels == 2 * 16 * 8
    outs = {int(r): [m.out_channels for m in blk if isinstance(m, nn.Conv2d)] for r, blk in G.ups.items()}
    assert outs == {8: [128, 128], 16: [64], 32: [32, 32], 64: [32], 128: [16, 16], 256: [8]}
    assert sorted(int(r) for r in G.sle) == [64, 128, 256]  # SLE 4->64, 8->128, 16->256 (Fig. 3)
    assert sum(isinstance(m, NoiseInjection) for m in G.modules()) == 6  # two per "Comp" block


def test_spectral_norm_on_every_conv():
    G, D = ganzoo.create("fastgan", image_size=64, **NARROW)
    convs = [m for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)


def test_skip_layer_excitation_gates_channels_by_the_low_resolution_map():
    torch.manual_seed(0)
    sle = SLE(4, 6)
    low, high = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 32, 32)
    out = sle(low, high)
    gate = out / high
    # one gate in (0, 1) per image and channel, the same at every pixel
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-5)
    assert ((gate > 0) & (gate < 1)).all()
    assert not torch.allclose(sle(low * 3, high), out)  # the low map decides the gate


def test_noise_is_fresh_when_training_and_fixed_when_sampling():
    noise = NoiseInjection(4, seed=1)
    with torch.no_grad():
        noise.weight.fill_(1.0)
    x = torch.zeros(2, 3, 4, 4)
    assert not torch.equal(noise(x), noise(x))
    noise.eval()
    assert torch.equal(noise(x), noise(x)) and torch.equal(noise(x)[0], noise(x)[1])
    G, _ = ganzoo.create("fastgan", image_size=64, **NARROW)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, NoiseInjection):
                m.weight.fill_(0.5)  # trained weights are not zero
    assert torch.equal(G.sample(3, seed=7), G.sample(3, seed=7))


def test_quarters_tile_the_image():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(torch.cat([torch.cat([quarter(x, 0), quarter(x, 1)], 3),
                                  torch.cat([quarter(x, 2), quarter(x, 3)], 3)], 2), x)
    _, D = ganzoo.create("fastgan", image_size=64, **NARROW)
    with pytest.raises(ValueError, match="quarter"):
        D(torch.zeros(1, 3, 64, 64), reconstruct=4)


def test_reconstruction_compares_with_the_images_d_saw():
    """Wrapped by DiffAugment, D's decoders are scored against the augmented images, not the originals."""
    torch.manual_seed(0)
    _, D = ganzoo.create("fastgan", image_size=64, **NARROW)
    D.eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    flip = AugmentedDiscriminator(D, ())  # no policy: must equal D itself
    assert torch.equal(flip(x, reconstruct=0)[1], D(x, reconstruct=0)[1])
    torch.manual_seed(1)
    aug = AugmentedDiscriminator(D, "translation")
    _, loss_aug = aug(x, reconstruct=0)
    torch.manual_seed(1)
    from ganzoo.augment import diff_augment
    assert torch.allclose(loss_aug, D(diff_augment(x, "translation"), reconstruct=0)[1])


def _ctx(G, D):
    return StepContext(G=G, D=D, opt_g=torch.optim.Adam(G.parameters(), 1e-3),
                       opt_d=torch.optim.Adam(D.parameters(), 1e-3), device=torch.device("cpu"), step=0)


def test_the_objective_updates_both_players_and_logs_its_terms():
    torch.manual_seed(0)
    G, D = ganzoo.create("fastgan", image_size=64, **NARROW)
    ctx = _ctx(G, D)
    g0, d0 = [p.clone() for p in G.parameters()], [p.clone() for p in D.parameters()]
    out = FastGANObjective().step(ctx, torch.rand(4, 3, 64, 64) * 2 - 1, None)
    assert set(out) == {"loss_d", "loss_g", "recon", "d_real", "d_fake"}
    assert all(torch.isfinite(v) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))


def test_hinge_with_a_random_margin():
    obj = FastGANObjective(margin_jitter=0.2)
    m = obj._margin(torch.zeros(10_000))
    assert 0.8 <= float(m.min()) and float(m.max()) <= 1.0 and abs(float(m.mean()) - 0.9) < 0.01
    assert torch.equal(FastGANObjective(margin_jitter=0)._margin(torch.zeros(3)), torch.ones(3))


@pytest.mark.parametrize("kwargs, match", [({"recon_weight": -1}, "recon_weight"),
                                           ({"recon_weight": float("nan")}, "recon_weight"),
                                           ({"margin_jitter": 1.5}, "margin_jitter")])
def test_bad_objective_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(ganzoo.GanzooError, match=match):
        FastGANObjective(**kwargs)


def test_bad_widths_are_one_line_errors():
    with pytest.raises(ganzoo.GanzooError, match="ngf"):
        ganzoo.create("fastgan", image_size=64, ngf=3)
    with pytest.raises(ganzoo.GanzooError, match="image size 32"):
        ganzoo.create("fastgan", image_size=32)


def test_trains_with_diffaugment_and_resumes(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(6):
        arr = (torch.rand(64, 64, 3, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(data / f"{i}.png")
    cfg = TrainConfig(arch="fastgan", data=f"folder:{data}", arch_config=dict(NARROW, image_size=64),
                      batch_size=2, steps=2, diffaugment="color,translation", ema=0.999, checkpoint_every=1)
    trainer = train(cfg, tmp_path / "run", progress=False)
    assert trainer.step == 2 and (tmp_path / "run" / "samples.png").exists()
    G = ganzoo.load(str(tmp_path / "run"))
    assert G.sample(2, seed=0).shape == (2, 3, 64, 64)
