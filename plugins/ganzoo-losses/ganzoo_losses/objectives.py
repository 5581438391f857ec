"""Adversarial objectives: WGAN, WGAN-GP, least squares, hinge, and the non-saturating loss with R1.

Every objective here runs the same step (:meth:`AdversarialLoss.step`): ``n_critic``
discriminator updates, then one generator update. Each critic update after the first
draws a fresh real batch through ``ctx.next_real`` when the trainer provides one, and
reuses the step's batch (with fresh latents) otherwise. A subclass only says what its
losses are (:meth:`~AdversarialLoss.d_loss`, :meth:`~AdversarialLoss.g_loss`) and, where
it has them, an extra discriminator term (:meth:`~AdversarialLoss.d_penalty`) and a
constraint applied after each discriminator update (:meth:`~AdversarialLoss.constrain`).

``r1_gamma`` (all of them): adds (gamma / 2) E[||grad D(x)||^2] over real data to the
discriminator loss (Mescheder et al. 2018). Discriminators return one score per image
(a logit, or a critic value for the Wasserstein losses).

The optimizer is the trainer's Adam with the architecture's settings: an objective
cannot choose it. WGAN's paper uses RMSProp at lr 5e-5; see :class:`WGAN`.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.objective import StepContext

from .regularizers import clip_weights_, discriminate, gradient_penalty, r1_penalty

__all__ = ["AdversarialLoss", "WGAN", "WGANGP", "LeastSquares", "Hinge", "NonSaturatingR1"]


class AdversarialLoss(ganzoo.Objective):
    """Base class: ``n_critic`` D updates per G update, optional R1 on real data."""

    hparams: tuple[str, ...] = ("n_critic", "r1_gamma")

    def __init__(self, n_critic: int = 1, r1_gamma: float = 0.0) -> None:
        if int(n_critic) != n_critic or n_critic < 1:
            raise ganzoo.GanzooError(f"{type(self).__name__}: n_critic must be a whole number >= 1, got {n_critic!r}")
        if r1_gamma < 0:
            raise ganzoo.GanzooError(f"{type(self).__name__}: r1_gamma must be >= 0, got {r1_gamma!r}")
        self.n_critic = int(n_critic)
        self.r1_gamma = float(r1_gamma)

    # -- what a subclass defines -------------------------------------------------------------
    def d_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_penalty(self, ctx: StepContext, real: torch.Tensor, fake: torch.Tensor,
                  labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Extra discriminator terms by name, weighted: each is added to the D loss and logged."""
        return {}

    def constrain(self, D: nn.Module) -> None:
        """Called after every discriminator update."""

    # -- the step ----------------------------------------------------------------------------
    def _d_update(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None):
        n = real.shape[0]
        if self.r1_gamma:
            real = real.detach().requires_grad_(True)
        with torch.no_grad(), ctx.autocast():
            fake = ctx.generate(n, labels)
        with ctx.autocast():
            real_scores = discriminate(ctx.D, real, labels).float()
            fake_scores = discriminate(ctx.D, fake, labels).float()
            loss = self.d_loss(real_scores, fake_scores)
        terms = self.d_penalty(ctx, real, fake, labels)
        if self.r1_gamma:
            terms["r1"] = 0.5 * self.r1_gamma * r1_penalty(real_scores, real)
        ctx.update(sum(terms.values(), loss), ctx.opt_d)
        self.constrain(ctx.D)
        return loss, real_scores, fake_scores, terms

    def step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        n = real.shape[0]
        g_labels = labels
        for i in range(self.n_critic):
            if i and ctx.next_real is not None:
                real, labels = ctx.next_real()
            d_loss, real_scores, fake_scores, terms = self._d_update(ctx, real, labels)
        with ctx.frozen(ctx.D):  # G's update needs no weight gradients of D
            with ctx.autocast():
                fake = ctx.generate(n, g_labels)
                g_loss = self.g_loss(discriminate(ctx.D, fake, g_labels).float())
            ctx.update(g_loss, ctx.opt_g)
        out = {
            "loss_d": d_loss.detach(),  # the adversarial part; the penalties are logged by name
            "loss_g": g_loss.detach(),
            "d_real": real_scores.detach().mean(),
            "d_fake": fake_scores.detach().mean(),
        }
        out.update({k: v.detach() for k, v in terms.items()})
        return out


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

    def d_loss(self, real_scores, fake_scores):
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()

    def g_loss(self, fake_scores):
        return -fake_scores.mean()


class NonSaturatingR1(AdversarialLoss):
    """Non-saturating GAN loss + R1 penalty gamma 10 on real data (Mescheder, Geiger & Nowozin 2018, arXiv:1711.03975).

    The losses of the built-in ``nonsaturating`` objective in softplus form
    (softplus(-l) = BCE(l, 1)); their experiments use gamma = 10.
    """

    def __init__(self, n_critic: int = 1, r1_gamma: float = 10.0) -> None:
        super().__init__(n_critic=n_critic, r1_gamma=r1_gamma)

    def d_loss(self, real_scores, fake_scores):
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def g_loss(self, fake_scores):
        return F.softplus(-fake_scores).mean()
