"""ProGAN's generator and discriminator with progressive growing (Karras et al. 2018, Table 2).

Stages: stage ``s`` works at ``4 * 2**s`` px; the last stage is the model's
``image_size``. Channel counts follow the authors' ``nf(stage) = min(fmap_base
/ 2**stage, fmap_max)`` (8192 and 512: 512 channels up to 32 px, 256 at 64 px,
128 at 128 px, ... as in Table 2).

Generator (Table 2, left)::

    z (latent_dim) -> pixel norm                                     "normalize latents"
    Dense -> 4x4 x nf(1) -> LReLU -> PN -> Conv 3x3 -> LReLU -> PN   4x4 block
    per stage s >= 1: Upsample (nearest) -> [Conv 3x3 -> LReLU -> PN] x 2
    toRGB_s: Conv 1x1, linear

Discriminator (Table 2, right)::

    fromRGB_s: Conv 1x1 -> LReLU
    per stage s >= 1: [Conv 3x3 -> LReLU] x 2 -> Downsample (2x2 average pooling)
    4x4 block: Minibatch stddev -> Conv 3x3 -> LReLU -> Dense(4x4 -> nf(0)) -> LReLU -> Dense 1, linear

Every layer is equalized (:mod:`ganzoo_progan.layers`); the dense layer at the
head of G uses gain sqrt(2)/4 and the toRGB and last dense layers gain 1, as in
the authors' code.

Fade-in (§2, Fig. 2): while stage ``s`` fades in, G outputs ``(1 - a) *
upsample(toRGB_{s-1}(h_{s-1})) + a * toRGB_s(h_s)`` and D computes ``(1 - a) *
fromRGB_{s-1}(downsample(x)) + a * block_s(fromRGB_s(x))``, ``a`` rising from 0
to 1. The current stage and ``a`` are buffers (``stage``, ``alpha``) of both
networks, so they are saved with the weights (``generator.safetensors``) and a
loaded generator samples at the stage it was trained to; the ``progan``
objective sets them (:meth:`ProGANGenerator.set_progress`). The control flow
reads plain Python copies kept in step with the buffers (set_progress, loading
a state dict), so no forward pass synchronizes with the device.

``G(z)`` always returns images at the full ``image_size`` (the current stage's
output up-sampled with nearest neighbours), so the :class:`ganzoo.Generator`
contract holds at every stage; the objective calls ``G(z, native=True)`` for
the stage's own resolution. ``D`` takes images at the current stage's
resolution, or larger ones, which it average-pools down to it first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.errors import GanzooError

from .layers import (LEAKY_SLOPE, EqualizedConv2d, EqualizedLinear, MinibatchStddev, PixelNorm, downsample,
                     upsample)

__all__ = ["ProGANConfig", "ProGANGenerator", "ProGANDiscriminator", "num_stages", "stage_resolution", "fade"]


@dataclass
class ProGANConfig(ganzoo.GANConfig):
    #: this plugin's default (the paper grows to 1024 px for CelebA-HQ, 256 px for LSUN);
    #: 16 to 256 px are supported
    image_size: int = 64
    channels: int = 3
    #: §A.1 "latent vectors ... 512-dimensional"; the authors' code: latent_size = nf(0) = 512
    latent_dim: int = 512
    num_classes: int = 0
    #: the authors' code: nf(stage) = min(fmap_base / 2**(stage * fmap_decay), fmap_max)
    fmap_base: int = 8192
    fmap_max: int = 512
    fmap_decay: float = 1.0
    #: the authors' code: minibatch stddev over groups of 4 (0: the whole minibatch)
    mbstd_group_size: int = 4
    #: §4.2 epsilon = 1e-8
    pixelnorm_eps: float = field(default=1e-8, metadata={"gt": 0})
    #: §A.1: latents are points on a hypersphere: the authors' code pixel-normalizes z
    normalize_latents: bool = True


def num_stages(image_size: int) -> int:
    """4 px is stage 0; ``image_size`` is stage ``num_stages - 1``."""
    n = math.log2(image_size)
    if n != int(n) or n < 3:
        raise GanzooError(f"progan: image_size must be a power of 2, at least 8 (got {image_size})")
    return int(n) - 1


def stage_resolution(stage: int) -> int:
    return 4 * 2 ** int(stage)


def fade(low: torch.Tensor, high: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``(1 - alpha) * low + alpha * high``, exactly ``low`` at 0 and exactly ``high`` at 1 (``torch.lerp``)."""
    return torch.lerp(low, high, alpha.to(high.dtype))


def _nf(cfg: ProGANConfig, stage: int) -> int:
    return min(int(cfg.fmap_base / (2.0 ** (stage * cfg.fmap_decay))), cfg.fmap_max)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class _Progress:
    """Mix-in: the ``stage`` / ``alpha`` buffers and their host-side copies."""

    def _init_progress(self, stages: int) -> None:
        self.num_stages = int(stages)
        self.register_buffer("stage", torch.zeros((), dtype=torch.int64))
        self.register_buffer("alpha", torch.ones((), dtype=torch.float32))
        self._stage = 0
        self._alpha = 1.0

    @property
    def max_stage(self) -> int:
        return self.num_stages - 1

    @property
    def current_stage(self) -> int:
        return self._stage

    @property
    def current_alpha(self) -> float:
        return self._alpha

    @property
    def fading(self) -> bool:
        """True while the current stage's layers are being faded in (alpha < 1)."""
        return self._stage > 0 and self._alpha < 1.0

    @property
    def current_resolution(self) -> int:
        return stage_resolution(self._stage)

    def set_progress(self, stage: int, alpha: float = 1.0) -> None:
        """Grow to ``stage`` (4 * 2**stage px) with fade-in weight ``alpha`` in [0, 1]."""
        stage, alpha = int(stage), float(alpha)
        if not 0 <= stage <= self.max_stage:
            raise ValueError(f"stage must be in [0, {self.max_stage}], got {stage}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if stage == 0:
            alpha = 1.0
        if stage != self._stage:
            self.stage.fill_(stage)
        if alpha != self._alpha:
            self.alpha.fill_(alpha)
        self._stage, self._alpha = stage, alpha

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # loading is the one place the host copies are read back from the buffers
        stage, alpha = int(self.stage), float(self.alpha)
        if not 0 <= stage <= self.max_stage:
            raise GanzooError(f"progan: saved stage {stage} is out of range for {self.num_stages} stages")
        self._stage, self._alpha = stage, alpha


class ProGANGenerator(_Progress, ganzoo.Generator):
    """z (N, latent_dim) -> images (N, C, S, S); linear output, nominally in [-1, 1]."""

    def __init__(self, cfg: ProGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        self._init_progress(num_stages(cfg.image_size))
        self.normalize_latents = bool(cfg.normalize_latents)
        self.pixel_norm = PixelNorm(cfg.pixelnorm_eps)
        c1 = _nf(cfg, 1)
        # Table 2 "Conv 4x4" on the 1x1 latent = a dense layer to 4x4 x nf(1); gain sqrt(2)/4 and a
        # per-channel bias as in the authors' code
        self.dense = EqualizedLinear(cfg.latent_dim, c1 * 16, gain=math.sqrt(2.0) / 4, bias=False)
        self.dense_bias = nn.Parameter(torch.zeros(c1))
        self.conv4 = EqualizedConv2d(c1, c1, 3)
        self.blocks = nn.ModuleList([nn.Identity()])  # stage 0's block is dense + conv4 above
        for s in range(1, self.num_stages):
            cin, cout = _nf(cfg, s), _nf(cfg, s + 1)
            self.blocks.append(nn.ModuleList([EqualizedConv2d(cin, cout, 3), EqualizedConv2d(cout, cout, 3)]))
        self.to_rgb = nn.ModuleList(
            [EqualizedConv2d(_nf(cfg, s + 1), cfg.channels, 1, gain=1.0) for s in range(self.num_stages)])

    def _block(self, s: int, h: torch.Tensor) -> torch.Tensor:
        pn = self.pixel_norm
        if s == 0:
            h = self.dense(h).view(h.shape[0], -1, 4, 4) + self.dense_bias.view(1, -1, 1, 1)
            h = pn(_lrelu(h))
            return pn(_lrelu(self.conv4(h)))
        conv0, conv1 = self.blocks[s]
        h = pn(_lrelu(conv0(upsample(h))))
        return pn(_lrelu(conv1(h)))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, native: bool = False) -> torch.Tensor:
        """Images at the full ``image_size`` (``native=True``: at the current stage's resolution)."""
        h = z.reshape(z.shape[0], -1)
        if self.normalize_latents:
            h = self.pixel_norm(h)
        stage = self._stage
        prev = h
        for s in range(stage + 1):
            prev = h
            h = self._block(s, h)
        img = self.to_rgb[stage](h)
        if self.fading:
            img = fade(upsample(self.to_rgb[stage - 1](prev)), img, self.alpha)
        if not native:
            img = upsample(img, self.image_size // img.shape[-1])
        return img


class ProGANDiscriminator(_Progress, ganzoo.Discriminator):
    """Images (N, C, R, R) at the current stage's resolution R, or larger -> critic scores (N,)."""

    def __init__(self, cfg: ProGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        self._init_progress(num_stages(cfg.image_size))
        self.from_rgb = nn.ModuleList(
            [EqualizedConv2d(cfg.channels, _nf(cfg, s + 1), 1) for s in range(self.num_stages)])
        self.blocks = nn.ModuleList([nn.Identity()])
        for s in range(1, self.num_stages):
            cin, cout = _nf(cfg, s + 1), _nf(cfg, s)
            self.blocks.append(nn.ModuleList([EqualizedConv2d(cin, cin, 3), EqualizedConv2d(cin, cout, 3)]))
        c1, c0 = _nf(cfg, 1), _nf(cfg, 0)
        self.mbstd = MinibatchStddev(cfg.mbstd_group_size)
        self.conv4 = EqualizedConv2d(c1 + 1, c1, 3)
        self.dense0 = EqualizedLinear(c1 * 16, c0)   # Table 2 "Conv 4x4" -> 1x1 = dense over the 4x4 map
        self.dense1 = EqualizedLinear(c0, 1, gain=1.0)

    def _from_rgb(self, s: int, x: torch.Tensor) -> torch.Tensor:
        return _lrelu(self.from_rgb[s](x))

    def _block(self, s: int, h: torch.Tensor) -> torch.Tensor:
        if s == 0:
            h = _lrelu(self.conv4(self.mbstd(h)))
            h = _lrelu(self.dense0(h.flatten(1)))
            return self.dense1(h)
        conv0, conv1 = self.blocks[s]
        return downsample(_lrelu(conv1(_lrelu(conv0(h)))))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        stage = self._stage
        res = stage_resolution(stage)
        size = x.shape[-1]
        if size != res:
            if size < res or size % res:
                raise GanzooError(f"progan D at stage {stage} takes {res} px images (or a multiple), got {size} px")
            x = downsample(x, size // res)
        h = self._block(stage, self._from_rgb(stage, x))
        if self.fading:
            h = fade(self._from_rgb(stage - 1, downsample(x)), h, self.alpha)
        for s in range(stage - 1, -1, -1):
            h = self._block(s, h)
        return h.view(x.shape[0])
