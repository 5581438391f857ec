"""BEGAN's boundary-equilibrium objective (Berthelot et al. 2017), as source 003 trains it.

Line numbers ``L<n>`` refer to source 003, the BEGAN thesis and its code listing.

With ``L(v) = mean |v - D(v)|`` (L1 reconstruction, L966-L972; eta=1 of L442)::

    L_D     = L(x) - k_t * L(G(z_D))                        (L454, L998)
    L_G     = L(G(z_G))                                      (L454, L1012-L1015)
    k_{t+1} = clip(k_t + lambda_k * (gamma*L(x) - L_G), 0, 1) (L454, L1025-L1027)
    M       = L(x) + |gamma*L(x) - L_G|                     (L468, L1030)

The order is the listing's (L988-L1027): D is updated on a fresh ``z_D``
(G under no_grad), then G on a fresh ``z_G`` through the *updated* D, then k
from the D step's ``L(x)`` and the G step's ``L_G``.

``k`` is a 0-d float32 tensor updated with tensor ops only, so a step never
syncs with the host (the seed's ``.item()`` at L1025 is what this avoids).
"""
from __future__ import annotations

import torch

import ganzoo
from ganzoo.objective import StepContext


def recon_loss(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """``torch.mean(torch.abs(x - x_recon))`` (L966-L972), in float32 under autocast."""
    return (x.float() - recon.float()).abs().mean()


class BoundaryEquilibrium(ganzoo.Objective):
    """BEGAN: D is an autoencoder; k balances its real and fake reconstruction losses.

    ``gamma`` (diversity ratio, L767 ``gamma = 0.5``), ``lambda_k`` (k's
    learning rate, L768 ``lambda_k = 0.001``, also L474 "We used 0.001"),
    ``k_init`` (L963 ``k = 0.0``; L474 "We initialize k_0 = 0").

    Returns per step: ``loss_d`` (L_D), ``loss_g`` (L_G), ``l_real`` (L(x)),
    ``l_fake`` (L(G(z_D)) of the D step), ``k`` (after the update) and ``M``,
    the quantities the seed's log prints (L1031-L1033).
    """

    name = "began"

    hparams = ("gamma", "lambda_k", "k_init")
    augmentable = False
    augmentable_why = "its discriminator is an autoencoder whose loss compares D(x) with x"

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k_init: float = 0.0) -> None:
        self.gamma = float(gamma)
        self.lambda_k = float(lambda_k)
        self.k_init = float(k_init)
        if not 0.0 <= self.gamma <= 1.0:  # L448 "gamma in [0, 1]"
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if self.lambda_k < 0.0:
            raise ValueError(f"lambda_k must be >= 0, got {lambda_k}")
        if not 0.0 <= self.k_init <= 1.0:  # L472 "k_t in [0, 1]"
            raise ValueError(f"k_init must be in [0, 1], got {k_init}")
        self.k = torch.tensor(self.k_init, dtype=torch.float32)

    # -- state -----------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"k": self.k.detach().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        unknown = sorted(set(state) - {"k"})
        if unknown or "k" not in state:
            raise ValueError(f"BoundaryEquilibrium state needs exactly the key 'k', got {sorted(state)}")
        k = torch.as_tensor(state["k"], dtype=torch.float32).detach().reshape(())
        self.k = k.to(self.k.device).clone()

    # -- one step --------------------------------------------------------------
    def step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        n = real.shape[0]
        k = self.k.to(real.device)

        # Train D (the autoencoder), L988-L1002: fake from a fresh z under no_grad
        with torch.no_grad(), ctx.autocast():
            fake = ctx.generate(n, labels)
        with ctx.autocast():
            l_real = recon_loss(real, ctx.D(real))   # L995
            l_fake = recon_loss(fake, ctx.D(fake))   # L996
            loss_d = l_real - k * l_fake                         # L998
        ctx.update(loss_d, ctx.opt_d)

        # Train G, L1012-L1019: a fresh z, through the updated D. D's weights
        # are not updated here (only opt_g steps), so their gradients are not
        # computed at all (ctx.frozen restores requires_grad exactly: a frozen
        # encoder stays frozen).
        with ctx.frozen(ctx.D):
            with ctx.autocast():
                fake = ctx.generate(n, labels)
                loss_g = recon_loss(fake, ctx.D(fake))  # L1015
            ctx.update(loss_g, ctx.opt_g)

        # k and M, L1025-L1030, with tensor ops (no .item())
        with torch.no_grad():
            l_real_d, loss_g_d = l_real.detach(), loss_g.detach()
            balance = self.gamma * l_real_d - loss_g_d                    # L1025
            self.k = torch.clamp(k + self.lambda_k * balance, 0.0, 1.0)  # L1026-L1027
            M = l_real_d + balance.abs()                                  # L1030
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g_d,
            "l_real": l_real_d,
            "l_fake": l_fake.detach(),
            "k": self.k.clone(),
            "M": M,
        }
