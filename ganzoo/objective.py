"""The objective interface: one training step of D and G.

An objective owns the losses and the order of updates; the generic
:class:`ganzoo.trainer.Trainer` owns everything else (data, devices, logging,
checkpoints). Objectives may keep state (BEGAN's k) as tensors, so that a step
never forces a host sync; the trainer reads scalars only at logging intervals.

:class:`AdversarialLoss` is the template most objectives are: ``n_critic`` D updates and
one G update over ``D.score`` (:meth:`ganzoo.Discriminator.score`); a subclass says only
what its losses are (``d_loss``/``g_loss``). The built-in ``nonsaturating`` and
``minimax`` and the ganzoo-losses plugin's objectives are built on it; an objective
with another shape of step (BEGAN's k, BiGAN's pairs) subclasses :class:`Objective`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import GanzooError

__all__ = ["Objective", "StepContext", "AdversarialLoss", "r1_penalty"]


@dataclass
class StepContext:
    """What an objective needs for one step."""

    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    device: torch.device
    step: int
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    channels_last: bool = False
    #: another real batch ``(images, labels)`` from the training data, for objectives that
    #: update D several times per step (``n_critic``); None: the caller has no stream to draw from
    next_real: Callable[[], tuple[torch.Tensor, torch.Tensor | None]] | None = None
    #: this process's rank and the number of processes (``torchrun``; see ganzoo.distributed):
    #: ``real`` holds this rank's ``batch/world_size`` images of the global batch
    rank: int = 0
    world_size: int = 1

    def latent(self, n: int) -> torch.Tensor:
        """``n`` latents for this rank: its slice of the global batch's draw.

        Every rank draws all ``n * world_size`` latents from the same (lockstep) RNG and
        keeps its own rows, so ranks never share a latent and N ranks see the latents
        one process would with the global batch.
        """
        z = self.G.sample_latent(n * self.world_size, device=self.device)
        return z[self.rank * n:(self.rank + 1) * n]

    def generate(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images from G on fresh latents (``labels``: the batch's, used where G is conditional)."""
        z = self.latent(n)
        return self.G(z, self.G.accepted_labels(labels))

    @staticmethod
    @contextlib.contextmanager
    def frozen(module: torch.nn.Module):
        """Switch off weight gradients of ``module`` for the block (e.g. D during G's update).

        Gradients still flow *through* the module to its inputs; only its own
        weight gradients, which the other player's update would discard, are
        not computed. Parameters that were already frozen stay frozen. A module
        wrapped in DistributedDataParallel also skips its gradient reduction.
        """
        from .distributed import no_sync  # start-up time: torch.distributed's wrappers only once a step runs

        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            with no_sync(module):
                yield module
        finally:
            for p in params:
                p.requires_grad_(True)

    @staticmethod
    def update(loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


class Objective:
    """Base class. Subclasses implement :meth:`step` and keep hyper-parameters as attributes.

    ``step(ctx, real, labels)`` updates D and G once each (or as the objective
    says) and returns named scalar tensors, detached.
    """

    #: the name it is registered under (``register(cls)``) and chosen by (``--objective NAME``)
    name: str = ""
    #: hyper-parameter names, recorded in run and model configs
    hparams: tuple[str, ...] = ()
    #: whether ``--diffaugment`` may wrap ``ctx.D`` (ganzoo.augment): True when the objective
    #: only calls ``ctx.D(images, ...)`` for scores; False (with the reason) otherwise
    augmentable: bool = True
    augmentable_why: str = ""
    #: for ``--ada`` (Karras et al. 2020): the D score that separates "real" from "fake" decisions, so
    #: that r_t = E[sign(D(real) - boundary)]; 0 for a logit; None where scores have no such boundary
    #: (a Wasserstein critic, defined up to a constant): ``--ada`` is refused then
    ada_boundary: float | None = 0.0

    def step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def config(self) -> dict:
        return {k: getattr(self, k) for k in self.hparams}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors the objective learns while training (empty for stateless ones)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got keys {sorted(state)}")

    def to(self, device) -> "Objective":
        for k, v in vars(self).items():
            if isinstance(v, torch.Tensor):
                setattr(self, k, v.to(device))
        return self


def r1_penalty(real_scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] over real data (the R1 of Mescheder, Geiger & Nowozin 2018 without its gamma / 2).

    "Which Training Methods for GANs do actually Converge?" (arXiv:1711.03975), eq. 9.
    ``real`` must require grad and ``real_scores`` be D's output on it (one forward pass
    serves the loss and the penalty).
    """
    (grad,) = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


class AdversarialLoss(Objective):
    """The template of the classic objectives: ``n_critic`` D updates per G update, optional R1 on real data.

    Every objective built on it runs the same step (:meth:`step`): ``n_critic``
    discriminator updates, then one generator update. Each critic update after the first
    draws a fresh real batch through ``ctx.next_real`` when the trainer provides one, and
    reuses the step's batch (with fresh latents) otherwise. A subclass only says what its
    losses are (:meth:`d_loss`, :meth:`g_loss`) and, where it has them, an extra
    discriminator term (:meth:`d_penalty`), a constraint applied after each discriminator
    update (:meth:`constrain`), how D sees the batches (:meth:`d_scores`, :meth:`g_scores`;
    default: real and fake apart, through ``D.score``) and what it logs (:meth:`summary`).

    ``r1_gamma``: adds (gamma / 2) E[||grad D(x)||^2] over real data to the discriminator
    loss (Mescheder et al. 2018). Scores are :meth:`ganzoo.Discriminator.score`: one per
    image (a logit, or a critic value for the Wasserstein losses).

    >>> class Hinge(AdversarialLoss):                                   # doctest: +SKIP
    ...     def d_loss(self, real_scores, fake_scores):
    ...         return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    ...     def g_loss(self, fake_scores):
    ...         return -fake_scores.mean()
    """

    hparams: tuple[str, ...] = ("n_critic", "r1_gamma")

    def __init__(self, n_critic: int = 1, r1_gamma: float = 0.0) -> None:
        if int(n_critic) != n_critic or n_critic < 1:
            raise GanzooError(f"{type(self).__name__}: n_critic must be a whole number >= 1, got {n_critic!r}")
        if r1_gamma < 0:
            raise GanzooError(f"{type(self).__name__}: r1_gamma must be >= 0, got {r1_gamma!r}")
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

    def constrain(self, D: torch.nn.Module) -> None:
        """Called after every discriminator update."""

    def d_scores(self, ctx: StepContext, real: torch.Tensor, fake: torch.Tensor,
                 labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """D's scores of the real and the fake batch for D's update (float32)."""
        return ctx.D.score(real, labels).float(), ctx.D.score(fake, labels).float()

    def g_scores(self, ctx: StepContext, real: torch.Tensor, fake: torch.Tensor,
                 labels: torch.Tensor | None) -> torch.Tensor:
        """D's scores of the fake batch for G's update (float32)."""
        return ctx.D.score(fake, labels).float()

    def summary(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the step logs about D's last update besides the losses."""
        return {"d_real": real_scores.detach().mean(), "d_fake": fake_scores.detach().mean()}

    # -- the step ----------------------------------------------------------------------------
    def _d_update(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None):
        n = real.shape[0]
        if self.r1_gamma:
            real = real.detach().requires_grad_(True)
        with torch.no_grad(), ctx.autocast():
            fake = ctx.generate(n, labels)
        with ctx.autocast():
            real_scores, fake_scores = self.d_scores(ctx, real, fake, labels)
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
                g_loss = self.g_loss(self.g_scores(ctx, real, fake, g_labels))
            ctx.update(g_loss, ctx.opt_g)
        out = {
            "loss_d": d_loss.detach(),  # the adversarial part; the penalties are logged by name
            "loss_g": g_loss.detach(),
        }
        out.update(self.summary(real_scores, fake_scores))
        out.update({k: v.detach() for k, v in terms.items()})
        return out
