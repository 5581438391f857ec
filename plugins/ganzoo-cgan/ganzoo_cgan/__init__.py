"""ganzoo plugin: ``cgan``, a class-conditional GAN: pick a class, get an image of it.

Two ways of giving the class to the networks (``--set conditioning=...``):

``projection`` (default)
    Miyato & Koyama 2018, "cGANs with Projection Discriminator" (ICLR 2018,
    arXiv:1802.05637): G's BatchNorms take their scale and shift from the class
    (conditional BatchNorm); D scores ``psi(phi(x)) + <embed(y), phi(x)>``, the inner
    product of a (spectrally normalised) class embedding with its pooled features.
``concat``
    Mirza & Osindero 2014, "Conditional Generative Adversarial Nets"
    (arXiv:1411.1784): the one-hot class is concatenated to G's latent vector and, as
    constant maps, to D's input image.

The networks are the SNGAN ResNets of :mod:`ganzoo_sngan` at 32 or 64 px, trained as in
Miyato & Koyama §5 (hinge loss, 5 D steps per G step, Adam 2e-4, betas (0, 0.9),
batch 64). Real batches bring their labels; fakes are drawn for the same labels.

``num_classes`` comes from the data: Fashion-MNIST 10, the jellyfish folder 6 species,
UTKFace ``--label gender`` 2 / ``race`` 5 / ``age_group`` 9. Until the trainer fills it
in from the dataset, pass it: ``ganzoo train cgan --data fashion-mnist:DIR --image-size
32 --channels 1 --set num_classes=10 ...``. Sample a class by name or index with
``ganzoo sample RUN --label coat`` or one row per class with ``--per-class 8``.
"""
from __future__ import annotations

from dataclasses import dataclass

import ganzoo
from ganzoo.data import FASHION_MNIST_CLASSES, UTKFACE_LABELS
from ganzoo_sngan import CONDITIONING, ResNetDiscriminator, ResNetGenerator, SNGANConfig

__all__ = ["ARCH", "CGANConfig", "CGANGenerator", "CGANDiscriminator", "CONDITIONING"]

#: what ``num_classes`` is for the data sets ganzoo knows (for the error message)
KNOWN_CLASS_COUNTS = {
    "fashion-mnist": len(FASHION_MNIST_CLASSES),
    "folder:jellyfish": 6,
    **{f"utkface --label {k}": len(v) for k, v in UTKFACE_LABELS.items()},
}


@dataclass
class CGANConfig(SNGANConfig):
    # how the class reaches the networks: "projection" or "concat" (see CONDITIONING)
    conditioning: str = "projection"


def _require_classes(cfg: CGANConfig) -> None:
    if cfg.num_classes < 1:
        known = ", ".join(f"{k}: {v}" for k, v in KNOWN_CLASS_COUNTS.items())
        raise ganzoo.GanzooError(f"cgan is class-conditional: set num_classes to the data's number of classes, "
                                 f"e.g. --set num_classes=10 ({known})")


class CGANGenerator(ResNetGenerator):
    """z (N, latent_dim) and labels (N,) -> images of those classes."""

    def __init__(self, cfg: CGANConfig) -> None:
        _require_classes(cfg)
        super().__init__(cfg, conditioning=cfg.conditioning)


class CGANDiscriminator(ResNetDiscriminator):
    """Images and labels (N,) -> one score per image: is this a real image of that class?"""

    def __init__(self, cfg: CGANConfig) -> None:
        _require_classes(cfg)
        super().__init__(cfg, conditioning=cfg.conditioning)


ARCH = ganzoo.Architecture(
    "cgan", CGANConfig, CGANGenerator, CGANDiscriminator,
    objective="hinge",
    objective_kwargs={"n_critic": 5},
    # Miyato & Koyama §5 and configs/sn_projection*.yml: Adam alpha 2e-4, beta1 0, beta2 0.9,
    # n_dis 5, batch 64
    optimizer=ganzoo.OptimizerSettings(lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9), batch_size=64),
    image_sizes=(32, 64),
    conditional=True,
    reference=(
        "Miyato & Koyama 2018, 'cGANs with Projection Discriminator', ICLR 2018, arXiv:1802.05637 "
        "(conditioning=projection); Mirza & Osindero 2014, 'Conditional Generative Adversarial Nets', "
        "arXiv:1411.1784 (conditioning=concat); networks of Miyato et al. 2018, arXiv:1802.05957"
    ),
    description=(
        "class-conditional SNGAN: conditional BN in G + projection D (default), or one-hot "
        "concatenation in G and D; hinge loss, 5 D steps, Adam 2e-4 (0, 0.9)"
    ),
)


register_architectures = ganzoo.registers(ARCH)
