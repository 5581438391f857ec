"""The benchmark suite (quick mode, CPU) and the fast paths of ganzoo.speed. No timing assertions."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo import speed

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks package lives at the repository root

from benchmarks import suite  # noqa: E402
from benchmarks.bf16_check import randomise_bn  # noqa: E402

#: the released architectures at their smallest size and narrower layers: the same layer
#: structure (so the same rewrites apply), a fraction of the work (these tests time nothing)
SMALL = {
    "mlp": {},
    "dcgan": {"image_size": 32, "channels": 1, "ngf": 16, "ndf": 16},
    "began": {"image_size": 32, "channels": 1, "base_channels": 16},
    "upsample": {"image_size": 64, "channels": 3, "base_channels": 32, "gen_channels": (32, 32, 32, 16),
                 "disc_channels": (8, 16, 16, 16, 16)},
    "deconv": {"image_size": 64, "channels": 3, "width": 32},
}
#: bf16 vs fp32 samples in [-1, 1] (benchmarks/README.md has the figures measured at the
#: released sizes with ``python -m benchmarks.bf16_check``)
BF16_MEAN_TOL, BF16_MAX_TOL = 0.02, 0.2


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine two threads wait on each other at every op."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _registered(names):
    known = set(ganzoo.list_architectures())
    return [pytest.param(n, marks=pytest.mark.skipif(n not in known, reason=f"{n} plugin not installed")) for n in names]


# ---------------------------------------------------------------------------- the suite
def test_quick_suite_writes_json_and_markdown(tiny_plugin, tmp_path):
    out = tmp_path / "bench"
    rc = suite.main(["--device", "cpu", "--arch", "tiny", "--quick", "--out", str(out), "--budget", "20"])
    assert rc == 0
    report = json.loads((out / "benchmarks.json").read_text())
    assert report["schema"] == suite.SCHEMA and report["options"]["device"] == "cpu" and report["options"]["quick"]
    for key in ("cpu_model", "cpu_count", "torch_threads", "cpu_features", "bf16_native", "loadavg_start"):
        assert key in report["machine"], key
    assert report["torch"]["torch"] == torch.__version__
    assert report["peak"]["fp32_gflops"] > 0 and report["peak"]["bf16_gflops"] > 0
    tiny = report["architectures"]["tiny"]
    assert tiny["flops_per_image"]["baseline"] > 0 and tiny["sampler"]["notes"]
    assert [f["batch"] for f in tiny["sampling"]] == list(suite.QUICK_BATCHES)
    for fig in tiny["sampling"] + [tiny["training"]]:
        assert fig["status"] == "ok", fig
        assert fig["runs"] >= 2 and fig["speedup"]["median"] > 0
        assert fig["speedup"]["q1"] <= fig["speedup"]["median"] <= fig["speedup"]["q3"]
        for variant in ("baseline", "fast"):
            v = fig[variant]
            assert 0 < v["min_s"] <= v["median_s"] <= v["max_s"]
            assert v["gflops"] > 0
            assert fig["memory"][variant]["peak_mb"] > 0
    for fig in tiny["sampling"]:
        assert fig["baseline"]["per_s"] > 0 and fig["fast"]["per_s"] > 0
        # which variant the fast sampler measured (or found cached) for this batch
        assert fig["fast_variant"] in {"eager-nchw-fp32", "rewritten-nchw-fp32", "rewritten-channels_last-fp32"}
        assert fig["fast_variant_how"] in ("measured", "cached")
    train = tiny["training"]
    assert train["batch"] == 4 and train["baseline"]["steps_per_s"] > 0 and train["fast"]["images_per_s"] > 0
    assert train["losses_finite"]
    md = (out / "benchmarks.md").read_text()
    assert "## Sampling" in md and "## Training step" in md and "| tiny |" in md and "speedup" in md
    assert f"| {tiny['sampling'][0]['fast_variant']} (" in md


def test_device_cuda_without_cuda_is_a_one_line_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--device", "cuda", "--quick", "--out", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "GANZOO_PLUGINS": ""})
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda asked for") and "--device cpu" in lines[0]
    assert not (tmp_path / "benchmarks.json").exists()


def test_unknown_architecture_is_an_error(tmp_path, capsys):
    assert suite.main(["--device", "cpu", "--arch", "no-such-arch", "--quick", "--out", str(tmp_path)]) == 2
    assert "unknown architecture" in capsys.readouterr().err


def test_cuda_paths_are_guarded(tiny_plugin):
    G, _ = ganzoo.create("tiny")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            speed.fast_sampler(G, device="cuda")
    with pytest.raises(ValueError, match="CUDA device"):
        speed.fast_sampler(G, device="cpu", cuda_graphs=True)
    assert speed.fast_sampler(G, device="cpu").cuda_graphs is False
    assert speed.bf16_supported("cpu") == speed.cpu_bf16_native()


# ---------------------------------------------------------------------------- FLOP counting
def test_flop_counter_linear_and_conv():
    lin = nn.Linear(64, 32)
    x = torch.randn(8, 64)
    assert suite._count_flops(lambda: lin(x)) == 2 * 8 * 64 * 32
    conv = nn.Conv2d(3, 16, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    assert suite._count_flops(lambda: conv(x)) == 2 * 2 * 16 * 8 * 8 * 3 * 3 * 3
    convt = nn.ConvTranspose2d(16, 4, 4, stride=2, padding=1)
    x = torch.randn(2, 16, 5, 5)
    # every input pixel meets every kernel tap once: 2 * N * H * W * C_in * C_out * k * k
    assert suite._count_flops(lambda: convt(x)) == 2 * 2 * 5 * 5 * 16 * 4 * 4 * 4
    # the fallback used where FlopCounterMode's module tracking breaks autograd.grad agrees
    assert suite._count_flops_plain(lambda: conv(torch.randn(2, 3, 8, 8))) == 2 * 2 * 16 * 8 * 8 * 3 * 3 * 3


def test_flops_of_a_step_with_a_gradient_penalty():
    D = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 1))
    x = torch.randn(2, 1, 8, 8, requires_grad=True)

    def step():
        (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        g.square().sum().backward()

    assert suite._count_flops(step) > 3 * suite._count_flops(lambda: D(x))


# ---------------------------------------------------------------------------- the fast sampler
@pytest.mark.parametrize("arch", _registered(SMALL))
def test_fast_sampler_reproduces_the_network(arch):
    torch.manual_seed(0)
    G = randomise_bn(ganzoo.create(arch, **SMALL[arch])[0])
    sampler = speed.fast_sampler(G, bf16=False, measure=False)  # the rewritten variant, not a measured choice
    z = torch.randn(3, G.latent_dim)
    ref = G.sample(3, z=z)
    out = sampler(z)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert (out - ref).abs().max() < 1e-4
    assert any("channels_last" in n for n in sampler.notes) or arch == "mlp"
    if arch in ("mlp", "dcgan", "began"):
        assert any("folded" in n for n in sampler.notes), sampler.notes
    if arch == "upsample":
        assert sum("4x4/2 transposed conv" in n for n in sampler.notes) == 4, sampler.notes
    if arch == "deconv":
        assert any("crop" in n for n in sampler.notes), sampler.notes


def test_fast_sampler_conditional_and_pixel_range(tiny_plugin):
    G, _ = ganzoo.create("tiny", num_classes=3)
    G = randomise_bn(G)
    z, labels = torch.randn(5, G.latent_dim), torch.tensor([0, 1, 2, 1, 0])
    # fp32 to compare exactly: bf16=None would pick bf16 autocast on a CPU with AVX-512 BF16
    assert (speed.fast_sampler(G, bf16=False)(z, labels) - G.sample(5, z=z, labels=labels)).abs().max() < 1e-5
    with pytest.raises(ValueError, match="conditional"):
        speed.fast_sampler(G)(z)
    G.pixel_range = (0.0, 1.0)
    assert (speed.fast_sampler(G, bf16=False)(z, labels) - G.sample(5, z=z, labels=labels)).abs().max() < 1e-5


def test_sample_fast_flag_caches_and_follows_weight_changes(tiny_plugin):
    G = randomise_bn(ganzoo.create("tiny")[0])
    G.train()
    a = G.sample(6, seed=3, fast=True)
    assert G.training  # restored
    assert (a - G.sample(6, seed=3)).abs().max() < 1e-5
    s1 = speed.cached_sampler(G, device=G.device, bf16=False)
    G.sample(2, seed=0, fast=True)
    assert speed.cached_sampler(G, device=G.device, bf16=False) is s1  # reused
    with torch.no_grad():
        G.net[0].weight.mul_(1.5)  # weights change (in place, as an optimizer step does)
    b = G.sample(6, seed=3, fast=True)
    assert speed.cached_sampler(G, device=G.device, bf16=False) is not s1
    assert (b - G.sample(6, seed=3)).abs().max() < 1e-5 and (b - a).abs().max() > 1e-3
    assert G.sample(300, seed=1, fast=True, batch_size=128).shape == (300, 1, 16, 16)


def test_a_rewrite_that_breaks_the_network_is_dropped(tiny_plugin, monkeypatch):
    G = randomise_bn(ganzoo.create("tiny")[0])

    def broken(gm):
        for m in gm.modules():
            if isinstance(m, nn.Conv2d):
                with torch.no_grad():
                    m.weight.mul_(2.0)
        return ["broke a conv"]

    monkeypatch.setattr(speed, "_INFERENCE_PASSES", speed._INFERENCE_PASSES + [("broken", broken)])
    sampler = speed.fast_sampler(G, bf16=False, rewrite=True)  # fp32, to compare exactly on any CPU
    z = torch.randn(4, G.latent_dim)
    assert (sampler(z) - G.sample(4, z=z)).abs().max() < 1e-5
    assert any("'broken' dropped" in n for n in sampler.notes)


@pytest.mark.parametrize("arch", _registered(SMALL))
def test_bf16_samples_stay_close_to_fp32(arch):
    torch.manual_seed(0)
    G = randomise_bn(ganzoo.create(arch, **SMALL[arch])[0])
    z = torch.randn(2, G.latent_dim)
    fp32 = speed.fast_sampler(G, bf16=False, threads=None)(z)
    bf16 = speed.fast_sampler(G, bf16=True, threads=None)(z)
    diff = (bf16 - fp32).abs()
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert diff.mean() < BF16_MEAN_TOL and diff.max() < BF16_MAX_TOL, (float(diff.mean()), float(diff.max()))


def test_thread_tuner_picks_the_faster_count():
    tuner = speed.ThreadTuner([2, 1], explore_every=4)
    fake = {2: 0.5, 1: 0.1}
    chosen = []
    for _ in range(12):
        n = tuner.choose("k")
        chosen.append(n)
        tuner.record("k", n, fake[n])
    assert chosen[0] == 2                 # warm-up with the current count
    assert set(chosen[1:3]) == {1, 2}     # each candidate tried
    assert tuner.best("k") == 1 and chosen[3] == 1
    assert chosen.count(2) >= 3           # re-tried now and then


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("arch", _registered(["upsample", "deconv"]))
def test_training_rewrites_keep_parameters_and_gradients(arch):
    torch.manual_seed(0)
    G, D = ganzoo.create(arch, **SMALL[arch])
    ref = copy.deepcopy(G)
    keys = list(G.state_dict())
    params = list(G.parameters())
    notes = speed.prepare_training(G, D, device="cpu", channels_last=False)
    assert notes and list(G.state_dict()) == keys
    assert all(a is b for a, b in zip(G.parameters(), params))
    z = torch.randn(3, G.latent_dim)
    G.train(), ref.train()
    out, want = G(z), ref(z)
    assert (out - want).abs().max() < 1e-4
    out.square().mean().backward()
    want.square().mean().backward()
    for (name, p), q in zip(G.named_parameters(), ref.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-5), name


@pytest.mark.parametrize("k,stride,bias", [(3, 1, False), (3, 2, True), (5, 1, True)])
def test_one_pixel_conv_is_the_conv(k, stride, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 6, k, stride, k // 2, bias=bias)
    net = nn.Sequential(conv)
    ref = copy.deepcopy(net)
    notes = speed.rewrite_for_training(net)
    assert isinstance(net[0], speed.OnePixelConv2d) and notes[-1].startswith("1 'same' convs")
    assert net[0].weight is conv.weight and list(net.state_dict()) == list(ref.state_dict())
    for size in (1, 3):                   # the matrix product at 1x1, the convolution otherwise
        x = torch.randn(4, 8, size, size)
        out, want = net(x), ref(x)
        assert out.shape == want.shape and (out - want).abs().max() < 1e-5
        net.zero_grad(), ref.zero_grad()
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        (want * torch.arange(want.numel()).view_as(want)).sum().backward()
        for p, q in zip(net.parameters(), ref.parameters()):
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5)


def test_one_pixel_rewrite_leaves_other_convs_alone():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding=0), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=1, groups=2),
                        torch.nn.utils.spectral_norm(nn.Conv2d(4, 4, 3, padding=1)),
                        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"))
    speed.rewrite_for_training(net)
    assert all(type(m) is nn.Conv2d for m in net)


@pytest.mark.parametrize("norm", ["parametrization", "hook"])
def test_training_rewrites_leave_normalized_convs_trainable(norm):
    """A spectral-normed conv's ``weight`` is recomputed from a Parameter at each call; a rewrite that took it
    would freeze a snapshot (it did for FastGAN's G once its power iteration had converged: a fine-tune with
    --ema then failed to deepcopy G)."""
    sn = torch.nn.utils.parametrizations.spectral_norm if norm == "parametrization" else torch.nn.utils.spectral_norm
    torch.manual_seed(0)
    net = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), sn(nn.Conv2d(4, 4, 3, 1, 1)),
                        nn.ZeroPad2d((0, 1, 0, 1)), sn(nn.Conv2d(4, 4, 2)))
    with torch.no_grad():
        for _ in range(200):        # converge u, as in a trained model, so that running the conv matches its weight
            net(torch.randn(1, 4, 4, 4))
    params, types = dict(net.named_parameters()), [type(m) for m in net]
    copy.deepcopy(net)              # what the trainer does for the moving average of G
    assert speed.rewrite_for_training(net) == [] and [type(m) for m in net] == types
    assert dict(net.named_parameters()) == params
    copy.deepcopy(net)
    net(torch.randn(1, 4, 4, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_adam_is_fused_where_available():
    opt = speed.adam([nn.Parameter(torch.zeros(3))], 1e-3, (0.5, 0.999))
    assert opt.defaults.get("fused") or opt.defaults.get("foreach")


def test_choice_check_prints_one_row_per_figure(tiny_plugin, capsys):
    from benchmarks import choice_check

    assert choice_check.main(["--arch", "tiny", "--batch", "1", "--batch", "3", "--rounds", "2", "--calls", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| tiny |")]
    assert len(rows) == 2 and all("(measured)" in r or "(cached)" in r for r in rows), rows
    assert choice_check.main(["--arch", "no-such-arch"]) == 2
    assert "unknown architecture" in capsys.readouterr().err
