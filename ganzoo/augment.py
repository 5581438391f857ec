"""Differentiable augmentation of the discriminator's inputs (DiffAugment).

Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN
Training", arXiv:2006.10738. With little data (ganzoo's jellyfish set has 979 images)
the discriminator memorises the training images and the generator's signal collapses.
DiffAugment applies the same family of random, differentiable transformations to *every*
image the discriminator sees, real and generated, in D's update and in G's, so that D
cannot tell data from samples by the augmentation and G's gradients pass through it:
G learns the un-augmented distribution.

Policies (comma-separated, applied in this order per call, a fresh draw per image),
with the paper's strengths for images in [-1, 1]:

``color``
    brightness ``+ U(-0.5, 0.5)``; saturation: the deviation from the per-pixel channel
    mean times ``U(0, 2)``; contrast: the deviation from the image mean times
    ``U(0.5, 1.5)``.
``translation``
    an integer shift of up to 1/8 of the size in x and y, zero-filled.
``cutout``
    a zeroed square of half the size, centred anywhere in the image (clipped).
``zoom``
    (not in the paper) for half of the images, a zoom-in by ``U(1, 2)``, bilinear, onto a
    crop placed uniformly inside the image: an isotropic scaling like ADA's (Karras et al.
    2020), zoom-in only so nothing is padded. The other half pass unchanged: zoomed crops
    rarely reach the image's edge, and with every image zoomed G learned to leave bright
    frames that D never saw. It stretches a generator's pixel-period patterns (period 2 px,
    at the Nyquist frequency) to periods of 2 to 4 px, which a discriminator whose first
    convolution has stride 2 otherwise aliases onto a plain colour offset and cannot tell
    from one. Measured on the jellyfish GAN (``upsample``, 2,600 steps from scratch): it
    did not remove G's lattice by itself.

Adaptive augmentation (``AdaptiveAugment``, ``--ada``): Karras, Aittala, Hellsten, Laine,
Lehtinen & Aila 2020, "Training Generative Adversarial Networks with Limited Data"
(StyleGAN2-ADA), section 3. Each transformation of the policy is applied to an image with
probability ``p`` (drawn per image and per transformation, section 2.3), and ``p`` follows
D's overfitting heuristic ``r_t = E[sign(D(real))]`` (eq. 1's second form), measured on the
real images of D's own updates: every ``N = 4`` minibatches ``p += sign(r_t - target) * B * N
/ (500k images)``, clamped to [0, 1], starting from ``p = 0`` (section 3: "adjusting p once
every four minibatches", "p can rise from 0 to 1 in 500k images", target 0.6).

Random draws come from torch's default generator (on the images' device), which the
trainer checkpoints, so a resumed run draws what an uninterrupted one would; under
torchrun each rank takes its slice of one draw for the global batch, so N processes
augment as one would.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import GanzooError
from .nn import WrapperAttributes

__all__ = ["POLICIES", "zoom", "parse_policy", "diff_augment", "AugmentedDiscriminator", "AdaptiveAugment",
           "ADA_TARGET", "ADA_INTERVAL", "ADA_KIMG", "ADA_DEFAULT_POLICY"]

#: Karras et al. 2020, section 3: r_t's target ("r_t = 0.6 ... works well"), the adjustment interval in
#: minibatches ("once every four minibatches") and the speed (p can go from 0 to 1 in 500k images)
ADA_TARGET = 0.6
ADA_INTERVAL = 4
ADA_KIMG = 500.0
#: the policy ``--ada`` uses without ``--diffaugment``: Zhao et al. 2020's full policy for limited data
ADA_DEFAULT_POLICY = "color,translation,cutout"


class _Draws:
    """Random numbers for ``n`` images: this rank's rows of a draw for the global batch.

    Under torchrun every rank keeps torch's RNG in lockstep (ganzoo.distributed) and draws
    for all ``n * world_size`` images, keeping its own slice, so N ranks augment the
    global batch exactly as one process would (as the trainer does for latents).
    """

    def __init__(self, x: torch.Tensor, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.rank, self.world = x.shape[0], rank, world_size
        self.dtype, self.device = x.dtype, x.device

    def _mine(self, t: torch.Tensor) -> torch.Tensor:
        return t[self.rank * self.n:(self.rank + 1) * self.n]

    def rand(self, *shape: int) -> torch.Tensor:
        return self._mine(torch.rand(self.n * self.world, *shape, dtype=self.dtype, device=self.device))

    def randint(self, low: int, high: int, *shape: int) -> torch.Tensor:
        return self._mine(torch.randint(low, high, (self.n * self.world, *shape), device=self.device))


def brightness(x: torch.Tensor, draws: _Draws | None = None) -> torch.Tensor:
    draws = draws or _Draws(x)
    return x + (draws.rand(1, 1, 1) - 0.5)


def saturation(x: torch.Tensor, draws: _Draws | None = None) -> torch.Tensor:
    draws = draws or _Draws(x)
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (draws.rand(1, 1, 1) * 2) + mean


def contrast(x: torch.Tensor, draws: _Draws | None = None) -> torch.Tensor:
    draws = draws or _Draws(x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (draws.rand(1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, draws: _Draws | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by integers in ``[-s, s]`` (``s = round(ratio * size)``), zero-filled."""
    draws = draws or _Draws(x)
    n, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = draws.randint(-sy, sy + 1, 1, 1)
    dx = draws.randint(-sx, sx + 1, 1, 1)
    # output pixel (i, j) reads input (i - dy, j - dx); out-of-range reads the zero border
    rows = (torch.arange(h, device=x.device).view(1, h, 1) - dy).clamp(-1, h) + 1
    cols = (torch.arange(w, device=x.device).view(1, 1, w) - dx).clamp(-1, w) + 1
    padded = F.pad(x, (1, 1, 1, 1))                                # (n, c, h + 2, w + 2)
    index = (rows * (w + 2) + cols).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)


def cutout(x: torch.Tensor, draws: _Draws | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a ``ratio``-sized square per image, its centre uniform over the image."""
    draws = draws or _Draws(x)
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = draws.randint(0, h + (1 - ch % 2), 1, 1)
    cx = draws.randint(0, w + (1 - cw % 2), 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - (cy - ch // 2)   # row - the square's top
    xs = torch.arange(w, device=x.device).view(1, 1, w) - (cx - cw // 2)
    inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def zoom(x: torch.Tensor, draws: _Draws | None = None, max_scale: float = 2.0, p: float = 0.5) -> torch.Tensor:
    """Zoom an image in by ``U(1, max_scale)`` (bilinear) onto a crop placed uniformly inside it, with
    probability ``p`` per image (the others are unchanged)."""
    draws = draws or _Draws(x)
    n = x.shape[0]
    inv = 1 / (1 + draws.rand(1) * (max_scale - 1))           # (n, 1): the crop's side over the image's
    shift = (draws.rand(2) * 2 - 1) * (1 - inv)               # (n, 2): the crop's centre, inside the image
    keep = (draws.rand(1) >= p).view(n, 1, 1, 1)              # images left exactly as they are
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = inv[:, 0]
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.where(keep, x, F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False))


#: each function takes the images and the batch's draws (``fn(x, draws)``)
POLICIES: dict[str, tuple[Callable[..., torch.Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
    "zoom": (zoom,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> the names, checked (a one-line error for unknown ones)."""
    names = tuple(p.strip() for p in str(policy).split(",") if p.strip())
    if not names:
        raise GanzooError(f"DiffAugment policy {policy!r} is empty; use some of {', '.join(POLICIES)}, "
                          "comma-separated (e.g. color,translation,cutout)")
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise GanzooError(f"DiffAugment policy {policy!r}: unknown {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(POLICIES)} (e.g. color,translation,cutout)")
    return names


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...], *, rank: int = 0,
                 world_size: int = 1, p: torch.Tensor | float | None = None) -> torch.Tensor:
    """``x`` (N, C, H, W) augmented by ``policy``; differentiable with respect to ``x``.

    ``rank``/``world_size``: ``x`` is this rank's share of a global batch (see ``_Draws``).
    ``p`` (ADA): each transformation is applied to an image with probability ``p`` (a fresh draw
    per image and transformation, always made, so the random stream does not depend on ``p``);
    None applies every transformation to every image (DiffAugment).
    """
    names = parse_policy(policy) if isinstance(policy, str) else policy
    draws = _Draws(x, rank, world_size)
    for name in names:
        for fn in POLICIES[name]:
            if p is None:
                x = fn(x, draws)
            else:
                apply = draws.rand(1, 1, 1) < p
                x = torch.where(apply, fn(x, draws), x)
    return x


class AdaptiveAugment:
    """The augmentation probability ``p`` of ADA (Karras et al. 2020, section 3) and its controller.

    The trainer tags each real batch (:meth:`set_real`); :class:`AugmentedDiscriminator`
    reports D's scores on it in D's own updates (:meth:`observe`: when D's weights train, so
    G's update, which freezes D, is not counted); :meth:`end_step` moves ``p`` every
    ``interval`` steps. ``p`` and the running sums are tensors on the device (no host sync)
    and are checkpointed (:meth:`state_dict`), so a resumed run follows the same ``p``.
    ``boundary`` is the score separating D's "real" from "fake" decisions (0 for a logit; a
    least-squares D with targets a, b: (a + b) / 2).
    """

    def __init__(self, *, batch_size: int, device, target: float = ADA_TARGET, kimg: float = ADA_KIMG,
                 interval: int = ADA_INTERVAL, boundary: float = 0.0) -> None:
        self.target, self.kimg, self.interval, self.boundary = float(target), float(kimg), int(interval), float(boundary)
        #: the change of p per adjustment: B * N images of the 1000 * kimg that take p from 0 to 1
        self.adjust = batch_size * self.interval / (self.kimg * 1000.0)
        self.p = torch.zeros((), device=device)
        self.rt = torch.zeros((), device=device)              # the last interval's r_t
        self.signs = torch.zeros((), device=device)           # sum of sign(D(real) - boundary) this interval
        self.count = torch.zeros((), device=device)           # real images seen this interval
        self._real: torch.Tensor | None = None

    def set_real(self, real: torch.Tensor) -> None:
        """The real images of the step (this rank's): D's scores on them make r_t."""
        self._real = real

    def observe(self, D: nn.Module, x: torch.Tensor, out) -> None:
        """Called with D's input (before augmentation) and output: accumulate signs on real rows."""
        real = self._real
        if real is None or x.dim() != 4 or x.shape[1:] != real.shape[1:] or x.shape[0] < real.shape[0]:
            return
        if not any(q.requires_grad for q in D.parameters()):
            return                                            # G's update (D frozen): not D's judgement
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor) or out.shape[0] != x.shape[0]:
            return
        n = real.shape[0]
        if x.data_ptr() == real.data_ptr() and x.shape[0] == n:
            match = torch.ones((), device=self.p.device)
        else:                                                 # e.g. torch.cat([real, fake]): the first n rows
            match = (x[:n].detach() == real).flatten().all().float()
        scores = out.detach()[:n].float().reshape(n, -1).mean(1)
        self.signs += match * torch.sign(scores - self.boundary).sum()
        self.count += match * n

    def end_step(self, step: int, all_sum=None) -> None:
        """After step ``step`` (1-based count of steps done): adjust p at every ``interval``-th step.
        ``all_sum``: the distributed sum, so that every rank moves p alike."""
        if step % self.interval:
            return
        stats = torch.stack([self.signs, self.count])
        if all_sum is not None:
            stats = all_sum(stats)
        self.rt = stats[0] / stats[1].clamp(min=1)
        self.p = (self.p + torch.sign(self.rt - self.target) * self.adjust).clamp(0.0, 1.0)
        self.signs = torch.zeros_like(self.signs)
        self.count = torch.zeros_like(self.count)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"p": self.p.detach().cpu(), "rt": self.rt.detach().cpu(), "signs": self.signs.detach().cpu(),
                "count": self.count.detach().cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        dev = self.p.device
        self.p, self.rt = state["p"].to(dev).float(), state["rt"].to(dev).float()
        self.signs, self.count = state["signs"].to(dev).float(), state["count"].to(dev).float()


class AugmentedDiscriminator(WrapperAttributes, nn.Module):
    """``D`` whose image input is augmented on every call of ``forward``.

    Objectives keep calling ``ctx.D(x, ...)``; other attributes (``num_classes``, a DDP
    wrapper's ``no_sync``) are looked up on the wrapped network. The wrapper owns no
    parameters of its own, so ``ctx.frozen(D)`` and the optimizers see D's.
    """

    def __init__(self, D: nn.Module, policy: str | tuple[str, ...], *, rank: int = 0, world_size: int = 1,
                 ada: AdaptiveAugment | None = None) -> None:
        super().__init__()
        self.module = D
        self.policy = parse_policy(policy) if isinstance(policy, str) else tuple(policy)
        self.rank, self.world_size = rank, world_size
        self.ada = ada

    def forward(self, x: torch.Tensor, *args, **kwargs):
        if self.ada is None:
            return self.module(diff_augment(x, self.policy, rank=self.rank, world_size=self.world_size), *args, **kwargs)
        out = self.module(diff_augment(x, self.policy, rank=self.rank, world_size=self.world_size, p=self.ada.p),
                          *args, **kwargs)
        self.ada.observe(self.module, x, out)
        return out
