"""The ``bigan`` objective: a GAN game on (image, latent) pairs.

BiGAN (Donahue et al. 2016, arXiv:1605.09782), §3::

    min_{G,E} max_D  V(D, E, G) = E_{x ~ p_X}[log D(x, E(x))] + E_{z ~ p_Z}[log(1 - D(G(z), z))]

(ALI, Dumoulin et al. 2016, is the same game with a stochastic encoder.)

* D: real pairs ``(x, E(x))`` labelled 1, generated pairs ``(G(z), z)`` labelled 0;
* G and E: the reverse labels, ``(x, E(x))`` as 0 and ``(G(z), z)`` as 1 — the
  "inverted" objective BiGAN's authors optimize in practice instead of the
  minimax one, for the stronger early gradients of the GAN paper's
  ``-log D(G(z))`` trick.

E lives in the generator module, so ``ctx.opt_g`` updates G and E together.
Losses are binary cross-entropy on logits. Logged per step: ``loss_d``,
``loss_g``, ``d_real`` and ``d_fake`` (D's mean probability on real and
generated pairs) and ``d_acc``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.objective import StepContext

__all__ = ["BiGANObjective"]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class BiGANObjective(ganzoo.Objective):
    """BiGAN/ALI: D tells (x, E(x)) from (G(z), z); G and E learn with the labels reversed."""

    name = "bigan"

    hparams = ()
    augmentable = False
    augmentable_why = "its discriminator scores (image, latent) pairs, and the encoder sees the images unaugmented"

    def step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        G, D = ctx.G, ctx.D
        n = real.shape[0]

        # D on the joint pairs; G and E are not updated here
        with ctx.autocast():
            z = ctx.latent(n)
            with torch.no_grad():
                fake = G(z)
                z_real = G.encoder(real)
            real_logits = D(real, z=z_real).float()
            fake_logits = D(fake, z=z).float()
            loss_d = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
        ctx.update(loss_d, ctx.opt_d)

        # G and E (one optimizer), through the updated D whose weights need no gradients here
        with ctx.frozen(D):
            with ctx.autocast():
                z = ctx.latent(n)
                g_real = D(real, z=G.encoder(real)).float()
                g_fake = D(G(z), z=z).float()
                loss_g = _bce(g_real, 0.0) + _bce(g_fake, 1.0)
            ctx.update(loss_g, ctx.opt_g)

        with torch.no_grad():
            d_acc = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
            return {
                "loss_d": loss_d.detach(),
                "loss_g": loss_g.detach(),
                "d_real": torch.sigmoid(real_logits).mean(),
                "d_fake": torch.sigmoid(fake_logits).mean(),
                "d_acc": d_acc,
            }
