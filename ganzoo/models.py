"""Building G and D from a registered architecture and a config."""
from __future__ import annotations

from typing import Any

from .nn import Discriminator, Generator
from .plugins import get_registry
from .spec import Architecture, GANConfig


def build(arch: str | Architecture, **config: Any) -> tuple[Generator, Discriminator]:
    spec = arch if isinstance(arch, Architecture) else get_registry().architecture(arch)
    cfg = spec.make_config(**config)
    return build_from_config(spec, cfg)


def build_from_config(spec: Architecture, cfg: GANConfig) -> tuple[Generator, Discriminator]:
    G = spec.build_generator(cfg)
    D = spec.build_discriminator(cfg)
    for net, base in ((G, Generator), (D, Discriminator)):
        if not isinstance(net, base):
            raise TypeError(f"architecture {spec.name!r} built a {type(net).__name__}, not a ganzoo.{base.__name__}")
    # who they are, so that a saved generator describes itself
    for net in (G, D):
        net.arch_name = spec.name
        net.gan_config = cfg
    return G, D
