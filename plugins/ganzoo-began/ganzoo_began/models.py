"""BEGAN generator and autoencoder discriminator, after source 003.

Source 003 (line numbers below, written ``L<n>``, are that source's) is a
bachelor's thesis that trains BEGAN on
Fashion-MNIST upscaled to 64x64. Its PyTorch listing (L745-L1047) is the
reference; the prose (L500-L520) describes the same networks.

* Generator (L902-L926): ``Linear(z_dim, 512*4*4)``, reshape to 512x4x4, then
  four times ``BatchNorm2d -> ReLU -> ConvTranspose2d(k=4, s=2, p=1)``
  (512->256->128->64->C), then ``Tanh``: 4 -> 8 -> 16 -> 32 -> 64 px.
* Discriminator (L794-L888): an autoencoder. Encoder = ResNet18 with a
  C-channel first conv, cut after global average pooling -> 512-d features
  (L800, L823-L825); decoder = the same stack as the generator starting from
  ``Linear(512, 512*4*4)`` (L836-L858). ``D(x)`` returns the reconstruction.
* Init (L940-L952): ``xavier_normal_(gain=0.02)`` and zero bias on every
  Conv/ConvTranspose/Linear of G and of D's *decoder* (not the encoder).

At 32 px the up-sampling stack has one block fewer (4 -> 8 -> 16 -> 32); the
seed only has 64 px (L769), so 32 px is this plugin's extension.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import ganzoo
from ganzoo.errors import GanzooError

__all__ = ["BEGANConfig", "BEGANGenerator", "BEGANDiscriminator", "UpsamplingDecoder", "xavier_init_"]

#: spatial size the Linear layer reshapes to (L836-L837 "Start from a smaller
#: spatial map, say 4x4"; L905 ``base_dim*8*4*4``; L924 ``view(-1, 512, 4, 4)``)
START_SIZE = 4
#: gain of the xavier-normal init (L943, L947 ``xavier_normal_(..., gain=0.02)``)
XAVIER_GAIN = 0.02


@dataclass
class BEGANConfig(ganzoo.GANConfig):
    #: L769 ``image_size = 64`` (Fashion-MNIST resized to 64x64, L779-L780)
    image_size: int = 64
    #: Fashion-MNIST is grayscale: L800 ``nn.Conv2d(1, 64, ...)``, L856 ``ConvTranspose2d(64, 1, ...)``
    channels: int = 1
    #: L764 ``z_dim = 48``, passed at L931 ``Generator(z_dim=z_dim)`` (the class
    #: default z_dim=64 at L903 and the prose "64-bit latent vector" at L515 are
    #: overridden by that call)
    latent_dim: int = 48
    num_classes: int = 0
    #: L903 ``base_dim=64``: G's widths are base*8, base*4, base*2, base
    #: (512, 256, 128, 64). The seed's decoder hard-codes the same widths
    #: (L836-L856); here both follow this field, so 64 reproduces the seed.
    base_channels: int = 64
    #: The seed loads ImageNet weights (L798 ``resnet18(weights='DEFAULT')``,
    #: L503 "Uses pre-trained ResNet18"); here False by default because no
    #: weights can be downloaded offline. True asks timm for them.
    pretrained_encoder: bool = False


def _up_widths(cfg_image_size: int, base: int) -> list[int]:
    """Input widths of the ConvTranspose layers: [512, 256, 128, 64] at 64 px."""
    n_up = int(round(math.log2(cfg_image_size / START_SIZE)))
    if START_SIZE * 2**n_up != cfg_image_size or n_up < 1:
        raise GanzooError(f"BEGAN needs an image size of 4*2^n, got {cfg_image_size}")
    if n_up > 4:
        raise GanzooError(f"BEGAN supports at most 64 px (4 up-sampling blocks), got {cfg_image_size}")
    # L907-L918: base*8 -> base*4 -> base*2 -> base -> C; at 32 px the last
    # intermediate width is dropped (base*8 -> base*4 -> base*2 -> C).
    return [base * 8 // 2**i for i in range(n_up)]


class UpsamplingDecoder(nn.Module):
    """``Linear -> (BN, ReLU, ConvT 4/2/1) x n -> Tanh``: G's body and D's decoder.

    L905-L920 (G) and L836-L858 (decoder) are the same stack: BatchNorm and
    ReLU come *before* each transposed convolution, including right after the
    Linear layer, and the last ConvT has no BatchNorm after it.
    """

    def __init__(self, in_features: int, out_channels: int, image_size: int, base_channels: int = 64) -> None:
        super().__init__()
        widths = _up_widths(image_size, base_channels)
        self.start_channels = widths[0]
        # L905 ``nn.Linear(z_dim, base_dim*8*4*4)``; L836 ``nn.Linear(latent_dim, 512*4*4)``
        self.fc = nn.Linear(in_features, widths[0] * START_SIZE * START_SIZE)
        layers: list[nn.Module] = []
        outs = widths[1:] + [out_channels]
        for c_in, c_out in zip(widths, outs):
            layers += [
                # nn.BatchNorm2d(c) with PyTorch defaults (eps=1e-5, momentum=0.1),
                # as at L840/L843/L851/L854/L907/...; written with keywords so
                # nobody reads a Keras momentum (0.99) into the 2nd positional
                # argument, which is eps.
                nn.BatchNorm2d(c_in, eps=1e-5, momentum=0.1),
                nn.ReLU(inplace=True),  # L841 ``nn.ReLU(True)``
                # L842 ``nn.ConvTranspose2d(512, 256, 4, 2, 1)``: kernel 4,
                # stride 2, padding 1 doubles the size; bias=True (the default)
                nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
            ]
        layers.append(nn.Tanh())  # L857, L919: output in [-1, 1]
        self.deconv = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.fc(h.reshape(h.shape[0], -1))
        h = h.reshape(h.shape[0], self.start_channels, START_SIZE, START_SIZE)  # L867, L924
        return self.deconv(h)


def xavier_init_(module: nn.Module, gain: float = XAVIER_GAIN) -> nn.Module:
    """The seed's ``weights_init`` (L940-L949), applied recursively.

    Every Conv*/ConvTranspose*/Linear gets ``xavier_normal_(weight, gain)`` and a
    zero bias; BatchNorm keeps PyTorch's init (weight 1, bias 0), since its class
    name matches neither 'Conv' nor 'Linear' in the seed's test.
    """
    for m in module.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class BEGANGenerator(ganzoo.Generator):
    """z (N, latent_dim) -> image (N, C, H, W) in [-1, 1] (L902-L926).

    Holds ``fc`` and ``deconv`` directly, as the seed's ``Generator`` does, so
    that its parameter names (``fc.weight``, ``deconv.0.weight``, ...) are the
    seed's.
    """

    def __init__(self, cfg: BEGANConfig) -> None:
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        body = UpsamplingDecoder(cfg.latent_dim, cfg.channels, cfg.image_size, cfg.base_channels)
        self.start_channels = body.start_channels
        self.fc = body.fc
        self.deconv = body.deconv
        xavier_init_(self)  # L951 ``G.apply(weights_init)``

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.fc(z.reshape(z.shape[0], -1))  # L923
        out = out.reshape(out.shape[0], self.start_channels, START_SIZE, START_SIZE)  # L924
        return self.deconv(out)  # L925


def _resnet18_encoder(channels: int, pretrained: bool) -> nn.Module:
    import timm

    try:
        # num_classes=0 removes the classifier: conv1 .. layer4 -> global average
        # pool -> flatten, exactly the seed's ResNet18Encoder.forward (L812-L825).
        # in_chans=C replaces the seed's hand-made 1-channel conv1 (L800).
        return timm.create_model("resnet18", pretrained=pretrained, in_chans=channels, num_classes=0)
    except Exception as exc:
        if not pretrained:
            raise
        raise GanzooError(
            f"could not load pretrained resnet18 weights through timm ({type(exc).__name__}: {exc}); "
            "set pretrained_encoder=False (the default) to start the encoder from scratch"
        ) from exc


class BEGANDiscriminator(ganzoo.Discriminator):
    """The autoencoder discriminator: ``D(x)`` is x's reconstruction (L875-L888).

    ``encoder`` is timm's resnet18 (512-d pooled features), ``decoder`` an
    :class:`UpsamplingDecoder` from those features back to the image.
    """

    def __init__(self, cfg: BEGANConfig) -> None:
        super().__init__(latent_dim=cfg.latent_dim, image_shape=cfg.image_shape)
        self.encoder = _resnet18_encoder(cfg.channels, cfg.pretrained_encoder)
        # L879 ``ResNet18Decoder(latent_dim=512)``: resnet18's pooled width
        self.decoder = UpsamplingDecoder(self.encoder.num_features, cfg.channels, cfg.image_size, cfg.base_channels)
        # L952 ``D.decoder.apply(weights_init)``: the encoder keeps its own
        # init (timm's for a fresh encoder, ImageNet's when pretrained)
        xavier_init_(self.decoder)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    #: ``D.score`` (what ``ganzoo eval``'s dconf uses) is minus the mean L1 reconstruction error
    #: per image, the loss of L966-L972 per image: higher = reconstructed better = "real"
    score_kind = "reconstruction"
