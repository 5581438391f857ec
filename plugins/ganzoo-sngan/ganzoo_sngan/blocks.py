"""The residual blocks of SNGAN's ResNets and the conditional BatchNorm of its conditional variant.

After the reference code of Miyato et al. 2018 and Miyato & Koyama 2018
(pfnet-research/sngan_projection, ``gen_models/resblocks.py``, ``dis_models/resblocks.py``,
``source/links/categorical_conditional_batch_normalization.py``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConditionalBatchNorm2d", "GBlock", "DBlock", "glorot_"]

#: BatchNorm epsilon of the reference code (chainer's default; PyTorch's is 1e-5)
BN_EPS = 2e-5


@torch.no_grad()
def glorot_(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """Glorot-uniform weight with ``gain``, zero bias: the reference code's ``GlorotUniform(gain)``."""
    nn.init.xavier_uniform_(layer.weight, gain)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (de Vries et al. 2017; Miyato & Koyama 2018).

    gamma starts at 1 and beta at 0 for every class, as in the reference code: at
    initialisation the label has no effect, training makes it matter.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=BN_EPS, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.gamma(labels)[:, :, None, None] + self.beta(labels)[:, :, None, None]


class GBlock(nn.Module):
    """Up-sampling block: BN-ReLU-up2-conv3-BN-ReLU-conv3, plus a 1x1-conv shortcut of the up-sampled input.

    ``num_classes`` > 0: conditional BatchNorm (the class picks gamma and beta).
    Nearest up-sampling commutes with a 1x1 convolution, so the shortcut convolves
    before up-sampling (the reference up-samples first): the same function, 4x cheaper.
    """

    def __init__(self, in_channels: int, out_channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.conditional = num_classes > 0
        if self.conditional:
            self.b1 = ConditionalBatchNorm2d(in_channels, num_classes)
            self.b2 = ConditionalBatchNorm2d(out_channels, num_classes)
        else:
            self.b1 = nn.BatchNorm2d(in_channels, eps=BN_EPS)
            self.b2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.c1 = glorot_(nn.Conv2d(in_channels, out_channels, 3, 1, 1), math.sqrt(2))
        self.c2 = glorot_(nn.Conv2d(out_channels, out_channels, 3, 1, 1), math.sqrt(2))
        self.c_sc = glorot_(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.b1(x, labels) if self.conditional else self.b1(x)
        h = self.c1(self.up(F.relu(h)))
        h = self.b2(h, labels) if self.conditional else self.b2(h)
        h = self.c2(F.relu(h))
        return h + self.up(self.c_sc(x))


class DBlock(nn.Module):
    """Discriminator block: ReLU-conv3-ReLU-conv3 (then 2x2 average pooling if ``down``) plus a shortcut.

    ``first``: the reference's ``OptimizedBlock`` for the image input: no ReLU before
    the first convolution, and the shortcut pools before its 1x1 convolution. The
    hidden width is the input width (``first``: the output width), and the shortcut is
    learnt where the width or the resolution changes, as in the reference.
    """

    def __init__(self, in_channels: int, out_channels: int, *, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down or first, first
        hidden = out_channels if first else in_channels
        self.c1 = glorot_(nn.Conv2d(in_channels, hidden, 3, 1, 1), math.sqrt(2))
        self.c2 = glorot_(nn.Conv2d(hidden, out_channels, 3, 1, 1), math.sqrt(2))
        learnable = first or down or in_channels != out_channels
        self.c_sc = glorot_(nn.Conv2d(in_channels, out_channels, 1)) if learnable else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(x if self.first else F.relu(x))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.first:
            return h + self.c_sc(F.avg_pool2d(x, 2))
        if self.c_sc is None:
            return h + x
        sc = self.c_sc(x)
        return h + (F.avg_pool2d(sc, 2) if self.down else sc)
