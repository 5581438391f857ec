"""The ``progan`` objective: WGAN-GP with the drift term, driving progressive growing.

Karras et al. 2018 (arXiv:1710.10196), §A.1 (paraphrased): the WGAN-GP loss
of Gulrajani et al. with ``n_critic = 1`` and ``lambda = 10``, plus a fourth
term ``eps_drift * E[D(x)^2]`` with ``eps_drift = 0.001`` that keeps the
critic's output from drifting away from zero (the authors' ``loss.py``
``D_wgangp_acgan``: ``wgan_lambda=10``, ``wgan_epsilon=0.001``, ``wgan_target=1``)::

    L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2] + eps_drift * E[D(x)^2]
    L_G = -E[D(G(z))]
    x_hat = x + u * (G(z) - x),  u ~ U(0, 1) per sample       (Gulrajani et al. 2017)

Growing schedule (§A.1, paraphrased): train at 4x4 until D has seen 800k real
images, then alternate two phases per resolution: fade in the next block
during 800k images, stabilize for 800k images. The objective counts the real images it has
shown D (``images``, saved in the checkpoint's objective state) and maps the
count to a stage and a fade-in weight ``alpha`` (:func:`progress_at`), which it
sets on G and D (their ``stage``/``alpha`` buffers) before each step. The
schedule is configurable with ``fade_images`` and ``stabilize_images``
(``--objective-arg fade_images=20000``). A fresh objective (no saved state, e.g.
fine-tuning a released model) starts its count where the generator's saved
stage and alpha put it, so growing resumes instead of restarting.

Real images (Fig. 2's caption, paraphrased: D sees reals downscaled to the
network's current resolution and, during a transition, interpolated between
the two resolutions as G's output is; the authors' ``process_reals``):
:func:`prepare_reals` average-pools the full-resolution batch to the stage's
resolution and, while fading, blends it with its 2x-pooled-and-upsampled self.

As in the authors' code (``reset_opt_for_new_lod``), Adam's moments are reset
when a new stage starts fading in (``reset_optimizer``).

Counting and scheduling happen on the host with Python numbers; the step never
reads a device value.
"""
from __future__ import annotations

import torch

import ganzoo
from ganzoo.objective import StepContext

from .layers import downsample, upsample
from .models import fade, stage_resolution

__all__ = ["ProgressiveWGANGP", "progress_at", "images_at", "prepare_reals", "gradient_penalty"]

#: §A.1: 800k real images per fade-in phase and per stabilization phase
PAPER_PHASE_IMAGES = 800_000


def progress_at(images: int, max_stage: int, fade_images: int, stabilize_images: int) -> tuple[int, float]:
    """``(stage, alpha)`` after ``images`` real images: stage 0 stabilizes, then fade/stabilize per stage."""
    t = int(images)
    if t < stabilize_images:
        return 0, 1.0
    t -= stabilize_images
    for s in range(1, max_stage + 1):
        if t < fade_images:
            return s, t / fade_images
        t -= fade_images
        if s == max_stage or t < stabilize_images:
            return s, 1.0
        t -= stabilize_images
    return 0, 1.0  # max_stage == 0


def images_at(stage: int, alpha: float, fade_images: int, stabilize_images: int) -> int:
    """The inverse of :func:`progress_at`: the first image count at ``(stage, alpha)``."""
    if stage <= 0:
        return 0
    start = stabilize_images + (stage - 1) * (fade_images + stabilize_images)
    return start + (int(round(alpha * fade_images)) if alpha < 1.0 else fade_images)


def prepare_reals(real: torch.Tensor, resolution: int, alpha: torch.Tensor | None) -> torch.Tensor:
    """Full-resolution reals -> the stage's resolution (box filter), blended while fading (``alpha`` given)."""
    x = downsample(real, real.shape[-1] // resolution)
    if alpha is not None:
        x = fade(upsample(downsample(x)), x, alpha)
    return x


def gradient_penalty(D, reals: torch.Tensor, fakes: torch.Tensor, u: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """Per-sample ``(||grad_x D(x_hat)||_2 - target)^2`` at ``x_hat = lerp(reals, fakes, u)``, differentiable."""
    x_hat = torch.lerp(reals.detach(), fakes.detach(), u).requires_grad_(True)
    scores = D(x_hat).float()
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.float().flatten(1).norm(dim=1)
    return (norms - target).pow(2)


class ProgressiveWGANGP(ganzoo.Objective):
    """ProGAN: WGAN-GP (lambda 10, drift 0.001, n_critic 1) with progressive growing and fade-in.

    Returns per step: ``loss_d``, ``loss_g``, ``w_dist`` (E[D(x)] - E[D(G(z))]),
    ``gp`` (the mean gradient penalty), ``stage`` and ``alpha``.
    """

    name = "progan"

    hparams = ("lambda_gp", "gp_target", "eps_drift", "fade_images", "stabilize_images", "reset_optimizer")
    ada_boundary = None  # a WGAN-GP critic: no real/fake decision boundary for --ada

    def __init__(self, lambda_gp: float = 10.0, gp_target: float = 1.0, eps_drift: float = 0.001,
                 fade_images: int = PAPER_PHASE_IMAGES, stabilize_images: int = PAPER_PHASE_IMAGES,
                 reset_optimizer: bool = True) -> None:
        self.lambda_gp = float(lambda_gp)
        self.gp_target = float(gp_target)
        self.eps_drift = float(eps_drift)
        self.fade_images = int(fade_images)
        self.stabilize_images = int(stabilize_images)
        self.reset_optimizer = bool(reset_optimizer)
        if self.fade_images < 1 or self.stabilize_images < 0:
            raise ValueError("fade_images must be >= 1 and stabilize_images >= 0")
        if self.gp_target <= 0:
            raise ValueError("gp_target must be > 0")
        self.images: int | None = None  # real images shown to D so far (None: take it from G's stage)

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"images": torch.tensor(self.images or 0, dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != {"images"}:
            raise ValueError(f"ProgressiveWGANGP state needs exactly the key 'images', got {sorted(state)}")
        self.images = int(state["images"])

    def progress(self, images: int, max_stage: int) -> tuple[int, float]:
        return progress_at(images, max_stage, self.fade_images, self.stabilize_images)

    # -- one step --------------------------------------------------------------
    def _advance(self, ctx: StepContext) -> None:
        G, D = ctx.G, ctx.D
        if self.images is None:
            self.images = images_at(G.current_stage, G.current_alpha, self.fade_images, self.stabilize_images)
        stage, alpha = self.progress(self.images, G.max_stage)
        if stage != G.current_stage and self.reset_optimizer:
            for opt in (ctx.opt_g, ctx.opt_d):
                opt.state.clear()
        G.set_progress(stage, alpha)
        D.set_progress(stage, alpha)

    def step(self, ctx: StepContext, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        self._advance(ctx)
        G, D = ctx.G, ctx.D
        n = real.shape[0]
        reals = prepare_reals(real, stage_resolution(D.current_stage), D.alpha if D.fading else None)

        # critic: n_critic = 1
        with ctx.autocast():
            with torch.no_grad():
                fakes = G(ctx.latent(n), native=True)
            d_real = D(reals).float()
            d_fake = D(fakes).float()
            u = torch.rand(n, 1, 1, 1, device=reals.device, dtype=reals.dtype)
            gp = gradient_penalty(D, reals, fakes.to(reals.dtype), u, self.gp_target)
            loss_d = (d_fake - d_real).mean() \
                + (self.lambda_gp / self.gp_target ** 2) * gp.mean() \
                + self.eps_drift * d_real.pow(2).mean()
        ctx.update(loss_d, ctx.opt_d)

        # generator, through the updated critic (whose weights need no gradients here)
        with ctx.frozen(D):
            with ctx.autocast():
                loss_g = -D(G(ctx.latent(n), native=True)).float().mean()
            ctx.update(loss_g, ctx.opt_g)

        self.images += n * ctx.world_size  # images of the global batch (all ranks)
        with torch.no_grad():
            return {
                "loss_d": loss_d.detach(),
                "loss_g": loss_g.detach(),
                "w_dist": (d_real.mean() - d_fake.mean()).detach(),
                "gp": gp.mean().detach(),
                "stage": D.stage.float(),
                "alpha": D.alpha.clone(),
            }
