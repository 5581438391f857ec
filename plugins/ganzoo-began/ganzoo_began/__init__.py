"""ganzoo plugin: the ``began`` architecture and the ``began`` objective.

Source 003 (a BEGAN thesis with its code listing; ``L<n>`` = a line of that source):
a BEGAN thesis on Fashion-MNIST upscaled to 64x64 whose discriminator is a
ResNet18 autoencoder; Berthelot, Schumm & Metz 2017 (arXiv:1703.10717) for the
method. See :mod:`ganzoo_began.models` and :mod:`ganzoo_began.objective`.
"""
from __future__ import annotations

import ganzoo

from .models import BEGANConfig, BEGANDiscriminator, BEGANGenerator, UpsamplingDecoder, xavier_init_
from .objective import BoundaryEquilibrium, recon_loss

__all__ = [
    "ARCH", "BEGANConfig", "BEGANGenerator", "BEGANDiscriminator", "BoundaryEquilibrium",
    "UpsamplingDecoder", "xavier_init_", "recon_loss",
]
__version__ = "0.1.0"


ARCH = ganzoo.Architecture(
    "began", BEGANConfig, BEGANGenerator, BEGANDiscriminator,
    # gamma 0.5 (L767), lambda_k 0.001 (L768), k_0 = 0 (L963): the objective's defaults
    objective="began",
    optimizer=ganzoo.OptimizerSettings(
        lr_g=1e-4,             # L957 ``optim.Adam(G.parameters(), lr=1e-4, ...)`` (also L765 ``lr = 1e-4``)
        lr_d=1e-5,             # L958 ``optim.Adam(D.parameters(), lr=1e-5, ...)``; L629-L631 explain the lower D rate
        betas=(0.5, 0.999),    # L957-L958
        batch_size=64,         # L763
    ),
    image_sizes=(32, 64),      # 64: L769; 32: this plugin's extension (one up-sampling block fewer)
    channels=(1, 3),           # 1: Fashion-MNIST (L800); 3: timm's in_chans=3
    reference=(
        "source 003: Zaika, 'Structural-parametric synthesis of the BEGAN generative adversarial "
        "network', bachelor's thesis, Kyiv Aviation Institute, 2025 (Fashion-MNIST 64x64, 8 epochs, "
        "batch 64); Berthelot, Schumm & Metz 2017, arXiv:1703.10717"
    ),
    description=(
        "BEGAN whose discriminator is an autoencoder: a ResNet18 encoder (timm, 512-d pooled "
        "features) and a transposed-conv decoder; L1 reconstruction losses balanced by k "
        "(gamma 0.5, lambda_k 0.001). z 48-d; 32 or 64 px, 1 or 3 channels. The source trains it "
        "8 epochs at batch 64 (--epochs 8)."
    ),
    # fine-tuning can freeze the ResNet18 encoder (pretrained in the seed, L798)
    freezable={"encoder": lambda G, D: [D.encoder]},
    # channels_last measured 0.89x (all of G and D), 0.94-0.97x (G and the decoder only) of NCHW's
    # training speed at 32x32x1, batch 16, one thread: ResNet18's layer4 works on 1x1-2x2 maps,
    # where channels_last weights cost a gradient copy per conv (benchmarks/README.md)
    channels_last=False,
)


register_architectures = ganzoo.registers(ARCH)
register_objectives = ganzoo.registers(BoundaryEquilibrium)
