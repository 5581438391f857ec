"""Adversarial objectives: WGAN, WGAN-GP, least squares, hinge, and the non-saturating loss with R1.

Every objective here is built on the core's template, :class:`ganzoo.objective.AdversarialLoss`
(``n_critic`` discriminator updates, then one generator update, over ``D.score``): each says
only what its losses are (``d_loss``, ``g_loss``) and, where it has them, an extra
discriminator term (``d_penalty``) and a constraint applied after each discriminator
update (``constrain``).

``r1_gamma`` (all of them): adds (gamma / 2) E[||grad D(x)||^2] over real data to the
discriminator loss (Mescheder et al. 2018). Discriminators return one score per image
(a logit, or a critic value for the Wasserstein losses).

The optimizer is the trainer's Adam with the architecture's settings: an objective
cannot choose it. WGAN's paper uses RMSProp at lr 5e-5; see :class:`WGAN`.
"""
from __future__ import annotations

import warnings

import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.objective import AdversarialLoss

from .regularizers import clip_weights_, gradient_penalty

__all__ = ["AdversarialLoss", "WGAN", "WGANGP", "LeastSquares", "Hinge", "NonSaturatingR1"]


class _Wasserstein(AdversarialLoss):
    """The critic maximises E[D(x)] - E[D(G(z))]; G maximises E[D(G(z))]."""

    ada_boundary = None  # a critic's scores are defined up to a constant: no real/fake boundary for ADA

    def d_loss(self, real_scores, fake_scores):
        return fake_scores.mean() - real_scores.mean()

    def g_loss(self, fake_scores):
        return -fake_scores.mean()


class WGAN(_Wasserstein):
    """WGAN, weight clipping (Arjovsky, Chintala & Bottou 2017, arXiv:1701.07875): n_critic 5, clip 0.01.

    Algorithm 1: ``n_critic`` critic updates per generator update, every critic
    parameter clamped to [-clip, clip] after each update. The paper's optimizer is
    RMSProp at lr 5e-5 (Adam made training unstable, §4.3); ganzoo's trainer builds
    Adam from the architecture's settings, so with this objective train with
    ``--lr-g 5e-5 --lr-d 5e-5 --betas 0.0,0.99`` (``TrainConfig(betas=(0.0, 0.99))`` from
    Python): Adam without momentum, RMSProp with bias correction. Not reproduced either: the
    reference code's 100 critic updates for the first 25 generator updates.
    """

    name = "wgan"

    hparams = ("n_critic", "clip", "r1_gamma")

    def __init__(self, n_critic: int = 5, clip: float = 0.01, r1_gamma: float = 0.0) -> None:
        super().__init__(n_critic=n_critic, r1_gamma=r1_gamma)
        if clip <= 0:
            raise ganzoo.GanzooError(f"WGAN: clip must be > 0, got {clip!r}")
        self.clip = float(clip)

    def constrain(self, D):
        clip_weights_(D, self.clip)


class WGANGP(_Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017, arXiv:1704.00028): gradient penalty lambda 10, n_critic 5.

    Algorithm 1: lambda = 10, n_critic = 5, Adam(1e-4, beta1 0, beta2 0.9) (an
    architecture's optimizer settings). The penalty is per-sample, so the critic must
    not use BatchNorm (§4, "No critic batch normalization"; layer normalisation is their
    drop-in): a warning names the BatchNorm layers found.
    """

    name = "wgan-gp"

    hparams = ("n_critic", "gp_lambda", "r1_gamma")

    def __init__(self, n_critic: int = 5, gp_lambda: float = 10.0, r1_gamma: float = 0.0) -> None:
        super().__init__(n_critic=n_critic, r1_gamma=r1_gamma)
        self.gp_lambda = float(gp_lambda)
        self._bn_checked = False

    def d_penalty(self, ctx, real, fake, labels):
        if not self._bn_checked:
            self._bn_checked = True
            bn = [name for name, m in ctx.D.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            if bn:
                warnings.warn(f"wgan-gp: the critic has BatchNorm ({', '.join(bn[:3])}{', ...' if len(bn) > 3 else ''}), "
                              f"which invalidates the per-sample gradient penalty (Gulrajani et al. §4); "
                              f"use a critic without BatchNorm (e.g. layer norm)", stacklevel=2)
        return {"gp": self.gp_lambda * gradient_penalty(ctx.D, real, fake, labels)}


class LeastSquares(AdversarialLoss):
    """LSGAN (Mao et al. 2017, arXiv:1611.04076): least squares with targets a=0 (fake), b=1 (real), c=1 (G).

    D minimises 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2], G minimises
    1/2 E[(D(G(z)) - c)^2] (eq. 2); a = -1, b = 1, c = 0 is their Pearson chi^2 variant.
    """

    name = "lsgan"

    hparams = ("a", "b", "c", "n_critic", "r1_gamma")

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, n_critic: int = 1, r1_gamma: float = 0.0) -> None:
        super().__init__(n_critic=n_critic, r1_gamma=r1_gamma)
        self.a, self.b, self.c = float(a), float(b), float(c)

    @property
    def ada_boundary(self) -> float:
        """Halfway between the fake and real targets: D's decision boundary (for ``--ada``)."""
        return 0.5 * (self.a + self.b)

    def d_loss(self, real_scores, fake_scores):
        return 0.5 * (real_scores - self.b).pow(2).mean() + 0.5 * (fake_scores - self.a).pow(2).mean()

    def g_loss(self, fake_scores):
        return 0.5 * (fake_scores - self.c).pow(2).mean()


class Hinge(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018): D relu(1 - D(x)) + relu(1 + D(G(z))), G -D(G(z)).

    SNGAN (n_critic 5) and SAGAN (n_critic 1, two time-scale learning rates) train with it.
    """

    name = "hinge"

    def d_loss(self, real_scores, fake_scores):
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()

    def g_loss(self, fake_scores):
        return -fake_scores.mean()


class NonSaturatingR1(AdversarialLoss):
    """Non-saturating GAN loss + R1 penalty gamma 10 on real data (Mescheder, Geiger & Nowozin 2018, arXiv:1711.03975).

    The losses of the built-in ``nonsaturating`` objective in softplus form
    (softplus(-l) = BCE(l, 1)); their experiments use gamma = 10.
    """

    name = "nonsaturating-r1"

    def __init__(self, n_critic: int = 1, r1_gamma: float = 10.0) -> None:
        super().__init__(n_critic=n_critic, r1_gamma=r1_gamma)

    def d_loss(self, real_scores, fake_scores):
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def g_loss(self, fake_scores):
        return F.softplus(-fake_scores).mean()
