"""Weight initialisations that several papers share (public API for plugins)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["normal_init_"]


@torch.no_grad()
def normal_init_(module: nn.Module, std: float = 0.02, bn_std: float = 0.02) -> None:
    """DCGAN's initialisation (Radford et al. 2015, §4), also used by InfoGAN and BiGAN's code.

    Conv, transposed-conv and linear weights ~ N(0, std), biases 0; batch-norm
    gamma ~ N(1, bn_std), beta 0.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, bn_std)
            nn.init.zeros_(m.bias)
