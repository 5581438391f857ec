"""ganzoo plugin: ``sngan``, the ResNet GAN with a spectrally normalised discriminator.

Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative
Adversarial Networks" (ICLR 2018, arXiv:1802.05957). See :mod:`ganzoo_sngan.models` for
the networks and :mod:`ganzoo_sngan.blocks` for their blocks, which the ``sagan`` and
``cgan`` plugins build on.
"""
from __future__ import annotations

import ganzoo

from .blocks import ConditionalBatchNorm2d, DBlock, GBlock, glorot_
from .models import (
    CONDITIONING, D_LAYOUT, G_WIDTHS, REFERENCE_CH, ResNetDiscriminator, ResNetGenerator, SNGANConfig,
)

__all__ = [
    "ARCH", "SNGANConfig", "ResNetGenerator", "ResNetDiscriminator", "GBlock", "DBlock",
    "ConditionalBatchNorm2d", "glorot_", "G_WIDTHS", "D_LAYOUT", "REFERENCE_CH", "CONDITIONING",
]

#: The reference code's training recipe (configs/sn_cifar10_unconditional.yml): hinge loss,
#: n_dis 5, Adam alpha 2e-4, beta1 0, beta2 0.9, batch 64 (the paper's Table 2 ResNet setting).
ARCH = ganzoo.Architecture(
    "sngan", SNGANConfig, ResNetGenerator, ResNetDiscriminator,
    objective="hinge",
    objective_kwargs={"n_critic": 5},
    optimizer=ganzoo.OptimizerSettings(lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9), batch_size=64),
    image_sizes=(32, 64),
    reference=(
        "Miyato, Kataoka, Koyama & Yoshida 2018, 'Spectral Normalization for Generative Adversarial "
        "Networks', ICLR 2018, arXiv:1802.05957; 64 px networks from Miyato & Koyama 2018, "
        "arXiv:1802.05637; reference code pfnet-research/sngan_projection"
    ),
    description=(
        "SNGAN: ResNet G (BN, nearest up-sampling) and a spectrally normalised ResNet D with global "
        "sum pooling; hinge loss, 5 D steps per G step, Adam 2e-4 (0, 0.9)"
    ),
)


register_architectures = ganzoo.registers(ARCH)
