"""ganzoo plugin ``wgan28``: the 28x28 convolutional WGAN-GP of Gulrajani et al. 2017.

Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, "Improved Training of Wasserstein
GANs" (NeurIPS 2017, arXiv:1704.00028): the MNIST networks of the authors' code
(igul222/improved_wgan_training, gan_mnist.py). Also registers the dataset kind
``mnist:DIR``. Written only against ganzoo's public API: the worked example of
docs/writing-a-plugin.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import ganzoo
from ganzoo.data import ImageDataset, load_fashion_mnist

__all__ = ["ARCH", "WGAN28Config", "WGAN28Generator", "WGAN28Critic", "load_mnist"]


@dataclass
class WGAN28Config(ganzoo.GANConfig):
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 128  # gan_mnist.py: noise = tf.random_normal([n_samples, 128])
    dim: int = 64  # DIM: the widths are dim, 2 dim and 4 dim
    batchnorm: bool = False  # True: the reference's "wgan" mode (BatchNorm; never with wgan-gp)


def _bn(cfg: WGAN28Config, width: int, dims: int = 2) -> nn.Module:
    if not cfg.batchnorm:
        return nn.Identity()
    return nn.BatchNorm2d(width) if dims == 2 else nn.BatchNorm1d(width)


class WGAN28Generator(ganzoo.Generator):
    """z (N, 128) -> Linear 4x4x4dim -> ConvT 8x8 (cropped to 7x7) -> ConvT 14x14 -> ConvT 28x28, tanh."""

    def __init__(self, cfg: WGAN28Config):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        d = cfg.dim
        self.project = nn.Sequential(
            nn.Linear(cfg.latent_dim, 4 * 4 * 4 * d), _bn(cfg, 4 * 4 * 4 * d, dims=1), nn.ReLU(),
            nn.Unflatten(1, (4 * d, 4, 4)),
            # TF's 5x5 stride-2 'SAME' deconvolution doubles the size: padding 2, output_padding 1
            nn.ConvTranspose2d(4 * d, 2 * d, 5, 2, 2, output_padding=1), _bn(cfg, 2 * d), nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * d, d, 5, 2, 2, output_padding=1), _bn(cfg, d), nn.ReLU(),
            # tanh, not the reference's sigmoid: ganzoo feeds real images in [-1, 1]
            nn.ConvTranspose2d(d, cfg.channels, 5, 2, 2, output_padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.upsample(self.project(z)[:, :, :7, :7])  # the reference crops 8x8 to 7x7


class WGAN28Critic(ganzoo.Discriminator):
    """Images (N, C, 28, 28) -> 5x5 stride-2 convs 14, 7, 4 px with LeakyReLU 0.2 -> Linear -> one score (N,)."""

    def __init__(self, cfg: WGAN28Config):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        d = cfg.dim
        self.net = nn.Sequential(
            nn.Conv2d(cfg.channels, d, 5, 2, 2), nn.LeakyReLU(0.2),
            nn.Conv2d(d, 2 * d, 5, 2, 2), _bn(cfg, 2 * d), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * d, 4 * d, 5, 2, 2), _bn(cfg, 4 * d), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(4 * 4 * 4 * d, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)  # a critic value, no sigmoid


ARCH = ganzoo.Architecture(
    name="wgan28",
    config_cls=WGAN28Config,
    build_generator=WGAN28Generator,
    build_discriminator=WGAN28Critic,
    objective="wgan-gp",  # from ganzoo-losses
    objective_kwargs={"n_critic": 5, "gp_lambda": 10.0},  # CRITIC_ITERS = 5, LAMBDA = 10
    optimizer=ganzoo.OptimizerSettings(lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9), batch_size=50),
    image_sizes=(28,),
    channels=(1, 3),
    reference="Gulrajani et al. 2017, 'Improved Training of Wasserstein GANs', arXiv:1704.00028 (gan_mnist.py)",
    description="the 28x28 conv WGAN-GP of Gulrajani et al. 2017 (5x5 stride-2 convs, dim 64, no BN in the critic)",
)


def load_mnist(path, *, image_size, channels, split="train", label=None):
    """MNIST digits: the same four IDX .gz files as Fashion-MNIST's, with the digits as class names."""
    ds = load_fashion_mnist(path, image_size=image_size, channels=channels, split=split, label=label)
    return ImageDataset(ds.images, ds.labels, [str(d) for d in range(10)], kind="mnist", split=split)


register_architectures = ganzoo.registers(ARCH)
register_datasets = ganzoo.registers(
    ganzoo.DatasetSpec("mnist", build=load_mnist, description="MNIST digits from its four IDX .gz files"))
