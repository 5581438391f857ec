"""Network trunks that several papers share (public API for plugins)."""
from __future__ import annotations

from torch import nn

__all__ = ["fc_upconv_generator"]


def fc_upconv_generator(latent_dim: int, fc_width: int, width: int, start: int, n_up: int,
                        channels: int) -> tuple[nn.Sequential, nn.Sequential]:
    """The generator of InfoGAN's Table 1 (also BiGAN's convolutional variant).

    Returns ``(fc, net)``: ``fc`` maps z through Linear-BN-ReLU to ``fc_width`` and then to
    ``width x start x start``; ``net`` doubles the size ``n_up`` times with ConvTranspose(4, 2, 1),
    halving the width, BN-ReLU between, and ends in ``channels`` with tanh.
    """
    fc = nn.Sequential(
        nn.Linear(latent_dim, fc_width), nn.BatchNorm1d(fc_width), nn.ReLU(True),
        nn.Linear(fc_width, width * start ** 2), nn.BatchNorm1d(width * start ** 2), nn.ReLU(True),
    )
    layers: list[nn.Module] = []
    for _ in range(n_up - 1):
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
        width //= 2
    layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
    return fc, nn.Sequential(*layers)
