"""Regularizers of the discriminator: spectral normalisation, the WGAN-GP gradient
penalty, the R1 penalty and WGAN's weight clipping.

Spectral normalisation is a property of an architecture (its layers are built
with it), so :func:`spectral_norm_` is a helper that architectures call; the
penalties are terms of an objective's discriminator loss.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo.objective import r1_penalty

__all__ = [
    "spectral_norm_", "SN_LAYERS", "top_singular_value", "gradient_penalty", "r1_penalty",
    "clip_weights_", "discriminate",
]

#: the layers :func:`spectral_norm_` normalises (embeddings only when asked: conditional
#: BatchNorm's gamma and beta embeddings must keep their scale)
SN_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def spectral_norm_(module: nn.Module, *, layers: tuple[type, ...] = SN_LAYERS,
                   n_power_iterations: int = 1, eps: float = 1e-12) -> nn.Module:
    """Spectrally normalise every ``layers`` weight in ``module``, in place; returns ``module``.

    Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative
    Adversarial Networks" (arXiv:1802.05957): each weight W is used as W / sigma(W),
    sigma the largest singular value of W reshaped to (out, in * kh * kw), estimated by
    one power iteration per training forward pass (their Algorithm 1).
    torch's parametrization keeps the weight as ``parametrizations.weight.original`` and
    the power-iteration vectors ``_u``/``_v`` as buffers, so they are saved with the model.

    >>> D = spectral_norm_(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(1)))  # doctest: +SKIP
    """
    for m in list(module.modules()):
        if isinstance(m, layers) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m, n_power_iterations=n_power_iterations, eps=eps)
    return module


def top_singular_value(weight: torch.Tensor, dim: int = 0) -> float:
    """The largest singular value of ``weight`` reshaped as spectral normalisation sees it."""
    w = weight.detach().movedim(dim, 0)
    return float(torch.linalg.matrix_norm(w.reshape(w.shape[0], -1).double(), ord=2))


def discriminate(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """D's score per image, ``D.score(x, labels)`` (:meth:`ganzoo.Discriminator.score`): the name this
    plugin exported before the score joined the core."""
    return D.score(x, labels)


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None, *, target: float = 1.0) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample.

    Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of
    Wasserstein GANs" (arXiv:1704.00028), eq. 3 and Algorithm 1. Zero for a critic whose
    gradient has norm exactly ``target`` everywhere (a 1-Lipschitz linear critic).
    Computed in float32 with a graph through the gradient (``create_graph``), so the
    penalty trains D.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device)
    x_hat = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminate(D, x_hat, labels).float().sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - target).pow(2).mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, c: float) -> None:
    """Clamp every parameter of ``module`` to [-c, c] (WGAN, Arjovsky et al. 2017, Algorithm 1 line 7)."""
    for p in module.parameters():
        p.clamp_(-c, c)
