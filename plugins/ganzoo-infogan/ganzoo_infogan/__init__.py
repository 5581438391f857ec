"""``infogan``: Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel, "InfoGAN:
Interpretable Representation Learning by Information Maximizing Generative
Adversarial Nets" (NIPS 2016), arXiv:1606.03657; the authors' code openai/InfoGAN
for what the paper leaves open. Source 003 surveys it
(the BEGAN thesis, L380-L387: G takes noise z and a
latent code c, a network Q(c | x) recovers c, and a regularization term
maximizes the mutual information between c and G(z, c)).

* latent codes and the networks (Table 1, MNIST): :mod:`ganzoo_infogan.models`;
  the Q head shares D's trunk and lives in the discriminator module;
* the ``infogan`` objective (Eq. (6), the lower bound L_I of §5), adding the
  mutual-information term to both D/Q's and G's updates:
  :mod:`ganzoo_infogan.objective`;
* choosing codes when sampling: ``G.sample(n, cat=..., cont=..., seed=...)`` or
  ``G.make_latent(noise=..., cat=..., cont=...)``; reading them back from
  images: ``D.infer_codes(images)``.
"""
from __future__ import annotations

import ganzoo

from .models import InfoGANConfig, InfoGANDiscriminator, InfoGANGenerator, QOutput
from .objective import InfoGANObjective, info_nll

__all__ = [
    "ARCH", "InfoGANConfig", "InfoGANGenerator", "InfoGANDiscriminator", "InfoGANObjective", "QOutput",
    "info_nll", "register_architectures", "register_objectives",
]
__version__ = "0.1.0"


ARCH = ganzoo.Architecture(
    "infogan", InfoGANConfig, InfoGANGenerator, InfoGANDiscriminator,
    # the objective's defaults: lambda 1 for the categorical code (Appendix C), 0.1 for the continuous
    # ones (smaller, §7 / Appendix C)
    objective="infogan",
    # Adam with lr 2e-4 for D and 1e-3 for G, beta1 0.5, batch 128: the authors' run_mnist_exp.py
    # (discriminator_learning_rate=2e-4, generator_learning_rate=1e-3, batch_size = 128) and
    # infogan_trainer.py (AdamOptimizer(..., beta1=0.5))
    optimizer=ganzoo.OptimizerSettings(lr_g=1e-3, lr_d=2e-4, betas=(0.5, 0.999), batch_size=128),
    image_sizes=(28, 32, 64),
    reference=(
        "Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel 2016, 'InfoGAN: Interpretable Representation "
        "Learning by Information Maximizing Generative Adversarial Nets', NIPS 2016, arXiv:1606.03657; "
        "code openai/InfoGAN; surveyed in source 003 (L380-L387)"
    ),
    description=(
        "InfoGAN: z = 62 noise + 10-way categorical + 2 continuous codes; Q head on D's trunk; "
        "mutual-information term (lambda 1 categorical, 0.1 continuous) in both G's and D/Q's losses"
    ),
    freezable={"q_head": lambda G, D: [D.q_head]},
)


register_architectures = ganzoo.registers(ARCH)
register_objectives = ganzoo.registers(InfoGANObjective)
