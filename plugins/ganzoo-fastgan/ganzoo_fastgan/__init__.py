"""ganzoo plugin: ``fastgan``, the few-shot GAN of Liu et al. 2021, and its objective.

Liu, Zhu, Song & Elgammal 2021, "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis" (ICLR 2021, arXiv:2101.04775). Networks in
:mod:`ganzoo_fastgan.models`; the objective is :class:`FastGANObjective`.

Train it as the paper does, with DiffAugment (§4: "we apply differentiable augmentation";
the code's policy is ``color,translation``) and a moving average of G (the code's
``avg_param_G``, decay 0.999)::

    ganzoo train fastgan --data folder:my_images --image-size 256 \
        --diffaugment color,translation --ema 0.999
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.objective import StepContext

from .models import (
    DEC_WIDTH, G_WIDTH, GLU, SLE, FastGANConfig, FastGANDiscriminator, FastGANGenerator, NoiseInjection, quarter,
)

__all__ = [
    "ARCH", "FastGANConfig", "FastGANGenerator", "FastGANDiscriminator", "FastGANObjective", "SLE", "GLU",
    "NoiseInjection", "quarter", "G_WIDTH", "DEC_WIDTH",
]


class FastGANObjective(ganzoo.Objective):
    """Hinge loss with a random margin and D's reconstruction loss (§3.2, Eq. 3-4; the code's train.py).

    D: ``relu(1 - u - D(x)) + relu(1 - u + D(G(z)))`` with ``u ~ U(0, 0.2)`` per score (the
    code: ``rand * 0.2 + 0.8``), plus ``recon_weight`` times the L1 reconstruction error of D's
    decoders on the real batch (a random quarter per step). G: ``-D(G(z))``. As in the code, one
    batch of fakes per step: D trains on it detached, then G's loss passes the same fakes
    through the updated D (one G forward pass per step, not two).
    """

    name = "fastgan"

    hparams = ("recon_weight", "margin_jitter")

    def __init__(self, recon_weight: float = 1.0, margin_jitter: float = 0.2) -> None:
        if not (recon_weight >= 0 and recon_weight < float("inf")):
            raise ganzoo.GanzooError(f"fastgan: recon_weight must be a finite number >= 0, got {recon_weight!r}")
        if not 0 <= margin_jitter < 1:
            raise ganzoo.GanzooError(f"fastgan: margin_jitter must be in [0, 1), got {margin_jitter!r} "
                                     "(the paper's code: 0.2)")
        self.recon_weight = float(recon_weight)
        self.margin_jitter = float(margin_jitter)

    def _margin(self, scores: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.margin_jitter * torch.rand_like(scores)

    def step(self, ctx: StepContext, real: torch.Tensor, labels) -> dict[str, torch.Tensor]:
        n = real.shape[0]
        part = int(torch.randint(4, ()))
        with ctx.autocast():
            fake = ctx.generate(n)
            real_scores, recon = ctx.D(real, reconstruct=part)
            real_scores = real_scores.float()
            fake_scores = ctx.D(fake.detach()).float()
            d_adv = F.relu(self._margin(real_scores) - real_scores).mean() + \
                F.relu(self._margin(fake_scores) + fake_scores).mean()
            d_loss = d_adv + self.recon_weight * recon.float()
        ctx.update(d_loss, ctx.opt_d)
        with ctx.frozen(ctx.D):
            with ctx.autocast():
                g_loss = -ctx.D(fake).float().mean()
            ctx.update(g_loss, ctx.opt_g)
        return {
            "loss_d": d_adv.detach(),
            "loss_g": g_loss.detach(),
            "recon": recon.detach().float(),
            "d_real": real_scores.detach().mean(),
            "d_fake": fake_scores.detach().mean(),
        }


#: The code's train.py: batch 8, Adam lr 2e-4, betas (0.5, 0.999) for both networks.
ARCH = ganzoo.Architecture(
    "fastgan", FastGANConfig, FastGANGenerator, FastGANDiscriminator,
    objective="fastgan",
    optimizer=ganzoo.OptimizerSettings(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=8),
    image_sizes=(64, 128, 256),
    reference=(
        "Liu, Zhu, Song & Elgammal 2021, 'Towards Faster and Stabilized GAN Training for High-fidelity "
        "Few-shot Image Synthesis', ICLR 2021, arXiv:2101.04775; code odegeasslbc/FastGAN-pytorch"
    ),
    description=(
        "FastGAN: G with skip-layer excitation and GLU up-blocks, a self-supervised D (decoders redraw the "
        "image from its features), hinge loss; for 100-1,000 images; train with --diffaugment color,translation"
    ),
)


register_architectures = ganzoo.registers(ARCH)
register_objectives = ganzoo.registers(FastGANObjective)
