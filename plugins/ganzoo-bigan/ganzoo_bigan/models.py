"""BiGAN's generator (with its encoder) and joint discriminator.

BiGAN (Donahue, Krähenbühl & Darrell 2016, arXiv:1605.09782) and ALI (Dumoulin
et al. 2016, arXiv:1606.00704) learn, besides G: z -> x, an encoder E: x -> z,
and a discriminator that sees *pairs*: ``(x, E(x))`` for real images and
``(G(z), z)`` for generated ones. At the optimum the two joint distributions
match and E inverts G (BiGAN's §3).

Modules here::

    G: z -> FC g_fc -> BN -> ReLU -> FC s x s x 2g -> BN -> ReLU
         -> 4x4 upconv g, stride 2 -> BN -> ReLU -> 4x4 upconv C, stride 2 -> tanh
    E: x -> 4x4 conv e, stride 2 -> lReLU -> 4x4 conv 2e, stride 2 -> BN -> lReLU
         -> FC e_fc -> BN -> lReLU -> FC latent_dim -> tanh (U(-1, 1) prior; linear for N(0, I))
    D(x, z): x -> 4x4 conv d, stride 2 -> lReLU -> 4x4 conv 2d, stride 2 -> BN -> lReLU -> FC d_fc -> lReLU
             z -> FC d_fc -> lReLU
             [x-features, z-features] -> FC d_fc -> lReLU -> FC 1 (a logit)

``s`` is 7 at 28 px and 8 at 32 px; at 64 px each network has one more stride-2
block (s = 8). With the uniform prior, E's output is squashed by tanh into the
prior's support (-1, 1)^d, so that D cannot tell encodings from prior draws by
their range alone (with the normal prior it is linear). These convolutional networks, with DCGAN's conventions (N(0, 0.02)
weights, batch norm in G and E, leaky ReLU 0.2), are this plugin's choice: the
BiGAN paper's MNIST models are fully connected and its ImageNet ones AlexNet-
sized; what defines BiGAN is the encoder and the joint discriminator, which
follow the paper.

E lives *inside the generator module* (``G.encoder``): the trainer's generator
optimizer trains G and E together on the reversed objective, and E is saved in
``generator.safetensors`` and loaded with the generator. Encode real images
with ``G.encode(x)``; ``G.reconstruct(x)`` is ``G(E(x))``.

The prior is the BiGAN MNIST setting, a 50-dimensional U(-1, 1) (the authors'
``train_mnist.sh``: ``NOISE="u-50"``); ``prior="normal"`` gives ALI's N(0, I).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import ganzoo
from ganzoo.layers.blocks import fc_upconv_generator
from ganzoo.layers.init import normal_init_
from ganzoo.errors import GanzooError

__all__ = ["BiGANConfig", "BiGANGenerator", "BiGANEncoder", "BiGANDiscriminator"]


@dataclass
class BiGANConfig(ganzoo.GANConfig):
    #: BiGAN's MNIST experiments: 28x28 grayscale; 32 and 64 px, 3 channels also supported
    image_size: int = 28
    channels: int = 1
    #: train_mnist.sh NOISE="u-50": z is 50-dimensional
    latent_dim: int = 50
    num_classes: int = 0
    #: "uniform": U(-1, 1) (BiGAN, MNIST); "normal": N(0, I) (ALI)
    prior: str = "uniform"
    #: widths (1024-unit fully connected layers as in the paper's MNIST models; 64-channel convolutions)
    g_fc: int = 1024
    g_base: int = 64
    e_base: int = 64
    e_fc: int = 1024
    d_base: int = 64
    d_fc: int = 1024
    #: DCGAN's leak, used by BiGAN's convolutional models (the authors' conv_nonlin LReLU)
    leaky_slope: float = 0.2
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.prior not in ("uniform", "normal"):
            raise GanzooError(f"bigan: prior must be 'uniform' or 'normal', got {self.prior!r}")


def _blocks(size: int) -> int:
    if size in (28, 32):
        return 2
    if size == 64:
        return 3
    raise GanzooError(f"bigan: image_size must be 28, 32 or 64, got {size}")


def _conv_features(channels: int, base: int, n: int, slope: float) -> tuple[nn.Sequential, int]:
    """Stride-2 4x4 convolutions, BN after all but the first; returns (layers, output channels)."""
    layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1), nn.LeakyReLU(slope, True)]
    width = base
    for _ in range(n - 1):
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.BatchNorm2d(width * 2), nn.LeakyReLU(slope, True)]
        width *= 2
    return nn.Sequential(*layers, nn.Flatten()), width


class BiGANEncoder(nn.Module):
    """E: images (N, C, S, S) -> latents (N, latent_dim), deterministic (BiGAN)."""

    def __init__(self, cfg: BiGANConfig):
        super().__init__()
        n = _blocks(cfg.image_size)
        conv, width = _conv_features(cfg.channels, cfg.e_base, n, cfg.leaky_slope)
        side = cfg.image_size // 2 ** n
        self.net = nn.Sequential(
            conv,
            nn.Linear(width * side * side, cfg.e_fc), nn.BatchNorm1d(cfg.e_fc), nn.LeakyReLU(cfg.leaky_slope, True),
            nn.Linear(cfg.e_fc, cfg.latent_dim),
            nn.Tanh() if cfg.prior == "uniform" else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BiGANGenerator(ganzoo.Generator):
    """z (N, latent_dim) -> images in [-1, 1]; ``encoder`` maps images back to z."""

    def __init__(self, cfg: BiGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        self.prior = cfg.prior
        n = _blocks(cfg.image_size)
        self.start = cfg.image_size // 2 ** n
        width = cfg.g_base * 2 ** (n - 1)
        self.start_channels = width
        self.fc, self.net = fc_upconv_generator(cfg.latent_dim, cfg.g_fc, width, self.start, n, cfg.channels)
        self.encoder = BiGANEncoder(cfg)
        normal_init_(self, cfg.init_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(z.reshape(z.shape[0], -1))
        return self.net(h.view(z.shape[0], self.start_channels, self.start, self.start))

    @property
    def latent_distribution(self) -> str:
        """"normal" (N(0, I): the truncation trick applies) or "uniform" (U(-1, 1), the paper's)."""
        return self.prior

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        if self.prior == "normal":
            return super().sample_latent(n, generator=generator, device=device)
        device = torch.device(device) if device is not None else self.device
        draw = "cpu" if generator is not None else device
        return (torch.rand(n, self.latent_dim, generator=generator, device=draw) * 2 - 1).to(device)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """E(x) for images in [-1, 1] (N, C, H, W), in eval mode: latents (N, latent_dim)."""
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"encode takes images of shape (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}")
        was = self.training
        self.eval()
        try:
            return torch.cat([self.encoder(x[i:i + batch_size].to(self.device).float())
                              for i in range(0, x.shape[0], batch_size)]) if x.shape[0] else \
                torch.empty(0, self.latent_dim, device=self.device)
        finally:
            self.train(was)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """G(E(x)) in [-1, 1]: how well the pair inverts each other on real images."""
        z = self.encode(x, batch_size=batch_size)
        return self.sample(z.shape[0], z=z, batch_size=batch_size)


class BiGANDiscriminator(ganzoo.Discriminator):
    """D(x, z) -> logits (N,): is (x, z) a real image with its encoding, or a generated image with its z?"""

    #: D scores (image, latent) pairs: tools that query D (``ganzoo eval --metrics dconf``) pass
    #: ``G.encode(x)`` with real images and the generating latent with generated ones
    scores_latent_pairs = True

    def __init__(self, cfg: BiGANConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        n = _blocks(cfg.image_size)
        slope = cfg.leaky_slope
        conv, width = _conv_features(cfg.channels, cfg.d_base, n, slope)
        side = cfg.image_size // 2 ** n
        self.x_net = nn.Sequential(conv, nn.Linear(width * side * side, cfg.d_fc), nn.LeakyReLU(slope, True))
        self.z_net = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.d_fc), nn.LeakyReLU(slope, True))
        self.joint = nn.Sequential(nn.Linear(2 * cfg.d_fc, cfg.d_fc), nn.LeakyReLU(slope, True), nn.Linear(cfg.d_fc, 1))
        normal_init_(self, cfg.init_std)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            raise GanzooError("bigan's discriminator scores (image, latent) pairs: call D(x, z), "
                              "e.g. D(x, G.encode(x)) for real images or D(G(z), z) for generated ones")
        h = torch.cat([self.x_net(x), self.z_net(z.reshape(z.shape[0], -1))], dim=1)
        return self.joint(h).view(x.shape[0])

    def score(self, x: torch.Tensor, labels: torch.Tensor | None = None, *, z: torch.Tensor | None = None) -> torch.Tensor:
        """The logit of each (image, latent) pair, ``D(x, z)`` (``labels``: unused, D is unconditional)."""
        return self(x, z)
