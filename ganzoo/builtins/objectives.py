"""The classic GAN objectives (Goodfellow et al. 2014), on the core's objective template.

Discriminators score with logits (:meth:`ganzoo.Discriminator.score`);
``binary_cross_entropy_with_logits`` is the numerically stable form of the sources'
sigmoid + binary cross-entropy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import GanzooError
from ..hookspecs import hookimpl
from ..objective import AdversarialLoss, StepContext


class NonSaturating(AdversarialLoss):
    """Non-saturating BCE: D on real (1) and fake (0); G with misleading labels (1).

    ``joint_batch=True`` passes real and fake through D as one concatenated batch,
    as the train_step of source 000 does (it matters with BatchNorm in D);
    ``False`` uses two batches, as source 002's ``train_on_batch`` calls do.
    ``g_joint_batch=True`` (with ``joint_batch``) also gives G's update the joint batch and
    takes its loss on the fake half only: with BatchNorm in D, fakes passed alone are
    normalised by their own statistics, so G is judged by another function than the one D
    just trained. Source 000 passes them alone; on jellyfish its D put fakes at 0.02 in its own
    step while G's loss (0.75) said about 0.5 in G's, and G drifted to saturated colours.
    ``real_label`` below 1 is one-sided label smoothing (Salimans et al. 2016).
    """

    name = "nonsaturating"

    hparams = ("joint_batch", "g_joint_batch", "real_label")

    def __init__(self, joint_batch: bool = False, real_label: float = 1.0, g_joint_batch: bool = False) -> None:
        super().__init__(n_critic=1, r1_gamma=0.0)
        self.joint_batch = bool(joint_batch)
        self.g_joint_batch = bool(g_joint_batch)
        self.real_label = float(real_label)
        if self.g_joint_batch and not self.joint_batch:
            raise GanzooError("nonsaturating: g_joint_batch=true needs joint_batch=true (G's update sees D's "
                              "batches as D's own update does); add --objective-arg joint_batch=true")

    def d_scores(self, ctx: StepContext, real, fake, labels):
        if not self.joint_batch:
            return super().d_scores(ctx, real, fake, labels)
        n = real.shape[0]
        logits = ctx.D.score(torch.cat([real, fake]), _twice(labels)).float()
        return logits[:n], logits[n:]

    def g_scores(self, ctx: StepContext, real, fake, labels):
        if not self.g_joint_batch:
            return super().g_scores(ctx, real, fake, labels)
        return ctx.D.score(torch.cat([real, fake]), _twice(labels))[real.shape[0]:].float()

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        d_real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_label))
        d_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return d_real + d_fake

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def summary(self, real_logits, fake_logits):
        with torch.no_grad():
            d_acc = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
        return {
            "d_real": torch.sigmoid(real_logits).mean().detach(),
            "d_fake": torch.sigmoid(fake_logits).mean().detach(),
            "d_acc": d_acc,
        }


def _twice(labels: torch.Tensor | None) -> torch.Tensor | None:
    """The labels of a joint (real, fake) batch: the fakes are drawn with the real batch's labels."""
    return torch.cat([labels, labels]) if labels is not None else None


class Minimax(NonSaturating):
    """The original minimax game: G minimises log(1 - D(G(z))) (saturates early in training)."""

    name = "minimax"

    def g_loss(self, fake_logits):
        # log(1 - sigmoid(l)) = -softplus(l)
        return -F.softplus(fake_logits).mean()


@hookimpl
def register_objectives(register):
    register(NonSaturating)
    register(Minimax)
