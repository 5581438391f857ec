"""The metrics themselves, on feature tensors (no networks here).

Everything that needs it runs in double precision: the Gaussian statistics, the
matrix square root of FID, the MMD sums of KID.

* :func:`frechet_distance` — FID (Heusel et al. 2017) between two Gaussians.
  ``tr sqrtm(S1 S2)`` is computed as the sum of the square roots of the
  eigenvalues of the symmetric PSD matrix ``S1^½ S2 S1^½`` (same eigenvalues as
  ``S1 S2``), which is exact for PSD inputs and never goes complex, unlike
  ``scipy.linalg.sqrtm`` (the reference; the tests compare the two when scipy
  is installed).
* :func:`kernel_inception_distance` — KID (Bińkowski et al. 2018): unbiased
  MMD² with the cubic polynomial kernel ``k(x, y) = (x·y / d + 1)³`` over random
  subsets (default 100 subsets of 1000, as in torch-fidelity), mean ± std.
* :func:`precision_recall` — improved precision and recall (Kynkäänniemi et
  al. 2019): k-NN balls (k = 3) around each real / generated feature.
* :func:`inception_score` — IS (Salimans et al. 2016) from class logits.
* :func:`class_coverage` — predicted-class histogram against uniform.
* :func:`confusion` — a discriminator's confusion matrix (positive = real).
"""
from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch

__all__ = [
    "GaussianAccumulator", "gaussian_stats", "frechet_distance", "kernel_inception_distance",
    "polynomial_mmd2", "precision_recall", "inception_score", "class_coverage", "confusion", "roc_auc",
]


# --------------------------------------------------------------------------- Gaussian statistics


class GaussianAccumulator:
    """Streaming mean and covariance (float64) of feature batches; equals ``np.cov(X, rowvar=False)`` (ddof 1).

    Features are shifted by the first batch's mean before the sums, which keeps
    the single-pass formula accurate.
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: torch.Tensor | None = None
        self._s1: torch.Tensor | None = None
        self._s2: torch.Tensor | None = None

    def add(self, features: torch.Tensor) -> None:
        x = features.detach().to("cpu", torch.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (N, D), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = x.mean(0)
            d = x.shape[1]
            self._s1 = torch.zeros(d, dtype=torch.float64)
            self._s2 = torch.zeros(d, d, dtype=torch.float64)
        xc = x - self._shift
        self._s1 += xc.sum(0)
        self._s2 += xc.T @ xc
        self.n += x.shape[0]

    def state_dict(self) -> dict:
        """The running state (the count, the shift and the float64 sums, as they are: nothing is
        rounded), for :meth:`load_state_dict`: an interrupted pass saves it and resumes from it, and the
        resumed result is bitwise that of an uninterrupted pass when the same batches follow."""
        return {"n": self.n, "shift": self._shift, "s1": self._s1, "s2": self._s2}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (checked: float64 sums of matching shapes, a count >= 0)."""
        n, shift, s1, s2 = int(state["n"]), state["shift"], state["s1"], state["s2"]
        if n < 0:
            raise ValueError(f"negative count {n}")
        if shift is None:
            if n or s1 is not None or s2 is not None:
                raise ValueError("a state without a shift must be empty")
        else:
            d = shift.shape[0] if isinstance(shift, torch.Tensor) and shift.ndim == 1 else -1
            if d < 1 or n < 1 or any(not isinstance(t, torch.Tensor) or t.dtype != torch.float64
                                     for t in (shift, s1, s2)) or s1.shape != (d,) or s2.shape != (d, d):
                raise ValueError("sums of the wrong type or shape")
            shift, s1, s2 = (t.to("cpu").clone() for t in (shift, s1, s2))
        self.n, self._shift, self._s1, self._s2 = n, shift, s1, s2

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu (D,), sigma (D, D))`` in float64."""
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.n}")
        m = self._s1 / self.n
        sigma = (self._s2 - self.n * torch.outer(m, m)) / (self.n - 1)
        return self._shift + m, (sigma + sigma.T) / 2


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (ddof 1) of ``features`` (N, D), float64."""
    acc = GaussianAccumulator()
    acc.add(features)
    return acc.result()


@contextlib.contextmanager
def _one_thread():
    """LAPACK's eigensolvers gain little from a second thread and lose badly on a busy machine
    (measured: a 2048x2048 eigh took 77 s on 2 threads vs 15 s on 1 with the CPUs oversubscribed)."""
    n = torch.get_num_threads()
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


def _psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    with _one_thread():
        w, v = torch.linalg.eigh(a)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    """``tr sqrtm(sigma1 @ sigma2)`` for symmetric PSD matrices, in float64."""
    s1 = torch.as_tensor(sigma1, dtype=torch.float64)
    s2 = torch.as_tensor(sigma2, dtype=torch.float64)
    r = _psd_sqrt((s1 + s1.T) / 2)
    m = r @ s2 @ r
    with _one_thread():
        ev = torch.linalg.eigvalsh((m + m.T) / 2)
    return float(ev.clamp(min=0).sqrt().sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``|mu1 - mu2|² + tr(S1 + S2 - 2 sqrtm(S1 S2))``: the Fréchet distance of two Gaussians (FID)."""
    mu1 = torch.as_tensor(mu1, dtype=torch.float64)
    mu2 = torch.as_tensor(mu2, dtype=torch.float64)
    s1 = torch.as_tensor(sigma1, dtype=torch.float64)
    s2 = torch.as_tensor(sigma2, dtype=torch.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(f"shapes do not match: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
                         f"sigma {tuple(s1.shape)}/{tuple(s2.shape)}")
    diff = mu1 - mu2
    value = float(diff @ diff) + float(torch.trace(s1) + torch.trace(s2)) - 2.0 * trace_sqrt_product(s1, s2)
    return max(value, 0.0)


# --------------------------------------------------------------------------- KID


def _mmd2_batched(x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float, coef0: float) -> torch.Tensor:
    """Unbiased MMD² for a batch of subset pairs: x, y (B, m, d) → (B,)."""
    m = x.shape[1]

    def k(a, b):
        return (torch.bmm(a, b.transpose(1, 2)).double() * gamma + coef0) ** degree

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    sum_xx = kxx.sum((1, 2)) - kxx.diagonal(dim1=1, dim2=2).sum(1)
    sum_yy = kyy.sum((1, 2)) - kyy.diagonal(dim1=1, dim2=2).sum(1)
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * kxy.sum((1, 2)) / (m * m)


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, *, degree: int = 3, gamma: float | None = None,
                    coef0: float = 1.0) -> float:
    """Unbiased MMD² between equal-sized sets with ``k(a, b) = (gamma a·b + coef0)^degree`` (gamma = 1/d).

    The Gram matrices are computed in float32 (features are float32) and the
    kernel values and sums in float64.
    """
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ValueError(f"MMD needs two sets of the same size >= 2, got {x.shape[0]} and {y.shape[0]}")
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return float(_mmd2_batched(x.float()[None], y.float()[None], degree, gamma, coef0)[0])


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """KID: the mean and std of the unbiased polynomial MMD² over ``subsets`` random subsets.

    Each subset draws ``subset_size`` rows of each set without replacement
    (capped at the smaller set's size; the size used is returned). Subsets are
    processed a few at a time as batched matrix products.
    """
    m = min(subset_size, real.shape[0], fake.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 features in each set")
    real, fake = real.float().cpu(), fake.float().cpu()
    d = real.shape[1]
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, min(subsets, (1 << 23) // (m * max(d, m))))  # ~32 MB of gathered features per set
    values = []
    for start in range(0, subsets, chunk):
        c = min(chunk, subsets - start)
        ir = torch.rand(c, real.shape[0], generator=gen).argsort(1)[:, :m]
        jf = torch.rand(c, fake.shape[0], generator=gen).argsort(1)[:, :m]
        values.append(_mmd2_batched(real[ir], fake[jf], 3, 1.0 / d, 1.0))
    t = torch.cat(values)
    return {"mean": float(t.mean()), "std": float(t.std(unbiased=False)) if subsets > 1 else 0.0,
            "subsets": subsets, "subset_size": m}


# --------------------------------------------------------------------------- precision / recall


def _kth_nn_radii(x: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    radii = torch.empty(x.shape[0], dtype=torch.float32)
    for i in range(0, x.shape[0], batch):
        d = torch.cdist(x[i:i + batch], x)
        radii[i:i + batch] = d.kthvalue(k + 1, dim=1).values  # the 1st is the point itself (distance 0)
    return radii


def _inside_any_ball(points: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor, batch: int) -> torch.Tensor:
    inside = torch.empty(points.shape[0], dtype=torch.bool)
    for i in range(0, points.shape[0], batch):
        d = torch.cdist(points[i:i + batch], centers)
        inside[i:i + batch] = (d <= radii[None, :]).any(dim=1)
    return inside


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3, batch: int = 1000) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Precision: the fraction of generated features inside at least one real
    feature's k-NN ball (radius = distance to its k-th nearest real neighbour).
    Recall: the fraction of real features inside at least one generated
    feature's k-NN ball. Distances are Euclidean, in float32.
    """
    real = real.float().cpu()
    fake = fake.float().cpu()
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} features in each set")
    r_real = _kth_nn_radii(real, k, batch)
    r_fake = _kth_nn_radii(fake, k, batch)
    precision = _inside_any_ball(fake, real, r_real, batch).double().mean()
    recall = _inside_any_ball(real, fake, r_fake, batch).double().mean()
    return {"precision": float(precision), "recall": float(recall), "k": k}


# --------------------------------------------------------------------------- class-based


def inception_score(logits: torch.Tensor, *, splits: int = 10) -> dict[str, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))), mean and std over ``splits`` equal splits (Salimans et al. 2016)."""
    logp = torch.log_softmax(logits.double(), dim=1)
    n = logp.shape[0]
    splits = max(1, min(splits, n))
    scores = []
    for part in torch.tensor_split(logp, splits):
        p = part.exp()
        log_py = torch.logsumexp(part, dim=0) - math.log(part.shape[0])
        kl = (p * (part - log_py)).sum(1).mean()
        scores.append(float(kl.exp()))
    t = torch.tensor(scores, dtype=torch.float64)
    return {"mean": float(t.mean()), "std": float(t.std(unbiased=False)) if splits > 1 else 0.0, "splits": splits}


def class_coverage(pred: torch.Tensor, num_classes: int, class_names: Sequence[str] | None = None,
                   *, min_share: float = 0.1) -> dict:
    """How evenly predicted classes cover ``num_classes`` (a mode-collapse check).

    ``pred``: predicted class per sample (or logits (N, K), argmax taken).
    Returns the histogram, ``covered`` = classes that received at least
    ``min_share`` of their uniform share (default a tenth: 1 % of samples for 10
    classes), ``nonempty`` = classes predicted at least once, ``kl_to_uniform``
    = KL(histogram || uniform) in nats (0 = uniform, log K = one class only) and
    ``tv_to_uniform`` = total-variation distance to uniform (0 … 1 - 1/K).
    """
    pred = torch.as_tensor(pred)
    if pred.ndim == 2:
        pred = pred.argmax(1)
    counts = torch.bincount(pred.long().flatten().cpu(), minlength=num_classes)[:num_classes]
    n = int(counts.sum())
    p = counts.double() / max(n, 1)
    u = 1.0 / num_classes
    nz = p > 0
    kl = float((p[nz] * (p[nz] / u).log()).sum())
    tv = float(0.5 * (p - u).abs().sum())
    return {
        "histogram": counts.tolist(),
        "classes": list(class_names) if class_names else list(range(num_classes)),
        "n": n,
        "covered": int((p >= min_share * u * (1 - 1e-9)).sum()),
        "nonempty": int(nz.sum()),
        "num_classes": num_classes,
        "kl_to_uniform": kl,
        "tv_to_uniform": tv,
        "min_share": min_share,
    }


def roc_auc(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> float:
    """Area under the ROC curve for "higher score = real" (ties count half): P(score(real) > score(fake))."""
    r = real_scores.double().flatten().cpu()
    f = fake_scores.double().flatten().cpu()
    allv = torch.cat([r, f])
    order = allv.argsort()
    ranks = torch.empty_like(allv)
    ranks[order] = torch.arange(1, allv.numel() + 1, dtype=torch.float64)
    # average ranks over ties
    uniq, inv, cnt = torch.unique(allv, return_inverse=True, return_counts=True)
    if len(uniq) < allv.numel():
        sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, ranks)
        ranks = (sums / cnt)[inv]
    u = ranks[: r.numel()].sum() - r.numel() * (r.numel() + 1) / 2
    return float(u / (r.numel() * f.numel()))


def confusion(real_scores: torch.Tensor, fake_scores: torch.Tensor, *, threshold: float = 0.0) -> dict:
    """The confusion matrix of a real/fake classifier; positive = real, "real" when score > threshold.

    TP = real called real, FN = real called fake, FP = generated called real,
    TN = generated called fake; accuracy = (TP+TN)/all, sensitivity = TP/(TP+FN)
    (real images recognised), specificity = TN/(TN+FP) (generated images caught).
    """
    r = real_scores.double().flatten().cpu() > threshold
    f = fake_scores.double().flatten().cpu() > threshold
    tp, fn = int(r.sum()), int((~r).sum())
    fp, tn = int(f.sum()), int((~f).sum())
    total = tp + fn + fp + tn

    def ratio(a, b):
        return a / b if b else float("nan")

    return {
        "tp": tp, "fn": fn, "fp": fp, "tn": tn,
        "accuracy": ratio(tp + tn, total),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "threshold": float(threshold),
        "auc": roc_auc(real_scores, fake_scores),
    }
