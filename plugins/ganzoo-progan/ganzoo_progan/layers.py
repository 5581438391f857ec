"""ProGAN's building blocks (Karras et al. 2018, arXiv:1710.10196, §3-§4.2).

* :class:`EqualizedConv2d` / :class:`EqualizedLinear`, §4.1 "equalized learning
  rate": weights are *stored* as N(0, 1) and scaled at runtime by the per-layer
  constant ``c = gain / sqrt(fan_in)`` of He et al. (``gain = sqrt(2)``), so
  that Adam's scale-invariant updates change every layer at the same speed.
  Biases start at zero.
* :class:`PixelNorm`, §4.2: ``b = a / sqrt(mean_j(a_j^2) + 1e-8)`` over the
  channels of each pixel (the generator, after every convolution).
* :class:`MinibatchStddev`, §3: the standard deviation of every feature at
  every pixel over a group of the minibatch, averaged into one number,
  appended as one constant feature map (the discriminator's last block).
  Groups of 4 as in the authors' code (``minibatch_stddev_layer(group_size=4)``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EqualizedConv2d", "EqualizedLinear", "PixelNorm", "MinibatchStddev", "he_constant",
           "upsample", "downsample", "LEAKY_SLOPE"]

#: §A.1 "leaky ReLU with leakiness 0.2" in all layers of both networks except the last
LEAKY_SLOPE = 0.2


def he_constant(fan_in: int, gain: float = math.sqrt(2.0)) -> float:
    """The per-layer normalization constant of He et al. (2015): ``gain / sqrt(fan_in)``."""
    return gain / math.sqrt(fan_in)


class EqualizedConv2d(nn.Module):
    """A 'same' convolution whose N(0, 1) weight is multiplied by the He constant on every call."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 gain: float = math.sqrt(2.0), bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("EqualizedConv2d: kernel_size must be odd ('same' padding)")
        # §4.1 "we use a trivial N(0, 1) initialization and then explicitly scale the weights at runtime"
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = he_constant(in_channels * kernel_size * kernel_size, gain)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, scale={self.scale:.5g}"


class EqualizedLinear(nn.Module):
    """A fully connected layer with the same runtime weight scaling."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = math.sqrt(2.0), bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = he_constant(in_features, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        o, i = self.weight.shape
        return f"{i}, {o}, scale={self.scale:.5g}"


class PixelNorm(nn.Module):
    """§4.2: normalize the feature vector of each pixel to unit mean square."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class MinibatchStddev(nn.Module):
    """§3: append the average (over features and pixels) of the per-feature standard deviation.

    The minibatch is split into groups of ``group_size`` as the authors' code
    does (sample ``i`` belongs to group ``i mod (N / group_size)``); each group's
    statistic ``mean_{c,h,w} sqrt(var_group(x[:, c, h, w]) + 1e-8)`` (variance
    with 1/G, the population variance) is replicated over the group's samples
    and pixels as one extra channel. ``group_size <= 0`` or a batch that the
    group size does not divide uses the whole minibatch, as §3 describes it.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = int(group_size)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size > 0 else n
        if n % g:
            g = n
        y = x.float().reshape(g, n // g, c, h, w)
        y = y - y.mean(dim=0, keepdim=True)
        y = torch.sqrt(y.pow(2).mean(dim=0) + self.eps)     # (M, C, H, W)
        y = y.mean(dim=(1, 2, 3))                            # (M,)
        y = y.repeat(g).to(x.dtype).view(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def upsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour up-sampling (§A.1 'upsample' = replicating each pixel, the authors' ``upscale2d``)."""
    # int(): the factor comes from static shapes (image_size // x.shape[-1]); a tracer (ONNX,
    # TorchScript export) sees shapes as tensors, and interpolate refuses a tensor scale factor
    factor = int(factor)
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Box-filter down-sampling (§A.1 'average pooling', the authors' ``downscale2d``)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)
