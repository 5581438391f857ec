"""The ``progan`` architecture against Karras et al. 2018 (arXiv:1710.10196).

What defines ProGAN, each checked below: progressive growing with a fade-in that
is exactly the lower-resolution path at alpha = 0 and exactly the new one at
alpha = 1 (for G, D and the real images), the equalized learning rate (N(0, 1)
weights scaled by the He constant at runtime), pixel norm, minibatch stddev,
WGAN-GP with the drift term, and the image-count schedule saved with the run.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import ganzoo
from ganzoo.data import ImageDataset
from ganzoo.objective import StepContext
from ganzoo.testing import check_registered
from ganzoo.trainer import TrainConfig, Trainer, latest_checkpoint, train
from ganzoo_progan import (ARCH, EqualizedConv2d, EqualizedLinear, MinibatchStddev, PixelNorm, ProgressiveWGANGP,
                           gradient_penalty, images_at, prepare_reals, progress_at)

torch.set_num_threads(1)

TINY = dict(image_size=16, channels=1, latent_dim=8, fmap_base=64, fmap_max=8)  # stages 4, 8, 16 px


def tiny(**kw):
    torch.manual_seed(0)
    return ganzoo.create("progan", **{**TINY, **kw})


def test_registered_with_the_papers_defaults():
    reg = check_registered(ARCH, "ganzoo-progan")
    assert reg.objective("progan") is ProgressiveWGANGP
    assert "1710.10196" in ARCH.reference
    opt = ARCH.optimizer  # §A.1: Adam 0.001, beta1 0, beta2 0.99; minibatch 16 up to 128 px
    assert (opt.lr_g, opt.lr_d, opt.betas, opt.batch_size) == (1e-3, 1e-3, (0.0, 0.99), 16)
    obj = ProgressiveWGANGP()  # §A.1: lambda 10, eps_drift 0.001, 800k images per phase
    assert (obj.lambda_gp, obj.gp_target, obj.eps_drift) == (10.0, 1.0, 0.001)
    assert obj.fade_images == obj.stabilize_images == 800_000
    cfg = ARCH.make_config()
    assert (cfg.latent_dim, cfg.fmap_base, cfg.fmap_max, cfg.mbstd_group_size) == (512, 8192, 512, 4)


def test_channel_counts_follow_table_2():
    G, D = ganzoo.create("progan", image_size=64, channels=3)
    # 512 feature maps up to 32x32, 256 at 64x64 (nf = min(8192 / 2**stage, 512))
    assert [G.to_rgb[s].weight.shape[1] for s in range(5)] == [512, 512, 512, 512, 256]
    assert [D.from_rgb[s].weight.shape[0] for s in range(5)] == [512, 512, 512, 512, 256]
    assert D.conv4.weight.shape[1] == 513  # the minibatch-stddev channel
    assert G.dense.weight.shape == (512 * 16, 512) and D.dense1.weight.shape == (1, 512)


def test_equalized_learning_rate_scales_n01_weights_at_runtime():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    w = conv.weight.detach().clone()
    # stored N(0, 1), not He-initialized
    assert abs(w.mean().item()) < 4 / math.sqrt(w.numel()) and abs(w.std().item() - 1.0) < 0.02
    c = math.sqrt(2.0) / math.sqrt(64 * 9)
    assert conv.scale == pytest.approx(c)
    x = torch.randn(2, 64, 5, 5)
    assert torch.equal(conv(x), F.conv2d(x, w * c, conv.bias, padding=1))
    # the constant is applied on every call, not baked into the weights
    with torch.no_grad():
        conv.weight.mul_(2.0)
    assert torch.allclose(conv(x), 2 * F.conv2d(x, w * c, None, padding=1) + conv.bias.view(1, -1, 1, 1), atol=1e-5)
    # so the gradient reaching the stored weight is c times that of the effective weight (§4.1)
    conv.weight.grad = None
    conv(x).sum().backward()
    w_eff = (conv.weight.detach() * c).requires_grad_(True)
    F.conv2d(x, w_eff, conv.bias.detach(), padding=1).sum().backward()
    assert torch.allclose(conv.weight.grad, c * w_eff.grad, rtol=1e-5, atol=1e-6)
    lin = EqualizedLinear(100, 10, gain=1.0)
    assert lin.scale == pytest.approx(1 / 10) and torch.count_nonzero(lin.bias) == 0
    # every equalized layer of G and D holds N(0, 1) weights
    G, D = ganzoo.create("progan", image_size=32, channels=1, fmap_base=256, fmap_max=64, latent_dim=64)
    ws = torch.cat([m.weight.detach().flatten() for net in (G, D) for m in net.modules()
                    if isinstance(m, (EqualizedConv2d, EqualizedLinear))])
    assert abs(ws.std().item() - 1.0) < 0.01


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = torch.randn(3, 16, 5, 5) * torch.logspace(-1, 3, 5).view(1, 1, 1, 5)
    y = PixelNorm()(x)
    assert torch.allclose(y.pow(2).mean(dim=1), torch.ones(3, 5, 5), atol=1e-5)
    # direction kept per pixel
    assert torch.allclose(F.normalize(y, dim=1), F.normalize(x, dim=1), atol=1e-6)


def test_minibatch_stddev_on_a_known_batch():
    # 8 samples, groups of 4: the authors' code puts sample i in group i mod 2
    x = torch.zeros(8, 2, 1, 2)
    x[0::2, 0, 0, 0] = torch.tensor([1.0, -1.0, 1.0, -1.0])   # group 0, feature (0, 0, 0): std 1
    x[0::2, 1, 0, 1] = torch.tensor([3.0, 3.0, 3.0, 3.0])     # constant: std 0
    x[1::2, 0, 0, 0] = torch.tensor([0.0, 0.0, 4.0, 4.0])     # group 1: std 2
    out = MinibatchStddev(group_size=4)(x)
    assert out.shape == (8, 3, 1, 2) and torch.equal(out[:, :2], x)
    eps = math.sqrt(1e-8)  # sqrt(var + 1e-8) for the constant features
    g0 = (math.sqrt(1 + 1e-8) + 3 * eps) / 4   # mean over the 2 x 1 x 2 = 4 feature positions
    g1 = (math.sqrt(4 + 1e-8) + 3 * eps) / 4
    assert torch.allclose(out[0::2, 2], torch.full((4, 1, 2), g0), atol=1e-7)
    assert torch.allclose(out[1::2, 2], torch.full((4, 1, 2), g1), atol=1e-7)
    # group_size 0: the whole minibatch, one value for all (§3)
    whole = MinibatchStddev(group_size=0)(x)[:, 2]
    assert torch.allclose(whole, whole[0, 0, 0].expand_as(whole))


def test_generator_fade_in_is_exact_at_alpha_0_and_1():
    G, _ = tiny()
    G.eval()
    z = torch.randn(5, 8)
    G.set_progress(0)
    low = G(z, native=True)                                   # 4 px
    G.set_progress(1, 0.0)
    assert torch.equal(G(z, native=True), F.interpolate(low, scale_factor=2, mode="nearest"))
    G.set_progress(1, 1.0)
    high = G(z, native=True)                                  # the 8 px path alone
    h = G._block(1, G._block(0, G.pixel_norm(z)))
    assert torch.equal(high, G.to_rgb[1](h))
    G.set_progress(1, 0.25)
    mid = G(z, native=True)
    assert torch.allclose(mid, 0.75 * F.interpolate(low, scale_factor=2) + 0.25 * high, atol=1e-6)
    # the blend itself at alpha = 1 (what torch.lerp guarantees)
    from ganzoo_progan import fade
    a, b = torch.randn(4), torch.randn(4)
    assert torch.equal(fade(a, b, torch.tensor(1.0)), b) and torch.equal(fade(a, b, torch.tensor(0.0)), a)


def test_discriminator_fade_in_is_exact_at_alpha_0_and_1():
    _, D = tiny()
    D.eval()
    x8 = torch.randn(6, 1, 8, 8)
    D.set_progress(0)
    low = D(F.avg_pool2d(x8, 2))
    D.set_progress(1, 0.0)
    assert torch.equal(D(x8), low)
    D.set_progress(1, 1.0)
    high = D(x8)
    D.set_progress(1, 0.6)
    assert not torch.allclose(D(x8), high) and not torch.allclose(D(x8), low)
    # full-size inputs are box-filtered down to the stage's resolution first
    x16 = torch.randn(6, 1, 16, 16)
    D.set_progress(1, 1.0)
    assert torch.equal(D(x16), D(F.avg_pool2d(x16, 2)))


def test_real_images_are_downscaled_and_blended_like_the_generator():
    real = torch.rand(3, 1, 16, 16) * 2 - 1
    r8 = F.avg_pool2d(real, 2)
    assert torch.equal(prepare_reals(real, 8, None), r8)
    assert torch.equal(prepare_reals(real, 8, torch.tensor(1.0)), r8)
    low = F.interpolate(F.avg_pool2d(r8, 2), scale_factor=2, mode="nearest")
    assert torch.equal(prepare_reals(real, 8, torch.tensor(0.0)), low)
    assert torch.allclose(prepare_reals(real, 8, torch.tensor(0.5)), 0.5 * (low + r8), atol=1e-6)


def test_sampling_returns_full_size_images_at_every_stage():
    G, _ = tiny()
    for stage, alpha in [(0, 1.0), (1, 0.5), (2, 1.0)]:
        G.set_progress(stage, alpha)
        images = G.sample(3, seed=0)
        assert images.shape == (3, 1, 16, 16) and images.abs().max() <= 1
    G.set_progress(0)
    img = G.sample(2, seed=0)
    # stage 0 = the 4 px output up-sampled by 4 with nearest neighbours: 4x4 constant blocks
    assert torch.equal(img, F.interpolate(img[:, :, ::4, ::4], scale_factor=4, mode="nearest"))
    # the fast sampler (built once per set of weights) follows the stage, which lives in buffers
    assert torch.allclose(G.sample(2, seed=0, fast=True), img, atol=1e-5)
    G.set_progress(2, 0.5)
    assert torch.allclose(G.sample(2, seed=0, fast=True), G.sample(2, seed=0), atol=1e-5)


def test_schedule_follows_the_papers_phases():
    f, s = 100, 50
    at = lambda images: progress_at(images, 2, f, s)  # noqa: E731
    assert at(0) == (0, 1.0) and at(49) == (0, 1.0)          # stage 0 (4 px): stabilize 50
    assert at(50) == (1, 0.0) and at(75) == (1, 0.25)         # fade in 8 px over 100
    assert at(150) == (1, 1.0) and at(199) == (1, 1.0)        # stabilize 8 px
    assert at(200) == (2, 0.0) and at(300) == (2, 1.0)        # fade in 16 px, then stay there
    assert at(10 ** 9) == (2, 1.0)
    for images in (0, 50, 75, 150, 200, 260):
        stage, alpha = at(images)
        assert at(images_at(stage, alpha, f, s)) == (stage, alpha)


def test_gradient_penalty_of_a_linear_critic():
    w = torch.randn(1, 2, 3, 3)

    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * w).sum(dim=(1, 2, 3))

    reals, fakes = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    gp = gradient_penalty(Linear(), reals, fakes, torch.rand(4, 1, 1, 1))
    assert torch.allclose(gp, (w.norm() - 1).pow(2).expand(4), atol=1e-5)


def _ctx(G, D, lr=1e-3):
    opt_g = torch.optim.Adam(G.parameters(), lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr, betas=(0.0, 0.99))
    return StepContext(G, D, opt_g, opt_d, torch.device("cpu"), 0)


def test_objective_grows_both_networks_and_trains_the_active_layers():
    G, D = tiny()
    ctx = _ctx(G, D)
    obj = ProgressiveWGANGP(fade_images=8, stabilize_images=4)
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    seen = []
    for step in range(6):
        ctx.step = step
        before = [m.weight.detach().clone() for m in G.to_rgb]
        out = obj.step(ctx, real, None)
        assert all(torch.isfinite(v) for v in out.values())
        seen.append((float(out["stage"]), float(out["alpha"])))
        stage, alpha = int(out["stage"]), float(out["alpha"])
        if alpha > 0:  # the active output layer trains (at alpha = 0 it does not take part yet)
            assert not torch.equal(before[stage], G.to_rgb[stage].weight)
        if alpha < 1:  # while fading, the previous stage's output layer trains too
            assert not torch.equal(before[stage - 1], G.to_rgb[stage - 1].weight)
        if stage < G.max_stage:
            assert torch.equal(before[stage + 1], G.to_rgb[stage + 1].weight)  # layers not grown yet do not
    # 4 images per step: stage 0 for 4 images, fade 8 px over 8, stabilize 4, fade 16 px ...
    assert seen == [(0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (2, 0.0), (2, 0.5)]
    assert (G.current_stage, D.current_stage, G.current_alpha) == (2, 2, 0.5)
    assert int(G.stage) == int(D.stage) == 2 and float(G.alpha) == float(D.alpha) == 0.5
    assert int(obj.state_dict()["images"]) == 24
    # a fresh objective (fine-tuning: no saved state) continues from G's stage and alpha (those of the
    # last step, at 20 images) instead of restarting at 4 px
    fresh = ProgressiveWGANGP(fade_images=8, stabilize_images=4)
    fresh.step(ctx, real, None)
    assert fresh.images == 20 + 4 and (G.current_stage, G.current_alpha) == (2, 0.5)


def test_stage_and_alpha_travel_with_the_weights():
    G, D = tiny()
    G.set_progress(2, 0.375)
    state = G.state_dict()
    assert int(state["stage"]) == 2 and float(state["alpha"]) == 0.375
    G2, _ = tiny()
    G2.load_state_dict(state)
    assert (G2.current_stage, G2.current_alpha, G2.fading) == (2, 0.375, True)
    z = torch.randn(3, 8)
    assert torch.equal(G.eval()(z), G2.eval()(z))


def test_trains_grows_and_resumes_through_the_trainer(tmp_path, monkeypatch):
    # this test is about growing and checkpoints: skip the grid and loss plot (matplotlib costs seconds)
    monkeypatch.setattr(Trainer, "write_samples", lambda self: None)
    monkeypatch.setattr(Trainer, "plot_losses", lambda self: None)
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(32, 1, 16, 16, generator=g) * 255).to(torch.uint8)
    data = ImageDataset(images)
    cfg = TrainConfig(arch="progan", data="synthetic", arch_config=TINY, steps=5, batch_size=4, log_every=1,
                      sample_every=100, checkpoint_every=3, device="cpu",
                      objective_kwargs={"fade_images": 4, "stabilize_images": 4})
    t = train(cfg, tmp_path / "run", progress=False, dataset=data)
    # steps start at 0, 4, 8, 12, 16 images: (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)
    assert (t.G.current_stage, t.G.current_alpha, t.D.current_stage) == (2, 1.0, 2)
    assert t.objective.images == 20
    # the step-3 checkpoint: the stage comes back with the weights, the count with the objective state
    t2 = Trainer(cfg, tmp_path / "run2", dataset=data)
    t2.load_checkpoint(tmp_path / "run" / "checkpoints" / "step-00000003")
    assert (t2.G.current_stage, t2.G.current_alpha, t2.D.current_stage, t2.objective.images) == (1, 1.0, 1, 12)
    assert latest_checkpoint(tmp_path / "run").name == "step-00000005"
    # a run stopped at step 3 and resumed crosses the growth to 16 px exactly as the straight one
    train(dataclasses.replace(cfg, steps=3), tmp_path / "split", progress=False, dataset=data)
    train(cfg, tmp_path / "split", resume=True, progress=False, dataset=data)
    for f in ("generator.safetensors", "discriminator.safetensors"):
        a, b = (load_file(latest_checkpoint(tmp_path / r) / f) for r in ("run", "split"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    G = ganzoo.load(tmp_path / "run")
    assert (G.current_stage, G.current_alpha) == (2, 1.0)
    assert G.sample(2, seed=0).shape == (2, 1, 16, 16)
