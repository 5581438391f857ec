"""ganzoo: a plugin-based zoo of generative adversarial networks on PyTorch.

>>> import ganzoo
>>> G = ganzoo.load("began_fashion")                # doctest: +SKIP
>>> images = G.sample(64, seed=0)                   # in [-1, 1], NCHW
"""
from .errors import GanzooError, PluginError
from .hookspecs import hookimpl
from .nn import Discriminator, Generator
from .objective import Objective, StepContext
from .spec import Architecture, DatasetSpec, GANConfig, OptimizerSettings

__version__ = "0.1.0"

__all__ = [
    "GanzooError", "PluginError", "hookimpl", "Generator", "Discriminator",
    "Objective", "StepContext", "Architecture", "DatasetSpec", "GANConfig",
    "OptimizerSettings", "create", "list_architectures", "__version__",
]


def list_architectures() -> list[str]:
    """Names of every registered architecture, sorted."""
    from .plugins import get_registry

    return sorted(get_registry().architectures)


def create(arch: str, **config):
    """Build a fresh (untrained) generator and discriminator.

    >>> G, D = ganzoo.create("dcgan", image_size=32, channels=1)   # doctest: +SKIP
    """
    from .models import build

    return build(arch, **config)
