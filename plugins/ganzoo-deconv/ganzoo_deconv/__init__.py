"""``deconv``: the face GAN of source 002, ported from Keras to PyTorch.

Source 002: I. Rivera Zárate, M. Hernández Bolaños, P. Pérez Romero (IPN-CIDETEC),
"Redes adversarias para la generación de rostros sintéticos usando Python".
128x128 RGB faces (UTKFace).

Generator (Figura 3, ``define_generator``)::

    z (100) -> Dense 128*8*8 -> LeakyReLU(0.2) -> reshape (128, 8, 8)
    4 x [Conv2DTranspose 128, 4x4, stride 2, 'same' -> LeakyReLU(0.2)]   (16, 32, 64, 128 px)
    -> Conv2D 3, 8x8, 'same' -> tanh

Discriminator (Figura 4, ``define_discriminator``)::

    Conv2D 128 3x3 'same' (stride 1) -> LeakyReLU(0.2)                          (128 px)
    4 x [Conv2D 128 3x3 stride 2 'same' -> LeakyReLU(0.2)]                    (64, 32, 16, 8)
    -> Flatten (8192) -> Dropout(0.4) -> Dense 1

At 64 px (``image_size=64``) the same networks have one upsampling and one
downsampling block fewer (both still start/end at 8x8x128).

The text and the code of the seed disagree; we follow the code (Figuras 3 and 4):

* Text (§II.1 b): "un vector de 100 elementos ... conectado a una capa neuronal con
  1024x4x4 elementos ... redimensionado a un volumen de 4x4x1024"; code:
  ``n_nodes = 128 * 8 * 8`` and ``Reshape((8, 8, 128))``.
* Text: "se ha usado batch normalization" (generator) and "Se propone utilizar
  BatchNorm2d en todas las capas del discriminador excepto en la entrada"; the code
  has no BatchNormalization layer anywhere. We have none.
* Text: the discriminator uses "strides = 2 en lugar de capas MaxPooling"; code: the
  first Conv2D has stride 1 ("# normal"), the next four stride 2.

Keras ``padding='same'`` with the 8x8 output kernel (stride 1) pads 7 pixels per axis:
3 before and 4 after; PyTorch's ``padding=`` would pad symmetrically, so we pad
explicitly with ``ZeroPad2d((3, 4, 3, 4))``. The strided 3x3 convs of D pad (0, 1)
on even inputs (Keras semantics, :class:`KerasSameConv2d`); Conv2DTranspose(4, 2,
'same') is exactly PyTorch's ``ConvTranspose2d(4, 2, padding=1)`` (2n outputs,
1 pixel cropped on each side).

The discriminator returns LOGITS (no sigmoid): ganzoo's objectives use
``binary_cross_entropy_with_logits``, the numerically stable equivalent of the
source's sigmoid + binary cross-entropy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

import ganzoo

from ganzoo.layers.keras import KerasSameConv2d, keras_init_, keras_same_padding

__all__ = ["DeconvConfig", "DeconvGenerator", "DeconvDiscriminator", "ARCH", "register_architectures"]


@dataclass
class DeconvConfig(ganzoo.GANConfig):
    # §II.1 a: UTKFace resized to SIZE = 128; define_discriminator(in_shape=(128,128,3)). 64 px also works.
    image_size: int = 128
    channels: int = 3
    # §II.1 b: "Se tomará un vector con 100 números aleatorios"
    latent_dim: int = 100
    # Figura 3: n_nodes = 128 * 8 * 8; Reshape((8, 8, 128))
    base_size: int = 8
    # Figuras 3 and 4: every Conv2DTranspose and Conv2D has 128 filters
    width: int = 128
    # Figura 3: Conv2DTranspose(128, (4,4), strides=(2,2), padding='same')
    up_kernel: int = 4
    # Figura 3: Conv2D(3, (8,8), activation='tanh', padding='same')
    out_kernel: int = 8
    # Figura 4: Conv2D(128, (3,3), ...) in the discriminator
    disc_kernel: int = 3
    # Figuras 3 and 4: LeakyReLU(alpha=0.2) after every layer but the outputs
    leaky_slope: float = 0.2
    # Figura 4: Flatten() -> Dropout(0.4) -> Dense(1, activation='sigmoid')
    dropout: float = field(default=0.4, metadata={"le": 1})


def _blocks(cfg: DeconvConfig) -> int:
    n = math.log2(cfg.image_size / cfg.base_size)
    if n != int(n) or n < 1:
        raise ganzoo.GanzooError(f"deconv: image_size must be base_size ({cfg.base_size}) times a power of 2")
    return int(n)


class DeconvGenerator(ganzoo.Generator):
    """z (N, latent_dim) -> images (N, C, S, S) in [-1, 1] (tanh)."""

    def __init__(self, cfg: DeconvConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        self.base = (cfg.width, cfg.base_size, cfg.base_size)
        # Dense(n_nodes, input_dim=latent_dim) + LeakyReLU(alpha=0.2)
        self.project = nn.Linear(cfg.latent_dim, cfg.width * cfg.base_size**2)
        self.act = nn.LeakyReLU(cfg.leaky_slope)
        if cfg.up_kernel % 2:
            raise ganzoo.GanzooError("deconv: up_kernel must be even (Keras 'same' would crop asymmetrically)")
        pad = (cfg.up_kernel - 2) // 2  # Keras 'same' for a stride-2 transpose: crop (k - s) / 2 per side
        self.blocks = nn.Sequential(*[
            nn.Sequential(nn.ConvTranspose2d(cfg.width, cfg.width, cfg.up_kernel, stride=2, padding=pad),
                          nn.LeakyReLU(cfg.leaky_slope))
            for _ in range(_blocks(cfg))
        ])
        # Conv2D(3, (8,8), padding='same'): Keras pads 3 before, 4 after (explicit here)
        before, after = keras_same_padding(cfg.image_size, cfg.out_kernel, 1)
        self.pad = nn.ZeroPad2d((before, after, before, after))  # (left, right, top, bottom)
        self.to_image = nn.Conv2d(cfg.width, cfg.channels, cfg.out_kernel)
        keras_init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # NB: Keras reshapes the Dense output as (H, W, C); here (C, H, W) (matters only to import Keras weights)
        x = self.act(self.project(z)).view(z.shape[0], *self.base)
        return torch.tanh(self.to_image(self.pad(self.blocks(x))))


class DeconvDiscriminator(ganzoo.Discriminator):
    """Images (N, C, S, S) -> logits (N,)."""

    def __init__(self, cfg: DeconvConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        n = _blocks(cfg)
        layers: list[nn.Module] = [KerasSameConv2d(cfg.channels, cfg.width, cfg.disc_kernel),  # "# normal"
                                   nn.LeakyReLU(cfg.leaky_slope)]
        for _ in range(n):  # "# downsample to 64x64" ... "# downsample to 8x8"
            layers += [KerasSameConv2d(cfg.width, cfg.width, cfg.disc_kernel, stride=2), nn.LeakyReLU(cfg.leaky_slope)]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(cfg.dropout)
        self.flat_features = cfg.width * (cfg.image_size // 2**n) ** 2  # 128 * 8 * 8 = 8192
        # Dense(1, activation='sigmoid'): we return the logit
        self.head = nn.Linear(self.flat_features, 1)
        keras_init_(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # NB: Keras flattens (H, W, C); we flatten (C, H, W) (matters only to import Keras weights)
        return self.head(self.dropout(self.features(x).flatten(1))).squeeze(1)


ARCH = ganzoo.Architecture(
    "deconv", DeconvConfig, DeconvGenerator, DeconvDiscriminator,
    # Figura 10: D is trained with train_on_batch on a real batch (label 1) and then on a
    # fake batch (label 0); G through gan_model with label 1: the non-saturating loss with
    # real and fake in SEPARATE batches through D. (The source makes two D updates per
    # iteration, one per batch; ganzoo's objective makes one on the summed loss. D has no
    # BatchNorm, so the per-batch forward passes are otherwise the same.)
    objective="nonsaturating",
    objective_kwargs={"joint_batch": False},
    # Figuras 4 and 5: Adam(lr=0.0002, beta_1=0.5) for D and for the combined model
    # (beta_2: Keras default 0.999). §II.3: "se utilizarán lotes de 128 imágenes" and "dos
    # lotes de 128 imágenes cada uno: uno con imágenes falsas ... y otro con imágenes reales".
    # (The code in Figura 10 splits n_batch into half_batch real + half_batch fake for D;
    # ganzoo uses the batch size for both, as the text says.)
    optimizer=ganzoo.OptimizerSettings(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=128),
    image_sizes=(64, 128),
    reference=(
        "source 002: I. Rivera Zárate, M. Hernández Bolaños, P. Pérez Romero, 'Redes adversarias "
        "para la generación de rostros sintéticos usando Python' (IPN-CIDETEC), Keras"
    ),
    description=(
        "Keras face GAN: Dense 8x8x128, 4x Conv2DTranspose 128 4x4 s2 + LeakyReLU, Conv 8x8 tanh "
        "to 128px; D with Conv 128 3x3 and 4 strided Conv 128, Dropout 0.4, Dense 1; no BatchNorm"
    ),
)


register_architectures = ganzoo.registers(ARCH)
