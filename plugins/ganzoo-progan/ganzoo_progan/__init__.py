"""``progan``: Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation" (ICLR 2018), arXiv:1710.10196; the authors' code
tkarras/progressive_growing_of_gans (``networks.py``, ``loss.py``) for details the
paper leaves open. Source 003, the BEGAN thesis, surveys it (its
L356-L376: train at 4x4, add layers with a linear fade-in controlled by alpha,
repeat to the target resolution).

What defines it, and where it lives here:

* progressive growing from 4x4 to ``image_size`` with fade-in (§2, Fig. 2):
  :mod:`ganzoo_progan.models` (``stage``/``alpha`` buffers, :func:`fade`),
  driven by the ``progan`` objective's image-count schedule
  (:mod:`ganzoo_progan.objective`, 800k images per phase as in §A.1);
* minibatch standard deviation (§3), equalized learning rate (§4.1), pixelwise
  feature normalization (§4.2): :mod:`ganzoo_progan.layers`;
* WGAN-GP with ``lambda = 10``, ``eps_drift = 0.001``, ``n_critic = 1`` (§A.1):
  the ``progan`` objective; Adam ``lr = 0.001, beta1 = 0, beta2 = 0.99, eps = 1e-8``
  and minibatch 16 (§A.1, for resolutions up to 128).

Not implemented: the paper's exponential moving average of G's weights for
evaluation (§A.1, decay 0.999), the per-resolution minibatch sizes above 128 px,
and the fused up/down-sampling convolutions of the authors' code (an
implementation detail computing the same function).

Sampling: ``G.sample(n)`` returns images at the full ``image_size`` at every
stage (the current stage's output up-sampled by nearest neighbours).
"""
from __future__ import annotations

import ganzoo

from .layers import EqualizedConv2d, EqualizedLinear, MinibatchStddev, PixelNorm, he_constant
from .models import ProGANConfig, ProGANDiscriminator, ProGANGenerator, fade, num_stages, stage_resolution
from .objective import ProgressiveWGANGP, gradient_penalty, images_at, prepare_reals, progress_at

__all__ = [
    "ARCH", "ProGANConfig", "ProGANGenerator", "ProGANDiscriminator", "ProgressiveWGANGP",
    "EqualizedConv2d", "EqualizedLinear", "PixelNorm", "MinibatchStddev", "he_constant", "fade",
    "num_stages", "stage_resolution", "progress_at", "images_at", "prepare_reals", "gradient_penalty",
    "register_architectures", "register_objectives",
]
__version__ = "0.1.0"


ARCH = ganzoo.Architecture(
    "progan", ProGANConfig, ProGANGenerator, ProGANDiscriminator,
    # the objective's defaults: lambda 10, eps_drift 0.001, 800k images per fade-in and per stabilization
    # phase (§A.1)
    objective="progan",
    # §A.1: "Adam with alpha = 0.001, beta1 = 0, beta2 = 0.99, and eps = 1e-8" (eps is torch's default);
    # "minibatch size 16 for resolutions 4^2-128^2"
    optimizer=ganzoo.OptimizerSettings(lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99), batch_size=16),
    image_sizes=(16, 32, 64, 128, 256),
    # the layers of resolutions not grown yet take no part in a step: DDP must look for them
    unused_parameters=True,
    reference=(
        "Karras, Aila, Laine & Lehtinen 2018, 'Progressive Growing of GANs for Improved Quality, "
        "Stability, and Variation', ICLR 2018, arXiv:1710.10196; code tkarras/progressive_growing_of_gans; "
        "surveyed in source 003 (L356-L376)"
    ),
    description=(
        "ProGAN: grows G and D from 4x4 to the image size with fade-in; equalized learning rate, pixel norm, "
        "minibatch stddev; WGAN-GP (lambda 10, drift 0.001), 800k images per phase"
    ),
)


register_architectures = ganzoo.registers(ARCH)
register_objectives = ganzoo.registers(ProgressiveWGANGP)
