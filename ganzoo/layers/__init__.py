"""Layers and initialisations that several papers share: public API for architecture plugins.

Stable names (documented in docs/writing-a-plugin.md, "Shared layers"); import them from
here or from their submodule:

* :mod:`ganzoo.layers.blocks`: :class:`Blur2d` (an anti-aliasing [1, 2, 1] filter) and
  :func:`fc_upconv_generator` (InfoGAN's Table 1 generator trunk, also BiGAN's);
* :mod:`ganzoo.layers.init`: :func:`normal_init_` (DCGAN's N(0, 0.02) initialisation);
* :mod:`ganzoo.layers.keras`: Keras semantics for faithful ports of Keras sources
  (:class:`KerasSameConv2d`, :func:`keras_same_padding`, :func:`keras_batchnorm`,
  :func:`keras_init_`).

Changing what one of these computes changes every architecture built on it, and so the
weights' meaning in released models: add a new name instead.
"""

from ganzoo.layers.blocks import Blur2d, fc_upconv_generator
from ganzoo.layers.init import normal_init_
from ganzoo.layers.keras import KerasSameConv2d, keras_batchnorm, keras_init_, keras_same_padding

__all__ = ["Blur2d", "fc_upconv_generator", "normal_init_", "KerasSameConv2d", "keras_same_padding",
           "keras_batchnorm", "keras_init_"]
