"""Building G and D from a registered architecture and a config."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .errors import GanzooError
from .plugins import get_registry
from .spec import Architecture, GANConfig

if TYPE_CHECKING:  # annotations only: ganzoo.nn sits above the builder (its from_pretrained loads through the hub)
    from .nn import Discriminator, Generator


def build(arch: str | Architecture, **config: Any) -> tuple[Generator, Discriminator]:
    spec = arch if isinstance(arch, Architecture) else get_registry().architecture(arch)
    cfg = spec.make_config(**config)
    return build_from_config(spec, cfg)


def build_from_config(spec: Architecture, cfg: GANConfig) -> tuple[Generator, Discriminator]:
    G = spec.build_generator(cfg)
    D = spec.build_discriminator(cfg)
    for net, role in ((G, "generator"), (D, "discriminator")):
        if getattr(net, "ganzoo_role", None) != role:  # a subclass of ganzoo.Generator / ganzoo.Discriminator
            raise TypeError(f"architecture {spec.name!r} built a {type(net).__name__}, not a ganzoo.{role.title()}")
    # who they are, so that a saved generator describes itself
    for net in (G, D):
        net.arch_name = spec.name
        net.gan_config = cfg
    return G, D


def load_state_strict(module, state: dict, *, where: str, config: str = "config.json") -> None:
    """Load a state dict exactly: missing keys, unexpected keys and shape mismatches are errors.
    ``config`` names the file that chose the architecture (a model folder's config.json, a run's
    run.json), for the error's fix."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s) e.g. {unexpected[0]!r}")
        raise GanzooError(f"{where}: weights do not match the architecture ({'; '.join(parts)}); "
                          f"check that {config} names the architecture these weights were trained with")
    for k, v in state.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise GanzooError(f"{where}: tensor {k!r} has shape {tuple(v.shape)} but the architecture expects "
                              f"{tuple(own[k].shape)}; the {config} does not match these weights")
        check_tensor(k, v, own[k], where=where)
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def check_tensor(key: str, value, like, *, where: str) -> None:
    """A stored tensor fits the module's: floating weights must be stored as floating point (an integer,
    bool or complex tensor would be cast silently) and finite (NaN/inf weights, e.g. from a diverged
    run, make every sample NaN); integer buffers (BatchNorm's counter) must stay integers."""
    if like.is_floating_point():
        if not value.is_floating_point():
            raise GanzooError(f"{where}: tensor {key!r} is stored as {str(value.dtype).replace('torch.', '')} but "
                              f"the architecture needs floating point weights; the file is corrupt or not these "
                              f"weights: export the model again")
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise GanzooError(f"{where}: tensor {key!r} holds {bad} NaN/inf value(s); the weights are unusable "
                              f"(a diverged run?): load an earlier checkpoint or export the model again")
    elif value.is_floating_point() or value.is_complex() or value.dtype == torch.bool and like.dtype != torch.bool:
        raise GanzooError(f"{where}: tensor {key!r} is stored as {str(value.dtype).replace('torch.', '')} but the "
                          f"architecture keeps it as {str(like.dtype).replace('torch.', '')}; the file is corrupt "
                          f"or not these weights: export the model again")
