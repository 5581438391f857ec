"""Network trunks that several papers share (public API for plugins)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Blur2d", "fc_upconv_generator"]


class Blur2d(nn.Module):
    """A fixed [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, per channel, size-preserving.

    Put before a stride-2 convolution it anti-aliases the downsampling (Zhang 2019, "Making
    Convolutional Networks Shift-Invariant Again"; StyleGAN's blurred resampling, Karras et
    al. 2019): the filter's response at the Nyquist frequency is 0, so a period-2 px pattern
    cannot alias onto a lower frequency, and the gradient that flows back to the input through
    the strided convolution loses its checkerboard (Odena et al. 2016). Reflect padding keeps a
    period-2 pattern periodic at the border, so it is removed there too. No parameters; the
    kernel is a non-persistent buffer, so ``state_dict`` is unchanged.
    """

    def __init__(self):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype).expand(c, 1, 3, 3), groups=c)


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
