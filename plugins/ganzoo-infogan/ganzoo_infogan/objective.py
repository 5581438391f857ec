"""The ``infogan`` objective: the GAN game plus the variational mutual-information term.

Chen et al. 2016 (arXiv:1606.03657), Eq. (6): ``min_{G,Q} max_D V(D, G) -
lambda * L_I(G, Q)``, where ``L_I = E_{c ~ P(c), x ~ G(z, c)}[log Q(c | x)] +
H(c) <= I(c; G(z, c))`` is the variational lower bound of §5. ``H(c)`` is a
constant, so maximizing ``L_I`` is minimizing Q's negative log-likelihood of
the codes G was given:

* categorical codes: the cross-entropy of Q's logits against the code;
* continuous codes: the Gaussian negative log-likelihood under Q's mean and
  standard deviation (fixed at 1 unless the model learns it).

As in the authors' ``infogan_trainer.py``, the term enters both updates: D's
loss (training Q and the trunk it shares with D) and G's loss (training G).
``lambda_cat = 1`` (the paper's setting for discrete codes) and ``lambda_cont =
0.1``: the paper uses a smaller lambda for continuous codes so that ``lambda *
L_I`` stays on the scale of the GAN objective (the authors' MNIST script uses
``info_reg_coeff=1.0`` for both). The GAN part is the non-saturating game with
binary cross-entropy on logits, the authors' ``-log D(G(z))`` generator loss.

Logged per step: ``loss_d``, ``loss_g``, ``d_real``, ``d_fake``, and the
lower-bound estimates ``mi_cat`` and ``mi_cont`` (nats: ``H(c) - NLL``), with
``q_acc``, Q's accuracy on the categorical codes of the step's fake batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.objective import StepContext

from .models import LOG_2PI, QOutput

__all__ = ["InfoGANObjective", "info_nll"]


def info_nll(G, q: QOutput, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(categorical NLL, continuous NLL, accuracy)`` of Q(c | G(z, c)) for the codes in ``z``.

    NLLs are summed over codes and averaged over the batch, in nats, float32.
    """
    _, cats, cont = G.split_latent(z)
    zero = z.new_zeros(())
    nll_cat, correct = zero, zero
    for logits, target in zip(q.cat_logits, cats):
        logits = logits.float()
        nll_cat = nll_cat + F.cross_entropy(logits, target)
        correct = correct + (logits.argmax(dim=1) == target).float().mean()
    acc = correct / max(1, len(cats))
    nll_cont = zero
    if cont.shape[1]:
        mean = q.cont_mean.float()
        if q.cont_logstd is None:  # fixed std 1
            nll = 0.5 * (cont - mean).pow(2) + 0.5 * LOG_2PI
        else:
            logstd = q.cont_logstd.float()
            nll = 0.5 * ((cont - mean) * torch.exp(-logstd)).pow(2) + logstd + 0.5 * LOG_2PI
        nll_cont = nll.sum(dim=1).mean()
    return nll_cat, nll_cont, acc


class InfoGANObjective(ganzoo.Objective):
    """InfoGAN: non-saturating GAN + lambda * Q's code NLL, in both D/Q's and G's updates."""

    name = "infogan"

    hparams = ("lambda_cat", "lambda_cont")
    augmentable = False
    augmentable_why = "it also reads D through D.heads, which the augmentation does not wrap"

    def __init__(self, lambda_cat: float = 1.0, lambda_cont: float = 0.1) -> None:
        self.lambda_cat = float(lambda_cat)
        self.lambda_cont = float(lambda_cont)
        if self.lambda_cat < 0 or self.lambda_cont < 0:
            raise ValueError("lambda_cat and lambda_cont must be >= 0")

    def _info(self, G, q, z):
        nll_cat, nll_cont, acc = info_nll(G, q, z)
        return self.lambda_cat * nll_cat + self.lambda_cont * nll_cont, nll_cat, nll_cont, acc

    def step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        G, D = ctx.G, ctx.D
        n = real.shape[0]

        # D and Q (one optimizer: Q lives in D, on D's trunk)
        with ctx.autocast():
            z = ctx.latent(n)
            with torch.no_grad():
                fake = G(z)
            real_logits = D(real).float()
            fake_logits, q = D.heads(fake)
            fake_logits = fake_logits.float()
            gan_d = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) \
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            info_d, _, _, _ = self._info(G, q, z)
            loss_d = gan_d + info_d
        ctx.update(loss_d, ctx.opt_d)

        # G, through the updated D and Q (frozen here: their gradients are not needed)
        with ctx.frozen(D):
            with ctx.autocast():
                z = ctx.latent(n)
                logits, q = D.heads(G(z))
                logits = logits.float()
                gan_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
                info_g, nll_cat, nll_cont, acc = self._info(G, q, z)
                loss_g = gan_g + info_g
            ctx.update(loss_g, ctx.opt_g)

        # H(c): log K per categorical code; log 2 per continuous code (U(-1, 1) has density 1/2)
        h_cat = sum(math.log(k) for k in G.categorical)
        h_cont = G.continuous * math.log(2.0)
        with torch.no_grad():
            return {
                "loss_d": loss_d.detach(),
                "loss_g": loss_g.detach(),
                "d_real": torch.sigmoid(real_logits).mean(),
                "d_fake": torch.sigmoid(fake_logits).mean(),
                "mi_cat": (h_cat - nll_cat).detach(),
                "mi_cont": (h_cont - nll_cont).detach(),
                "q_acc": acc.detach(),
            }
