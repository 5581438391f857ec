"""FastGAN's networks: a generator with skip-layer excitation and a self-supervised discriminator.

Liu, Zhu, Song & Elgammal 2021, "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis" (ICLR 2021, arXiv:2101.04775), §3.1 (G, Fig. 3),
§3.2 (D, Fig. 4) and the authors' code (github.com/odegeasslbc/FastGAN-pytorch,
``models.py``), whose widths and block order we follow where the paper gives none.

Generator (§3.1, Fig. 3)::

    z (latent_dim) -> ConvTranspose 4x4 (1 -> 4 px) -> BN -> GLU           (the code's InitLayer)
    per resolution 8, 16, ..., image_size: nearest up x2 -> conv 3x3 -> BN -> GLU
        ("UpBlockComp" at 8, 32, 128 px adds a second conv 3x3 and noise injection after each conv)
    skip-layer excitation (SLE, Eq. 1) at 64, 128, 256 px from the 4, 8, 16 px features:
        y = x_high * sigmoid(conv1x1(Swish(conv4x4(AdaptiveAvgPool4(x_low)))))
    -> conv 3x3 -> C channels -> tanh

Discriminator (§3.2, Fig. 4): a big branch on the image (a 3x3 stride-1 conv, then residual
down-sampling blocks "DownBlockComp" to 8x8, with SLE from each r px map to the r/8 px one) and
a small branch on the image at half size (4x4 stride-2 convs to 8x8); each branch ends in a
4x4 conv giving a 5x5 map of logits, and D's scores are both maps. On REAL images D also
reconstructs, with three small decoders (§3.2 "self-supervised", Eq. 2), the image from the
big branch's 8x8 map, the image from the small branch's 8x8 map, and a random quarter of the
image from the matching quarter of the big branch's 16x16 map; the reconstruction error is
added to D's loss (Eq. 3-4).

Channel widths per resolution (the code's ``nfc_multi``): G has ``ngf * {4: 16, 8: 8, 16: 4,
32: 2, 64: 2, 128: 1, 256: 0.5}[r]`` channels at r px; D's big branch ``ndf * 64 / r`` (r <= 256)
and its small branch half that; the decoders ``dec_ch * {16: 4, 32: 2, 64: 2, 128: 1}[r]``.

Where ganzoo departs from the code, and why:

* **tanh on G's output.** The code's generator ends in a plain convolution (its images are
  only clamped when saved); a ganzoo ``Generator`` promises images in ``pixel_range`` [-1, 1].
* **One image out.** The code's G also returns a 128 px image from its 128 px features, which
  D's small branch reads for fakes; a ganzoo generator returns one image, so D's small branch
  reads the image average-pooled to half size, for real and fake alike.
* **Reconstruction distance: L1.** The code measures it with LPIPS (a VGG16 perceptual
  distance, Eq. 4 writes only ``||G(f) - T(x)||``); LPIPS needs pretrained VGG weights that
  cannot be downloaded here. L1 on the [-1, 1] pixels keeps the self-supervision (D must keep
  enough of the image in its features to redraw it) without a second network.
* **Noise injection, deterministic at sampling.** The code adds fresh N(0, 1) noise scaled by
  a learned weight (zero at start) after each conv of the "Comp" blocks. Training does the
  same; in eval mode ganzoo adds a fixed noise map drawn once at construction and kept as a
  buffer (StyleGAN2's ``noise_mode='const'``), so that ``G.sample(seed=s)`` always gives the
  same images.
* **Sizes 64 and 128 px** besides the paper's 256 (its smallest): the same blocks, fewer of
  them (the big branch always goes down to 8x8, the decoders reconstruct at half the image size,
  as the code's 128 px reconstructions of 256 px images, up to 128 px).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganzoo

__all__ = ["FastGANConfig", "FastGANGenerator", "FastGANDiscriminator", "SLE", "GLU", "NoiseInjection",
           "G_WIDTH", "DEC_WIDTH"]

#: the code's ``nfc_multi`` for G: channels at r px = ngf * G_WIDTH[r]
G_WIDTH = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5}
#: the code's SimpleDecoder widths (its nfc_multi over a fixed base of 32): channels at r px = dec_ch * DEC_WIDTH[r]
DEC_WIDTH = {16: 4, 32: 2, 64: 2, 128: 1}


@dataclass
class FastGANConfig(ganzoo.GANConfig):
    # §4 "Datasets": the paper's smallest resolution is 256 (and 1024); ganzoo adds 64 and 128
    image_size: int = 256
    channels: int = 3
    # the code's train.py: nz = 256
    latent_dim: int = 256
    # the code's train.py: ngf = 64, ndf = 64
    ngf: int = 64
    ndf: int = 64
    # the code's SimpleDecoder: nfc_multi * 32
    dec_ch: int = 32
    # noise injection in G's "UpBlockComp" blocks (the code's NoiseInjection)
    noise: bool = True
    # LeakyReLU slope in D (the code: 0.2)
    leaky_slope: float = 0.2


def _conv(*args, **kwargs) -> nn.Module:
    # the code wraps every conv of G and D in spectral normalisation (models.py: conv2d)
    return spectral_norm(nn.Conv2d(*args, **kwargs))


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


class GLU(nn.Module):
    """Gated linear unit over channels: the first half times the sigmoid of the second (Dauphin et al. 2017)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class NoiseInjection(nn.Module):
    """``x + weight * noise``: fresh N(0, 1) noise per pixel when training, a fixed map in eval mode."""

    def __init__(self, size: int, seed: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # the code: zero at start
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("const_noise", torch.randn(1, 1, size, size, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.const_noise.to(x.dtype)
        return x + self.weight * noise


class SLE(nn.Module):
    """Skip-layer excitation (§3.1, Eq. 1): the low-resolution map gates the channels of the high one."""

    def __init__(self, ch_low: int, ch_high: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            _conv(ch_low, ch_high, 4, 1, 0, bias=False),
            Swish(),
            _conv(ch_high, ch_high, 1, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.main(low)


def _up_block(c_in: int, c_out: int, size: int, noise_seed: int | None) -> nn.Sequential:
    """The code's UpBlock (``noise_seed`` None) or UpBlockComp (two convs, noise after each)."""
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest"), _conv(c_in, c_out * 2, 3, 1, 1, bias=False)]
    if noise_seed is not None:
        layers.append(NoiseInjection(size, noise_seed))
    layers += [_bn(c_out * 2), GLU()]
    if noise_seed is not None:
        layers += [_conv(c_out, c_out * 2, 3, 1, 1, bias=False), NoiseInjection(size, noise_seed + 1),
                   _bn(c_out * 2), GLU()]
    return nn.Sequential(*layers)


def _init_(module: nn.Module) -> None:
    """The code's weights_init: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
                w.normal_(0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.02)
                m.bias.zero_()


def _check_size(cfg: FastGANConfig) -> None:
    for name in ("ngf", "ndf", "dec_ch"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 2 or v % 2:
            raise ganzoo.GanzooError(f"fastgan: {name}={v!r} must be an even whole number >= 2 (the paper's code: 64, "
                                     "decoders 32)")


class FastGANGenerator(ganzoo.Generator):
    """z (N, latent_dim) -> images (N, C, image_size, image_size) in [-1, 1]."""

    def __init__(self, cfg: FastGANConfig) -> None:
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        _check_size(cfg)
        ch = {r: max(1, int(m * cfg.ngf)) for r, m in G_WIDTH.items()}
        # InitLayer: ConvTranspose 4x4 from a 1x1 "image" of z, BN, GLU
        self.init = nn.Sequential(
            spectral_norm(nn.ConvTranspose2d(cfg.latent_dim, ch[4] * 2, 4, 1, 0, bias=False)),
            _bn(ch[4] * 2), GLU(),
        )
        self.resolutions = [2 ** k for k in range(3, int(math.log2(cfg.image_size)) + 1)]
        # "Comp" blocks (two convs, noise) at 8, 32, 128 px; plain ones at 16, 64, 256 (Fig. 3, the code)
        self.ups = nn.ModuleDict({
            str(r): _up_block(ch[r // 2], ch[r], r, (1000 + 2 * r) if (cfg.noise and r in (8, 32, 128)) else None)
            for r in self.resolutions
        })
        # SLE 4->64, 8->128, 16->256 (Eq. 1)
        self.sle = nn.ModuleDict({str(r): SLE(ch[r // 16], ch[r]) for r in self.resolutions if r >= 64})
        self.to_image = _conv(ch[cfg.image_size], cfg.channels, 3, 1, 1, bias=False)
        _init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        feats = {4: self.init(z.view(z.shape[0], -1, 1, 1))}
        for r in self.resolutions:
            x = self.ups[str(r)](feats[r // 2])
            if str(r) in self.sle:
                x = self.sle[str(r)](feats[r // 16], x)
            feats[r] = x
        return torch.tanh(self.to_image(feats[self.resolutions[-1]]))


class _DownBlockComp(nn.Module):
    """The code's DownBlockComp: (conv4x4 s2, BN, LReLU, conv3x3, BN, LReLU) averaged with (avgpool, conv1x1, BN, LReLU)."""

    def __init__(self, c_in: int, c_out: int, slope: float) -> None:
        super().__init__()
        self.main = nn.Sequential(
            _conv(c_in, c_out, 4, 2, 1, bias=False), _bn(c_out), nn.LeakyReLU(slope),
            _conv(c_out, c_out, 3, 1, 1, bias=False), _bn(c_out), nn.LeakyReLU(slope),
        )
        self.direct = nn.Sequential(nn.AvgPool2d(2, 2), _conv(c_in, c_out, 1, 1, 0, bias=False), _bn(c_out),
                                    nn.LeakyReLU(slope))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


def _down_block(c_in: int, c_out: int, slope: float) -> nn.Sequential:
    """The code's DownBlock: conv4x4 s2, BN, LReLU."""
    return nn.Sequential(_conv(c_in, c_out, 4, 2, 1, bias=False), _bn(c_out), nn.LeakyReLU(slope))


class _Decoder(nn.Module):
    """The code's SimpleDecoder: adaptive-pool to 8x8, GLU up-blocks to ``out_size``, conv3x3, tanh."""

    def __init__(self, c_in: int, channels: int, out_size: int, dec_ch: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(8)]
        c = c_in
        r = 16
        while r <= out_size:
            c_out = max(1, int(DEC_WIDTH[r] * dec_ch))
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(c, c_out * 2, 3, 1, 1, bias=False),
                       _bn(c_out * 2), GLU()]
            c = c_out
            r *= 2
        layers += [_conv(c, channels, 3, 1, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def quarter(x: torch.Tensor, part: int) -> torch.Tensor:
    """Quarter ``part`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of an NCHW map (the code's crop_image_by_part)."""
    h, w = x.shape[2] // 2, x.shape[3] // 2
    return x[:, :, (part // 2) * h:(part // 2 + 1) * h, (part % 2) * w:(part % 2 + 1) * w]


class FastGANDiscriminator(ganzoo.Discriminator):
    """Images -> (N, 50) patch logits (two 5x5 maps); with ``reconstruct=part`` also D's reconstruction loss.

    ``forward(x)`` returns the scores. ``forward(x, reconstruct=part)`` (``part`` in 0..3, the
    quarter to redraw) returns ``(scores, loss)``, where ``loss`` is the summed L1 error of the
    three decoders against ``x`` itself: computed inside D, it compares with exactly the
    images D saw (after DiffAugment, when the trainer wraps D with it).
    """

    def __init__(self, cfg: FastGANConfig) -> None:
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        _check_size(cfg)
        s, R = cfg.leaky_slope, cfg.image_size
        big = lambda r: max(1, int(cfg.ndf * 64 // r))  # noqa: E731  channels of the big branch at r px
        small = lambda r: max(1, int(cfg.ndf * 32 // r))  # noqa: E731
        self.from_big = nn.Sequential(_conv(cfg.channels, big(R), 3, 1, 1, bias=False), nn.LeakyReLU(s))
        self.down_res = [R // 2 ** k for k in range(1, int(math.log2(R // 8)) + 1)]  # R/2, ..., 8
        self.down = nn.ModuleDict({str(r): _DownBlockComp(big(2 * r), big(r), s) for r in self.down_res})
        # SLE from the r px map onto the r/8 px one (the code: 256->32, 128->16, 64->8)
        self.sle = nn.ModuleDict({str(r // 8): SLE(big(r), big(r // 8)) for r in [R] + self.down_res if r // 8 >= 8})
        self.rf_big = nn.Sequential(
            _conv(big(8), big(4), 1, 1, 0, bias=False), _bn(big(4)), nn.LeakyReLU(s),
            _conv(big(4), 1, 4, 1, 0, bias=False),
        )
        # small branch on the half-size image: conv4x4 s2 + LReLU, then DownBlocks to 8 px
        half = R // 2
        layers: list[nn.Module] = [_conv(cfg.channels, small(half // 2), 4, 2, 1, bias=False), nn.LeakyReLU(s)]
        r = half // 2
        while r > 8:
            layers.append(_down_block(small(r), small(r // 2), s))
            r //= 2
        self.from_small = nn.Sequential(*layers)
        self.rf_small = _conv(small(8), 1, 4, 1, 0, bias=False)
        self.rec_size = min(R // 2, 128)  # the code: 128 px reconstructions of 256 px images
        self.decoder_big = _Decoder(big(8), cfg.channels, self.rec_size, cfg.dec_ch)
        self.decoder_small = _Decoder(small(8), cfg.channels, self.rec_size, cfg.dec_ch)
        self.decoder_part = _Decoder(big(16), cfg.channels, self.rec_size, cfg.dec_ch)
        _init_(self)

    def _features(self, x: torch.Tensor):
        feats = {x.shape[-1]: self.from_big(x)}
        r_prev = x.shape[-1]
        for r in self.down_res:
            h = self.down[str(r)](feats[r_prev])
            if str(r) in self.sle:
                h = self.sle[str(r)](feats[8 * r], h)
            feats[r] = h
            r_prev = r
        small = self.from_small(F.avg_pool2d(x, 2))
        return feats, small

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, reconstruct: int | None = None):
        feats, small = self._features(x)
        n = x.shape[0]
        scores = torch.cat([self.rf_big(feats[8]).reshape(n, -1), self.rf_small(small).reshape(n, -1)], dim=1)
        if reconstruct is None:
            return scores
        part = int(reconstruct)
        if part not in (0, 1, 2, 3):
            raise ValueError(f"reconstruct must be a quarter 0..3, got {reconstruct!r}")
        target = x if x.shape[-1] == self.rec_size else F.interpolate(x, size=self.rec_size, mode="area")
        target_part = F.interpolate(quarter(x, part), size=self.rec_size, mode="bilinear", align_corners=False)
        loss = (
            F.l1_loss(self.decoder_big(feats[8]).float(), target.float())
            + F.l1_loss(self.decoder_small(small).float(), target.float())
            + F.l1_loss(self.decoder_part(quarter(feats[16], part)).float(), target_part.float())
        )
        return scores, loss
