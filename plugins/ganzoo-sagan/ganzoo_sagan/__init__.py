"""ganzoo plugin: ``sagan``, the Self-Attention GAN.

Zhang, Goodfellow, Metaxas & Odena 2019, "Self-Attention Generative Adversarial
Networks" (ICML 2019, arXiv:1805.08318). What SAGAN adds to the SNGAN ResNets
(:mod:`ganzoo_sngan`, whose blocks it reuses):

* a self-attention block (§3, :class:`SelfAttention`) in G and in D, on the feature
  maps of ``attention_resolution`` pixels a side;
* spectral normalisation in G as well as in D (§4);
* the two time-scale update rule: one D step per G step, with D's learning rate 4e-4
  and G's 1e-4, Adam beta1 0, beta2 0.9 (§4, §5), and the hinge loss (§4).

The paper trains class-conditional 128 px ImageNet models (conditional BatchNorm and
a projection discriminator); ``sagan`` here is unconditional, at 32 or 64 px, on the
SNGAN widths. Its best attention placements were the 32x32 and 64x64 feature maps of
128 px images (Table 1); the default here is half the image size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import ganzoo
from ganzoo_sngan import ResNetDiscriminator, ResNetGenerator, SNGANConfig

__all__ = ["ARCH", "SAGANConfig", "SAGANGenerator", "SAGANDiscriminator", "SelfAttention"]


class SelfAttention(nn.Module):
    """y = x + gamma * v(o), o_j = sum_i beta_ji h(x_i), beta_ji = softmax_i(f(x_i)^T g(x_j)) (§3, eq. 1-3).

    f, g and h are 1x1 convolutions to C/k channels (the paper's C-bar, k = 8), v a 1x1
    convolution back to C; gamma is a learnt scalar that starts at 0, so the block is
    the identity at initialisation and the network first relies on local cues (§3).
    Written with plain matrix products, which support the double backward of gradient
    penalties.
    """

    def __init__(self, channels: int, k: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // k)
        self.f = nn.Conv2d(channels, hidden, 1, bias=False)
        self.g = nn.Conv2d(channels, hidden, 1, bias=False)
        self.h = nn.Conv2d(channels, hidden, 1, bias=False)
        self.v = nn.Conv2d(hidden, channels, 1, bias=False)
        for conv in (self.f, self.g, self.h, self.v):
            nn.init.xavier_uniform_(conv.weight)
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """beta (N, HW_j, HW_i): row j is where location j attends (sums to 1)."""
        f, g = self.f(x).flatten(2), self.g(x).flatten(2)        # (N, C', HW)
        return torch.softmax(torch.bmm(g.transpose(1, 2), f), dim=2)  # s_ij = f_i . g_j, softmax over i

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, hh, ww = x.shape
        beta = self.attention_map(x)
        o = torch.bmm(self.h(x).flatten(2), beta.transpose(1, 2))  # o_j = sum_i beta_ji h_i: (N, C', HW)
        return x + self.gamma * self.v(o.view(n, -1, hh, ww))


@dataclass
class SAGANConfig(SNGANConfig):
    # the side of the feature maps that get self-attention, in G and in D; 0: half the image size
    attention_resolution: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.attention_resolution = self.attention_resolution or self.image_size // 2


class SAGANGenerator(ResNetGenerator):
    """SNGAN's ResNet generator with spectral norm on every layer and self-attention."""

    def __init__(self, cfg: SAGANConfig) -> None:
        super().__init__(cfg, spectral=True, attention=SelfAttention, attention_resolution=cfg.attention_resolution)


class SAGANDiscriminator(ResNetDiscriminator):
    """SNGAN's spectrally normalised ResNet discriminator with self-attention."""

    def __init__(self, cfg: SAGANConfig) -> None:
        super().__init__(cfg, attention=SelfAttention, attention_resolution=cfg.attention_resolution)


ARCH = ganzoo.Architecture(
    "sagan", SAGANConfig, SAGANGenerator, SAGANDiscriminator,
    objective="hinge",
    objective_kwargs={"n_critic": 1},  # TTUR instead of several D steps (§4)
    # §4-5: Adam beta1 0, beta2 0.9; lr 1e-4 (G), 4e-4 (D); batch 256 (the SAGAN baseline of
    # Brock et al. 2019, Table 1)
    optimizer=ganzoo.OptimizerSettings(lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9), batch_size=256),
    image_sizes=(32, 64),
    reference=(
        "Zhang, Goodfellow, Metaxas & Odena 2019, 'Self-Attention Generative Adversarial Networks', "
        "ICML 2019, arXiv:1805.08318"
    ),
    description=(
        "SAGAN: the SNGAN ResNets with self-attention at one resolution in G and D, spectral norm in "
        "both, hinge loss, TTUR (Adam 1e-4 G / 4e-4 D, betas (0, 0.9), 1 D step per G step)"
    ),
)


register_architectures = ganzoo.registers(ARCH)
