"""``upsample``: the jellyfish GAN of source 000, ported from Keras to PyTorch.

Source 000: E. A. Quiroz Calvillo, "GAN: aplicación en la generación de
imágenes de Medusas" (8 March 2024);
its code is linked in §VII (github.com/Eddqzc/GAN_jellyfish_images,
``GAN_Jellyfish.ipynb``). 64x64 RGB images of jellyfish (1,021 images).

Generator (§IV, Cuadro 1 and the printed summary, Figura 7)::

    z (100) -> Dense 4*4*256 + ReLU -> reshape (256, 4, 4)
    4 x [UpSampling2D x2 (nearest) -> Conv2D 3x3 'same' -> BatchNorm(momentum 0.8) -> ReLU]
        with 256, 256, 256, 128 filters                       (8, 16, 32, 64 px)
    -> Conv2D 3x3 'same' -> 3 channels -> tanh

Discriminator (§V, Cuadro 2 and Figura 8)::

    Conv2D  32 3x3 s2 'same' -> LeakyReLU -> Dropout 0.25                     (32x32)
    Conv2D  64 3x3 s2 'same' -> ZeroPadding2D((0,1),(0,1)) -> BN -> LeakyReLU -> Dropout  (16 -> 17)
    Conv2D 128 3x3 s2 'same' -> BN -> LeakyReLU -> Dropout                    (9x9)
    Conv2D 256 3x3 s1 'same' -> BN -> LeakyReLU -> Dropout                    (9x9)
    Conv2D 512 3x3 s1 'same' -> BN -> LeakyReLU -> Dropout                    (9x9)
    Flatten (41,472) -> Dense 1

Where Cuadro 1/2 (the tables) and Figuras 7/8 (the printed Keras summaries)
disagree, we follow the summaries, which are what the code built:

* Cuadro 1 gives 256 filters to all four upsampling convs; Figura 7 shows the
  fourth (conv2d_3) with 128 filters (295,040 params = 3*3*256*128 + 128).
* Cuadro 1 lists Conv2D with ReLU and then BatchNorm; Figura 7 shows
  conv -> batch_normalization -> activation, i.e. BN before ReLU.
* Cuadro 2 shows BN and Dropout only after the second conv; Figura 8 shows BN
  after convs 2-5 and Dropout after every LeakyReLU.
* The strides are not in the tables; Figura 8's output shapes give them
  (64 -> 32 -> 16, padded to 17 -> 9 -> 9 -> 9): 2, 2, 2, 1, 1.
* Cuadro 1 repeats the "Dense 4*4*256 / Reshape" rows before every block (a
  copy-paste slip): Figura 7 has a single Dense (413,696 params).

The discriminator returns LOGITS (the Dense has no sigmoid): ganzoo's
objectives use ``binary_cross_entropy_with_logits``, the numerically stable
equivalent of the source's sigmoid + binary cross-entropy.

Training: the default objective is the source's (``nonsaturating`` with
``joint_batch``: D's update sees real and fake as one batch, G's update its
fakes alone). With BatchNorm in D that judges G's fakes by their own batch
statistics, and on the jellyfish data G drifted to saturated colour blobs
(steps 100 to 1,075 of a 5,600-step run). ``--objective-arg g_joint_batch=true``
gives G's update the joint batch too (the ``upsample_jellyfish`` run uses it).

Anti-aliasing (opt-in, not in the source): on the jellyfish data the source's
networks grow a speckle lattice of 2-4 px period in G's samples. D's first
three convolutions are 3x3 with stride 2 (a kernel the stride does not
divide): a period-2 pattern aliases onto a flat offset that D cannot tell from
a colour shift, and the gradient D sends back to G is a checkerboard (Odena et
al. 2016), which G's nearest-neighbour upsampling reproduces. ``disc_blur=True``
puts a [1,2,1] blur (``ganzoo.layers.Blur2d``) before each strided convolution
of D, as StyleGAN does (Karras et al. 2019, after Zhang 2019);
``gen_upsample="bilinear"`` upsamples G by bilinear interpolation instead of
nearest, as StyleGAN does too. Both keep every parameter and its shape, so the
source's parameter counts hold.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

import ganzoo

from ganzoo.layers import Blur2d
from ganzoo.layers.keras import KerasSameConv2d, keras_batchnorm, keras_init_

__all__ = ["UpsampleConfig", "UpsampleGenerator", "UpsampleDiscriminator", "ARCH", "register_architectures"]


@dataclass
class UpsampleConfig(ganzoo.GANConfig):
    # Cuadro 2 "input = (64, 64, 3)"; Figura 7 ends at (None, 64, 64, 3). 1 channel is also allowed.
    image_size: int = 64
    channels: int = 3
    # §IV: "tendrá como entrada un espacio latente de 100"
    latent_dim: int = 100
    # Cuadro 1 / Figura 7: Dense(4*4*256) -> Reshape((4, 4, 256))
    base_size: int = 4
    base_channels: int = 256
    # Figura 7: conv2d .. conv2d_3 after each UpSampling2D (Cuadro 1 says 256 for all four; see module doc)
    gen_channels: tuple[int, ...] = (256, 256, 256, 128)
    # Cuadro 2 / Figura 8: conv2d_10 .. conv2d_14
    disc_channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    # Figura 8 output shapes: (32,32,32), (16,16,64), (9,9,128), (9,9,256), (9,9,512)
    disc_strides: tuple[int, ...] = (2, 2, 2, 1, 1)
    # Cuadro 2 / Figura 8: ZeroPadding2D(padding=((0,1),(0,1))) right after the 2nd conv (16 -> 17)
    disc_zero_pad_after: int = 1
    # Cuadros 1 and 2: "BatchNormalization Momentum = 0.8" (Keras convention; PyTorch momentum 0.2)
    keras_bn_momentum: float = field(default=0.8, metadata={"ge": 0, "le": 1})
    # Keras BatchNormalization default epsilon (the source does not change it)
    bn_eps: float = field(default=1e-3, metadata={"gt": 0})
    # Cuadro 2's activation column is cut off after "LeakyReLU a..." (an alpha was given, so not
    # Keras' LeakyReLU() default of 0.3). Its layer stack is Keras-GAN's dcgan.py discriminator
    # (E. Linder-Norén) with a 512 layer added, which uses LeakyReLU(alpha=0.2): we take 0.2.
    leaky_slope: float = 0.2
    # Cuadro 2: Dropout 0.25 (Figura 8: after every LeakyReLU)
    dropout: float = field(default=0.25, metadata={"le": 1})
    # NOT in the source (opt-in, see "Anti-aliasing" in the module doc): G's upsampling mode
    # ("nearest", Keras' UpSampling2D default, or "bilinear") and a [1,2,1] blur before each of
    # D's strided convolutions. Neither adds a parameter.
    gen_upsample: str = "nearest"
    disc_blur: bool = False


class UpsampleGenerator(ganzoo.Generator):
    """z (N, latent_dim) -> images (N, C, 64, 64) in [-1, 1] (tanh)."""

    def __init__(self, cfg: UpsampleConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        if cfg.base_size * 2 ** len(cfg.gen_channels) != cfg.image_size:
            raise ganzoo.GanzooError(
                f"upsample: {len(cfg.gen_channels)} upsampling blocks from {cfg.base_size}px "
                f"do not reach {cfg.image_size}px"
            )
        if cfg.gen_upsample not in ("nearest", "bilinear"):
            raise ganzoo.GanzooError(
                f"upsample: gen_upsample={cfg.gen_upsample!r} is not a mode: use 'nearest' (the source) or 'bilinear'"
            )
        self.base = (cfg.base_channels, cfg.base_size, cfg.base_size)
        # Dense(4*4*256, activation='relu') (Cuadro 1; Figura 7 "dense", 413,696 params)
        self.project = nn.Linear(cfg.latent_dim, cfg.base_channels * cfg.base_size**2)
        blocks = []
        c_in = cfg.base_channels
        for c_out in cfg.gen_channels:
            blocks.append(nn.Sequential(
                # Keras UpSampling2D default: nearest; bilinear only when asked (module doc)
                nn.Upsample(scale_factor=2, mode=cfg.gen_upsample),
                KerasSameConv2d(c_in, c_out, 3),  # stride 1: same as padding=1
                keras_batchnorm(c_out, cfg.keras_bn_momentum, cfg.bn_eps),
                nn.ReLU(),
            ))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        # Conv2D(3, 3x3, 'same') + tanh (Cuadro 1 last row; Figura 7 conv2d_4, 3,459 params)
        self.to_image = KerasSameConv2d(c_in, cfg.channels, 3)
        keras_init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # NB: Keras reshapes the Dense output as (H, W, C); here it is (C, H, W).
        # Same function class and parameter count; only matters to import Keras weights.
        x = torch.relu(self.project(z)).view(z.shape[0], *self.base)
        return torch.tanh(self.to_image(self.blocks(x)))


class UpsampleDiscriminator(ganzoo.Discriminator):
    """Images (N, C, 64, 64) -> logits (N,)."""

    def __init__(self, cfg: UpsampleConfig):
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        if len(cfg.disc_strides) != len(cfg.disc_channels):
            raise ganzoo.GanzooError("upsample: disc_strides and disc_channels differ in length")
        layers: list[nn.Module] = []
        c_in, size = cfg.channels, cfg.image_size
        for i, (c_out, stride) in enumerate(zip(cfg.disc_channels, cfg.disc_strides)):
            if cfg.disc_blur and stride > 1:
                layers.append(Blur2d())  # anti-aliasing, not in the source (module doc)
            layers.append(KerasSameConv2d(c_in, c_out, 3, stride=stride))
            size = -(-size // stride)  # 'same': ceil(size / stride)
            if i == cfg.disc_zero_pad_after:
                layers.append(nn.ZeroPad2d((0, 1, 0, 1)))  # (left, right, top, bottom) = Keras ((0,1),(0,1))
                size += 1
            if i > 0:  # Figura 8: no BatchNorm after the first conv
                layers.append(keras_batchnorm(c_out, cfg.keras_bn_momentum, cfg.bn_eps))
            layers += [nn.LeakyReLU(cfg.leaky_slope), nn.Dropout(cfg.dropout)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.flat_features = c_in * size * size  # 512 * 9 * 9 = 41,472 at 64 px (Figura 8 flatten_1)
        # Dense(1) (sigmoid in the source; we return the logit)
        self.head = nn.Linear(self.flat_features, 1)
        keras_init_(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # NB: Keras flattens (H, W, C); we flatten (C, H, W) (matters only to import Keras weights)
        return self.head(self.features(x).flatten(1)).squeeze(1)


ARCH = ganzoo.Architecture(
    "upsample", UpsampleConfig, UpsampleGenerator, UpsampleDiscriminator,
    # §VI.d train_step: D is trained on the concatenation of generated and real images with
    # labels telling them apart, then G with misleading labels through D: the non-saturating
    # loss, with real and fake in ONE batch through D (it matters: D has BatchNorm).
    objective="nonsaturating",
    objective_kwargs={"joint_batch": True},
    # The seed gives no optimiser settings. Its GAN class (§VI: __init__(discriminator,
    # generator, latent_dim), compile(d_optimizer, g_optimizer, loss_fn), metrics,
    # train_step) is the one of the keras.io example "DCGAN to generate face images"
    # (F. Chollet), which compiles it with Adam(learning_rate=0.0001) for both nets and
    # Keras' default betas (0.9, 0.999): we take those as the most likely settings.
    # Batch size 16: the source notebook loads the images with batch_size = batch_s = 16.
    # (Keras' Adam epsilon is 1e-7; OptimizerSettings has no field for it, so torch's 1e-8.)
    optimizer=ganzoo.OptimizerSettings(lr_g=1e-4, lr_d=1e-4, betas=(0.9, 0.999), batch_size=16),
    image_sizes=(64,),
    reference=(
        "source 000: E. A. Quiroz Calvillo, 'GAN: aplicación en la generación de imágenes de "
        "Medusas' (2024), Keras; github.com/Eddqzc/GAN_jellyfish_images"
    ),
    description=(
        "Keras jellyfish GAN: Dense 4x4x256, 4x (UpSampling2D, Conv 3x3, BatchNorm, ReLU) to 64px; "
        "D with 5 Conv 3x3 (32-512), Dropout 0.25, BatchNorm, Dense 1"
    ),
)


register_architectures = ganzoo.registers(ARCH)
