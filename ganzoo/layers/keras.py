"""Keras semantics in PyTorch, for faithful ports of Keras sources.

Shared by every plugin that ports a Keras source (upsample, deconv, mlp), and
public so that third-party ports get the same semantics.

* ``padding='same'`` in TensorFlow/Keras pads ``max((ceil(n/s) - 1)*s + k - n, 0)``
  pixels in all and puts the odd one at the bottom/right. With stride 2 on an
  even input this is (0, 1), which PyTorch's symmetric ``padding=1`` does not
  reproduce (same output shape, windows shifted by one pixel).
  :class:`KerasSameConv2d` pads like Keras.
* ``BatchNormalization(momentum=m)`` updates ``moving = m*moving + (1-m)*batch``;
  PyTorch's ``momentum`` is the weight of the *batch* statistic, so Keras m is
  PyTorch ``1 - m`` (Keras 0.8 -> PyTorch 0.2; ``nn.BatchNorm2d(c, 0.8)`` would
  set eps, not momentum). Keras' default epsilon is 1e-3 (PyTorch's is 1e-5).
* Keras ``Dense``/``Conv2D``/``Conv2DTranspose`` default to glorot_uniform
  kernels and zero biases (:func:`keras_init_`); BatchNormalization defaults
  (gamma 1, beta 0, moving mean 0, moving variance 1) are PyTorch's too.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["keras_same_padding", "KerasSameConv2d", "keras_batchnorm", "keras_init_"]


def keras_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF/Keras ``padding='same'`` along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class KerasSameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with Keras ``padding='same'`` (asymmetric when the total is odd).

    Parameters and ``state_dict`` are exactly ``nn.Conv2d``'s. The padding is
    computed from the input size at each call (it depends on its parity).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = keras_same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = keras_same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top == bottom and left == right:  # symmetric: let the convolution pad
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left))
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0)


def keras_batchnorm(num_features: int, keras_momentum: float = 0.99, eps: float = 1e-3, dims: int = 2) -> nn.Module:
    """PyTorch BatchNorm equivalent to Keras ``BatchNormalization(momentum=keras_momentum, epsilon=eps)``."""
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
    # round(): 1 - 0.8 is 0.19999999999999996 in binary floating point
    return cls(num_features, eps=eps, momentum=round(1.0 - keras_momentum, 12))


@torch.no_grad()
def keras_init_(module: nn.Module) -> None:
    """Keras default initialisation: glorot_uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
