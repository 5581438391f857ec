"""The objective interface: one training step of D and G.

An objective owns the losses and the order of updates; the generic
:class:`ganzoo.trainer.Trainer` owns everything else (data, devices, logging,
checkpoints). Objectives may keep state (BEGAN's k) as tensors, so that a step
never forces a host sync; the trainer reads scalars only at logging intervals.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["Objective", "StepContext"]


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
        z = self.latent(n)
        return self.G(z, labels) if getattr(self.G, "num_classes", 0) else self.G(z)

    @staticmethod
    @contextlib.contextmanager
    def frozen(module: torch.nn.Module):
        """Switch off weight gradients of ``module`` for the block (e.g. D during G's update).

        Gradients still flow *through* the module to its inputs; only its own
        weight gradients, which the other player's update would discard, are
        not computed. Parameters that were already frozen stay frozen. A module
        wrapped in DistributedDataParallel also skips its gradient reduction.
        """
        from .distributed import no_sync

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
