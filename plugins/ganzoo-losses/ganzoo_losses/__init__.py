"""ganzoo plugin: objectives and discriminator regularizers from the GAN literature.

Objectives (``--objective NAME``, hyper-parameters with ``--objective-arg KEY=VALUE``):

=====================  ===========================================  ==========================================
name                   paper                                        defaults
=====================  ===========================================  ==========================================
``wgan``               Arjovsky, Chintala & Bottou 2017             n_critic 5, clip 0.01
``wgan-gp``            Gulrajani et al. 2017                        n_critic 5, gp_lambda 10
``lsgan``              Mao et al. 2017                              a 0, b 1, c 1, n_critic 1
``hinge``              Lim & Ye 2017; Miyato et al. 2018            n_critic 1
``nonsaturating-r1``   Goodfellow et al. 2014 + Mescheder 2018      r1_gamma 10, n_critic 1
=====================  ===========================================  ==========================================

Every one takes ``r1_gamma`` (R1 on real data, Mescheder et al. 2018; 0 = off) and
``n_critic``. Regularizers for architectures: :func:`spectral_norm_` (Miyato et al.
2018), :func:`gradient_penalty`, :func:`r1_penalty`, :func:`clip_weights_`.
"""
from __future__ import annotations

import ganzoo

from .objectives import WGAN, WGANGP, AdversarialLoss, Hinge, LeastSquares, NonSaturatingR1
from .regularizers import (
    SN_LAYERS, clip_weights_, discriminate, gradient_penalty, r1_penalty, spectral_norm_, top_singular_value,
)

__all__ = [
    "OBJECTIVES", "AdversarialLoss", "WGAN", "WGANGP", "LeastSquares", "Hinge", "NonSaturatingR1",
    "spectral_norm_", "SN_LAYERS", "top_singular_value", "gradient_penalty", "r1_penalty", "clip_weights_",
    "discriminate",
]

#: registered name -> class
OBJECTIVES = {cls.name: cls for cls in (WGAN, WGANGP, LeastSquares, Hinge, NonSaturatingR1)}


register_objectives = ganzoo.registers(*OBJECTIVES.values())
