"""The classic GAN objectives (Goodfellow et al. 2014).

Discriminators return logits; ``binary_cross_entropy_with_logits`` is the
numerically stable form of the sources' sigmoid + binary cross-entropy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import GanzooError
from ..hookspecs import hookimpl
from ..objective import Objective, StepContext


def _logits(D, x, labels):
    out = D(x, labels) if getattr(D, "num_classes", 0) else D(x)
    return out.reshape(out.shape[0], -1).mean(dim=1) if out.ndim > 1 else out


class NonSaturating(Objective):
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

    hparams = ("joint_batch", "g_joint_batch", "real_label")

    def __init__(self, joint_batch: bool = False, real_label: float = 1.0, g_joint_batch: bool = False) -> None:
        self.joint_batch = bool(joint_batch)
        self.g_joint_batch = bool(g_joint_batch)
        self.real_label = float(real_label)
        if self.g_joint_batch and not self.joint_batch:
            raise GanzooError("nonsaturating: g_joint_batch=true needs joint_batch=true (G's update sees D's "
                              "batches as D's own update does); add --objective-arg joint_batch=true")

    def _g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def step(self, ctx: StepContext, real, labels):
        n = real.shape[0]
        with torch.no_grad(), ctx.autocast():
            fake = ctx.generate(n, labels)
        with ctx.autocast():
            if self.joint_batch:
                both = torch.cat([real, fake])
                both_labels = torch.cat([labels, labels]) if labels is not None else None
                logits = _logits(ctx.D, both, both_labels).float()
                real_logits, fake_logits = logits[:n], logits[n:]
            else:
                real_logits = _logits(ctx.D, real, labels).float()
                fake_logits = _logits(ctx.D, fake, labels).float()
            d_real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_label))
            d_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            d_loss = d_real + d_fake
        ctx.update(d_loss, ctx.opt_d)
        with ctx.frozen(ctx.D):  # G's update needs no weight gradients of D
            with ctx.autocast():
                fake = ctx.generate(n, labels)
                if self.g_joint_batch:
                    g_logits = _logits(ctx.D, torch.cat([real, fake]), both_labels)[n:].float()
                else:
                    g_logits = _logits(ctx.D, fake, labels).float()
                g_loss = self._g_loss(g_logits)
            ctx.update(g_loss, ctx.opt_g)
        with torch.no_grad():
            d_acc = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
        return {
            "loss_d": d_loss.detach(),
            "loss_g": g_loss.detach(),
            "d_real": torch.sigmoid(real_logits).mean().detach(),
            "d_fake": torch.sigmoid(fake_logits).mean().detach(),
            "d_acc": d_acc,
        }


class Minimax(NonSaturating):
    """The original minimax game: G minimises log(1 - D(G(z))) (saturates early in training)."""

    def _g_loss(self, fake_logits):
        # log(1 - sigmoid(l)) = -softplus(l)
        return -F.softplus(fake_logits).mean()


@hookimpl
def register_objectives(register):
    register("nonsaturating", NonSaturating)
    register("minimax", Minimax)
