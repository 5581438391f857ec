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
    "load", "list_pretrained", "finetune",
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


def load(ref, *, device=None, discriminator: bool = False, revision: str | None = None,
         generator_weights: str = "auto"):
    """A released model's generator in eval mode (``(G, D)`` with ``discriminator=True``).

    ``ref``: a catalog name (``ganzoo.list_pretrained()``), a model folder, a run directory
    or a Hub id ``org/name[@revision]``; ``revision`` pins a Hub revision and
    ``generator_weights`` (``auto``, ``ema``, ``trained``) picks a run's weights. See
    :func:`ganzoo.hub.load`.
    """
    from .hub import load as _load

    return _load(ref, device=device, discriminator=discriminator, revision=revision,
                 generator_weights=generator_weights)


def list_pretrained(detail: bool = False):
    """Names of the released models in the catalog (``detail=True``: one dict each)."""
    from .hub import list_pretrained as _list

    return _list(detail=detail)


def finetune(ref, **kwargs):
    """Fine-tune a released model on new data: see :func:`ganzoo.hub.finetune`."""
    from .hub import finetune as _finetune

    return _finetune(ref, **kwargs)
