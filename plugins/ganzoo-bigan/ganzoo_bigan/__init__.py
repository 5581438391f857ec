"""``bigan``: Donahue, Krähenbühl & Darrell, "Adversarial Feature Learning" (ICLR 2017),
arXiv:1605.09782 (BiGAN), and Dumoulin, Belghazi, Poole, Mastropietro, Lamb, Arjovsky
& Courville, "Adversarially Learned Inference" (ICLR 2017), arXiv:1606.00704 (ALI).
Source 003, the BEGAN thesis, surveys them (its L398: an
inference network (encoder) besides the generator, and a discriminator that takes
(z, x) pairs, real images with their encodings against synthetic images with
their latent vectors).

* the encoder E (inside the generator module: ``G.encoder``, ``G.encode(x)``)
  and the joint discriminator ``D(x, z)``: :mod:`ganzoo_bigan.models`;
* the ``bigan`` objective (BiGAN's minimax game, inverted labels for G and E):
  :mod:`ganzoo_bigan.objective`.
"""
from __future__ import annotations

import ganzoo

from .models import BiGANConfig, BiGANDiscriminator, BiGANEncoder, BiGANGenerator
from .objective import BiGANObjective

__all__ = [
    "ARCH", "BiGANConfig", "BiGANGenerator", "BiGANEncoder", "BiGANDiscriminator", "BiGANObjective",
    "register_architectures", "register_objectives",
]
__version__ = "0.1.0"


ARCH = ganzoo.Architecture(
    "bigan", BiGANConfig, BiGANGenerator, BiGANDiscriminator,
    objective="bigan",
    # the authors' train_gan.py defaults used by train_mnist.sh: Adam, learning rate 2e-4,
    # momentum (beta1) 0.5, batch size 128 (its L2 weight decay 2.5e-5 is not applied by ganzoo's trainer)
    optimizer=ganzoo.OptimizerSettings(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=128),
    image_sizes=(28, 32, 64),
    reference=(
        "Donahue, Kraehenbuehl & Darrell 2016, 'Adversarial Feature Learning' (BiGAN), arXiv:1605.09782; "
        "Dumoulin et al. 2016, 'Adversarially Learned Inference' (ALI), arXiv:1606.00704; "
        "code jeffdonahue/bigan; surveyed in source 003 (L398)"
    ),
    description=(
        "BiGAN/ALI: G with an encoder E (x -> z, in the generator, G.encode) and a joint discriminator "
        "D(x, z); D tells (x, E(x)) from (G(z), z), G and E learn with reversed labels; z ~ U(-1, 1)^50"
    ),
    freezable={"encoder": lambda G, D: [G.encoder]},
)


register_architectures = ganzoo.registers(ARCH)
register_objectives = ganzoo.registers(BiGANObjective)
