"""``mlp``: the fully connected MNIST GAN of source 001, ported from Keras to PyTorch.

Source 001: a book appendix "Generative Adversarial Networks (GAN)", Listing A-1
(Keras, MNIST).

Generator::

    z (100) -> Dense 128 -> LeakyReLU(0.2) -> BatchNorm(momentum 0.8)
            -> Dense 256 -> LeakyReLU(0.2) -> BatchNorm(momentum 0.8)
            -> Dense 512 -> LeakyReLU(0.2) -> BatchNorm(momentum 0.8)
            -> Dense 784 -> tanh -> reshape (1, 28, 28)

Discriminator ("adversarial" in the listing)::

    784 -> Dense 128 -> LeakyReLU(0.2) -> Dense 256 -> LeakyReLU(0.2)
        -> Dense 512 -> LeakyReLU(0.2) -> Dense 1

Note the order: LeakyReLU *before* BatchNorm, and the discriminator widens
(128, 256, 512) like the generator instead of mirroring it; both as listed.
Only the first Dense of each network gets ``RandomNormal(stddev=0.02)``; the
others keep Keras' default glorot_uniform (biases zero everywhere).

The discriminator returns LOGITS (no sigmoid): ganzoo's objectives use
``binary_cross_entropy_with_logits``, the numerically stable equivalent of the
source's sigmoid + binary cross-entropy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

import ganzoo

from ganzoo.layers.keras import keras_batchnorm, keras_init_

__all__ = ["MLPConfig", "MLPGenerator", "MLPDiscriminator", "ARCH", "register_architectures"]


@dataclass
class MLPConfig(ganzoo.GANConfig):
    # Listing A-1: MNIST, "imagem dimension 28x28", img_dim = 784
    image_size: int = 28
    channels: int = 1
    # Listing A-1: latent_dim = 100
    latent_dim: int = 100
    # Listing A-1: generator Dense(128), Dense(256), Dense(512) ("hidden layer 1-3")
    gen_hidden: tuple[int, ...] = (128, 256, 512)
    # Listing A-1: adversarial Dense(128), Dense(256), Dense(512)
    disc_hidden: tuple[int, ...] = (128, 256, 512)
    # Listing A-1: LeakyReLU(alpha=0.2) after every hidden Dense
    leaky_slope: float = 0.2
    # Listing A-1: BatchNormalization(momentum=0.8) (Keras convention: PyTorch momentum 0.2)
    keras_bn_momentum: float = field(default=0.8, metadata={"ge": 0, "le": 1})
    # Keras BatchNormalization default epsilon (the listing does not change it)
    bn_eps: float = field(default=1e-3, metadata={"gt": 0})
    # Listing A-1: init = initializers.RandomNormal(stddev=0.02), first Dense of G and D only
    first_layer_std: float = 0.02


def _first_layer_init(layer: nn.Linear, std: float) -> None:
    with torch.no_grad():
        nn.init.normal_(layer.weight, 0.0, std)  # Keras RandomNormal(mean=0.0, stddev=std)
        nn.init.zeros_(layer.bias)


class MLPGenerator(ganzoo.Generator):
    """z (N, latent_dim) -> images (N, 1, 28, 28) in [-1, 1] (tanh)."""

    def __init__(self, cfg: MLPConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        layers: list[nn.Module] = []
        width = cfg.latent_dim
        for hidden in cfg.gen_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(cfg.leaky_slope),
                       keras_batchnorm(hidden, cfg.keras_bn_momentum, cfg.bn_eps, dims=1)]
            width = hidden
        self.body = nn.Sequential(*layers)
        # Dense(img_dim, activation='tanh')
        self.to_image = nn.Linear(width, cfg.channels * cfg.image_size**2)
        keras_init_(self)
        _first_layer_init(self.body[0], cfg.first_layer_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.to_image(self.body(z))).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(ganzoo.Discriminator):
    """Images (N, 1, 28, 28) -> logits (N,)."""

    def __init__(self, cfg: MLPConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        layers: list[nn.Module] = []
        width = cfg.channels * cfg.image_size**2  # the source feeds flattened images (X_train.reshape(60000, 784))
        for hidden in cfg.disc_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(cfg.leaky_slope)]
            width = hidden
        self.body = nn.Sequential(*layers)
        # Dense(1, activation='sigmoid'): we return the logit
        self.head = nn.Linear(width, 1)
        keras_init_(self)
        _first_layer_init(self.body[0], cfg.first_layer_std)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(x.flatten(1))).squeeze(1)


ARCH = ganzoo.Architecture(
    "mlp", MLPConfig, MLPGenerator, MLPDiscriminator,
    # Listing A-1 train(): adversarial.train_on_batch on np.concatenate((images_train,
    # images_fake)) with labels 1 / 0 (one batch through D), then gan_model.train_on_batch(noise,
    # ones): non-saturating loss with a joint batch. (D has no BatchNorm or dropout, so joint vs
    # separate batches only changes the loss scale: Keras averages over 2N, ganzoo sums the real
    # and fake means; Adam is insensitive to that.)
    objective="nonsaturating",
    objective_kwargs={"joint_batch": True},
    # Listing A-1: optimizer = Adam(lr=0.0004, beta_1=0.5), shared by D and the combined model
    # (beta_2: Keras default 0.999); train(batch_size=256, train_steps=2000)
    optimizer=ganzoo.OptimizerSettings(lr_g=4e-4, lr_d=4e-4, betas=(0.5, 0.999), batch_size=256),
    image_sizes=(28,),
    channels=(1,),
    reference="source 001: book appendix 'Generative Adversarial Networks (GAN)', Listing A-1 (Keras, MNIST)",
    description=(
        "fully connected GAN: G Dense 128/256/512 + LeakyReLU 0.2 + BatchNorm, tanh 784; "
        "D Dense 128/256/512 + LeakyReLU 0.2, Dense 1"
    ),
)


register_architectures = ganzoo.registers(ARCH)
