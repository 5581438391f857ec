"""``dcgan``: Radford, Metz & Chintala, "Unsupervised Representation Learning with
Deep Convolutional Generative Adversarial Networks" (2015), arXiv:1511.06434.

Layer widths follow the paper's reference code (soumith/dcgan.torch, also
pytorch/examples ``dcgan``): ``ngf = ndf = 64``. At 64 px::

    G: z (100, 1, 1) -> ConvT(100, 8ngf, 4, 1, 0) -> BN -> ReLU                   4x4x512
       -> ConvT(8ngf, 4ngf, 4, 2, 1) -> BN -> ReLU                                8x8
       -> ConvT(4ngf, 2ngf, 4, 2, 1) -> BN -> ReLU                                16x16
       -> ConvT(2ngf,  ngf, 4, 2, 1) -> BN -> ReLU                                32x32
       -> ConvT(ngf, C, 4, 2, 1) -> tanh                                          64x64
    D: Conv(C, ndf, 4, 2, 1) -> LeakyReLU(0.2)                 (no BN)            32x32
       -> Conv(ndf, 2ndf, 4, 2, 1) -> BN -> LeakyReLU(0.2)                        16x16
       -> Conv(2ndf, 4ndf, 4, 2, 1) -> BN -> LeakyReLU(0.2)                       8x8
       -> Conv(4ndf, 8ndf, 4, 2, 1) -> BN -> LeakyReLU(0.2)                       4x4
       -> Conv(8ndf, 1, 4, 1, 0)                               (a logit)          1x1

At 32 px both networks have one stride-2 block fewer, every stride-2 layer still
halving (D) or doubling (G) the channels, so G's projection is 4x4x(4ngf) and
D's last block has 4ndf channels (the paper gives only the 64 px network, Fig. 1).

From the paper: §3 "Architecture guidelines for stable Deep Convolutional GANs"
(strided convolutions instead of pooling, fractional-strided convolutions in G,
batchnorm in both except G's output and D's input layer, no fully connected
hidden layers, ReLU in G with tanh output, LeakyReLU in D); Fig. 1 (the 64 px
generator, projected and reshaped to 4x4); §4 "Details of adversarial training"
(images scaled to tanh's [-1, 1], mini-batch 128, weights from N(0, 0.02), leak
0.2, Adam with lr 0.0002 and beta1 0.5). BatchNorm's gamma from N(1, 0.02) and
convolutions without bias: the reference code's ``weights_init`` (``m:noBias()``).

The discriminator returns LOGITS (no sigmoid): ganzoo's objectives use
``binary_cross_entropy_with_logits``, the numerically stable equivalent of the
paper's sigmoid + binary cross-entropy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import ganzoo
from ganzoo.layers.init import normal_init_

__all__ = ["DCGANConfig", "DCGANGenerator", "DCGANDiscriminator", "ARCH", "register_architectures"]


@dataclass
class DCGANConfig(ganzoo.GANConfig):
    # §4 / Fig. 1: 64x64 (LSUN, Imagenet-1k, faces); 32 px and 1 channel are also supported
    image_size: int = 64
    channels: int = 3
    # Fig. 1: "100 dimensional uniform distribution Z". The reference code's default is
    # normal noise (opt.noise = 'normal'), as is ganzoo's sample_latent: we keep N(0, 1).
    latent_dim: int = 100
    # reference code (dcgan.torch main.lua, pytorch/examples dcgan): ngf = 64, ndf = 64
    ngf: int = 64
    ndf: int = 64
    # §4: "In the LeakyReLU, the slope of the leak was set to 0.2 in all models"
    leaky_slope: float = 0.2
    # §4: "All weights were initialized from a zero-centered Normal distribution with standard deviation 0.02"
    init_std: float = 0.02


def _blocks(cfg: DCGANConfig) -> int:
    """Number of stride-2 layers between the 4x4 map and the image, minus one (3 at 64 px, 2 at 32 px)."""
    n = math.log2(cfg.image_size)
    if n != int(n) or n < 4:
        raise ganzoo.GanzooError("dcgan: image_size must be a power of 2, at least 16")
    return int(n) - 3


class DCGANGenerator(ganzoo.Generator):
    """z (N, latent_dim) -> images (N, C, S, S) in [-1, 1] (tanh)."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        n = _blocks(cfg)
        width = cfg.ngf * 2**n  # 8 * ngf = 512 at 64 px (Fig. 1 has 1024 with ngf = 128)
        # Fig. 1 "Project and reshape": a ConvTranspose on the 1x1 latent, as in the reference code.
        # BatchNorm with PyTorch's defaults (momentum 0.1, eps 1e-5), which are also Torch7's.
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.latent_dim, width, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        # §3: no batchnorm on the generator output layer; tanh output
        layers += [nn.ConvTranspose2d(width, cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        normal_init_(self, cfg.init_std, bn_std=cfg.init_std)  # §4; BN gamma as the reference code

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(ganzoo.Discriminator):
    """Images (N, C, S, S) -> logits (N,)."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        n = _blocks(cfg)
        width = cfg.ndf
        # §3: no batchnorm on the discriminator input layer
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, width, 4, 2, 1, bias=False),
                                   nn.LeakyReLU(cfg.leaky_slope, True)]
        for _ in range(n):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(cfg.leaky_slope, True)]
            width *= 2
        # the 4x4 map to one logit (reference code: a 4x4 convolution, then a sigmoid we leave out)
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        normal_init_(self, cfg.init_std, bn_std=cfg.init_std)  # §4; BN gamma as the reference code

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).view(x.shape[0])


ARCH = ganzoo.Architecture(
    "dcgan", DCGANConfig, DCGANGenerator, DCGANDiscriminator,
    # the standard GAN game of Goodfellow et al. with the non-saturating generator loss, real and
    # fake in separate D batches as in the reference code (errD_real and errD_fake)
    objective="nonsaturating",
    objective_kwargs={"joint_batch": False},
    # §4: Adam, "learning rate of 0.0002", "momentum term beta1 ... 0.5" (beta2: Adam's default
    # 0.999, as in the reference code); "mini-batch stochastic gradient descent (SGD) with a
    # mini-batch size of 128"
    optimizer=ganzoo.OptimizerSettings(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=128),
    image_sizes=(32, 64),
    reference=(
        "Radford, Metz & Chintala 2015, 'Unsupervised Representation Learning with Deep Convolutional "
        "Generative Adversarial Networks', arXiv:1511.06434; reference code soumith/dcgan.torch"
    ),
    description=(
        "DCGAN: G projects z to 4x4x(8ngf) and upsamples with ConvTranspose(4,2,1)+BN+ReLU to tanh; "
        "D is Conv(4,2,1)+BN+LeakyReLU 0.2 (no BN on the input layer) to a 4x4 conv logit"
    ),
)


register_architectures = ganzoo.registers(ARCH)
