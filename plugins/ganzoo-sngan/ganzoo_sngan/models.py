"""SNGAN's ResNet generator and spectrally normalised ResNet discriminator, at 32 and 64 px.

Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative
Adversarial Networks" (arXiv:1802.05957), Appendix B.4 Table 4 (the CIFAR-10 ResNets);
the 64 px networks and the class-conditional variant (conditional BatchNorm in G, a
projection discriminator) are those of Miyato & Koyama 2018, "cGANs with Projection
Discriminator" (arXiv:1802.05637). Widths, block order and initialisation follow their
reference code, pfnet-research/sngan_projection (``gen_models/resnet_32.py``,
``resnet_64.py``, ``dis_models/snresnet_32.py``, ``snresnet_64.py``)::

    32 px  G: z 128 -> Linear -> 4x4x256 -> 3 x GBlock(256, up) -> BN, ReLU, conv3 -> 3, tanh
           D: DBlock(3->128, first, down) -> DBlock(128, down) -> 2 x DBlock(128)
              -> ReLU -> global SUM pooling -> Linear(128 -> 1, no bias)
    64 px  G: z 128 -> Linear -> 4x4x1024 -> GBlocks 1024->512->256->128->64 -> BN, ReLU, conv3, tanh
           D: DBlock(3->64, first) -> DBlocks 64->128->256->512->1024 (all down) -> ReLU -> sum -> Linear

Every layer of D is spectrally normalised (one power iteration per training forward
pass); G has BatchNorm and no spectral norm (SAGAN adds it: ``spectral=True``).

These classes are the backbone of the ``sagan`` and ``cgan`` plugins too: ``attention``
inserts a module (SAGAN's self-attention) after the block whose output has
``attention_resolution`` pixels a side, and ``num_classes`` with ``conditioning``
makes them class-conditional.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo_losses import SN_LAYERS, spectral_norm_

from .blocks import BN_EPS, DBlock, GBlock, glorot_

__all__ = [
    "SNGANConfig", "ResNetGenerator", "ResNetDiscriminator", "G_WIDTHS", "D_LAYOUT", "REFERENCE_CH",
    "CONDITIONING",
]

#: G's widths, as multiples of ``g_ch``: at 4x4, then after each up-sampling block
G_WIDTHS = {32: (1, 1, 1, 1), 64: (16, 8, 4, 2, 1)}
#: D's blocks as (width multiple of ``d_ch``, down-sampling?)
D_LAYOUT = {32: ((1, True), (1, True), (1, False), (1, False)),
            64: ((1, True), (2, True), (4, True), (8, True), (16, True))}
#: the reference code's (g_ch, d_ch) at each image size
REFERENCE_CH = {32: (256, 128), 64: (64, 64)}
#: how a class-conditional pair uses the label
CONDITIONING = {
    "projection": "G: conditional BatchNorm; D: projection <embed(y), phi(x)> (Miyato & Koyama 2018)",
    "concat": "G: one-hot label concatenated to z; D: one-hot label maps concatenated to the image "
              "(Mirza & Osindero 2014)",
}


@dataclass
class SNGANConfig(ganzoo.GANConfig):
    # Table 4 / the reference code: CIFAR-10 32x32 RGB, z ~ N(0, I) in R^128
    image_size: int = 32
    channels: int = 3
    latent_dim: int = 128
    # 0: the reference width for the image size (REFERENCE_CH: 256/128 at 32 px, 64/64 at 64 px)
    g_ch: int = 0
    d_ch: int = 0

    def __post_init__(self) -> None:
        g, d = REFERENCE_CH.get(self.image_size, (64, 64))
        self.g_ch = self.g_ch or g
        self.d_ch = self.d_ch or d


def _check(cfg: SNGANConfig, conditioning: str) -> None:
    if cfg.image_size not in G_WIDTHS:
        raise ganzoo.GanzooError(f"image size {cfg.image_size}: the SNGAN ResNets are defined at "
                                 f"{', '.join(map(str, G_WIDTHS))} px")
    if conditioning not in CONDITIONING:
        raise ganzoo.GanzooError(f"conditioning {conditioning!r}: use one of {', '.join(CONDITIONING)}")


def _attention_index(resolutions: list[int], wanted: int, where: str) -> int:
    """The first block whose output is ``wanted`` px a side (-1: no attention)."""
    if not wanted:
        return -1
    if wanted not in resolutions:
        ok = sorted(set(resolutions))
        raise ganzoo.GanzooError(f"attention_resolution {wanted}: {where} has feature maps of "
                                 f"{', '.join(map(str, ok))} px; pick one of those")
    return resolutions.index(wanted)


class ResNetGenerator(ganzoo.Generator):
    """z (N, latent_dim) [and labels (N,)] -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, cfg: SNGANConfig, *, conditioning: str = "projection", spectral: bool = False,
                 attention: Callable[[int], nn.Module] | None = None, attention_resolution: int = 0) -> None:
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape, num_classes=cfg.num_classes)
        _check(cfg, conditioning)
        widths = [cfg.g_ch * m for m in G_WIDTHS[cfg.image_size]]
        k = cfg.num_classes
        self.concat = k if conditioning == "concat" else 0
        self.linear = glorot_(nn.Linear(cfg.latent_dim + self.concat, 4 * 4 * widths[0]))
        cbn = k if conditioning == "projection" else 0
        self.blocks = nn.ModuleList(GBlock(a, b, cbn) for a, b in zip(widths, widths[1:]))
        res = [4 * 2 ** (i + 1) for i in range(len(self.blocks))]
        self.attention_index = _attention_index(res, attention_resolution, "the generator")
        self.attention = attention(widths[self.attention_index + 1]) if self.attention_index >= 0 else None
        self.bn = nn.BatchNorm2d(widths[-1], eps=BN_EPS)  # plain BN also in the conditional G (reference)
        self.conv = glorot_(nn.Conv2d(widths[-1], cfg.channels, 3, 1, 1))
        if spectral:
            spectral_norm_(self)  # conv and linear layers; conditional BN's embeddings keep their scale

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.concat:
            z = torch.cat([z, F.one_hot(labels, self.concat).to(z.dtype)], dim=1)
        h = self.linear(z).view(z.shape[0], -1, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, labels)
            if i == self.attention_index:
                h = self.attention(h)
        return torch.tanh(self.conv(F.relu(self.bn(h))))


class ResNetDiscriminator(ganzoo.Discriminator):
    """Images (N, C, S, S) [and labels (N,)] -> one score per image (N,); spectrally normalised."""

    def __init__(self, cfg: SNGANConfig, *, conditioning: str = "projection",
                 attention: Callable[[int], nn.Module] | None = None, attention_resolution: int = 0) -> None:
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape, num_classes=cfg.num_classes)
        _check(cfg, conditioning)
        k = cfg.num_classes
        self.concat = k if conditioning == "concat" else 0
        blocks, res, width, size = [], [], cfg.channels + self.concat, cfg.image_size
        for i, (mult, down) in enumerate(D_LAYOUT[cfg.image_size]):
            blocks.append(DBlock(width, cfg.d_ch * mult, down=down, first=i == 0))
            width, size = cfg.d_ch * mult, size // 2 if down else size
            res.append(size)
        self.blocks = nn.ModuleList(blocks)
        self.attention_index = _attention_index(res, attention_resolution, "the discriminator")
        self.attention = (attention(blocks[self.attention_index].c2.out_channels)
                          if self.attention_index >= 0 else None)
        # snresnet_32.py: SNLinear(ch, 1, nobias=True); snresnet_64.py: with a bias
        self.linear = glorot_(nn.Linear(width, 1, bias=cfg.image_size != 32))
        self.embed = glorot_(nn.Embedding(k, width)) if k and conditioning == "projection" else None
        spectral_norm_(self, layers=SN_LAYERS + (nn.Embedding,))  # the projection's SNEmbedID too

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """phi(x): the globally sum-pooled ReLU features (N, width) that the linear head scores."""
        if self.concat:
            onehot = F.one_hot(labels, self.concat).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, onehot.expand(-1, -1, *x.shape[2:])], dim=1)
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attention_index:
                h = self.attention(h)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x, labels)
        out = self.linear(h).squeeze(1)
        if self.embed is not None:  # the projection term <embed(y), phi(x)>
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out
