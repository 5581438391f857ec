"""torch.hub entrypoints: one per released model in ganzoo's catalog.

    >>> import torch
    >>> torch.hub.list("ganzoo/ganzoo")                                   # doctest: +SKIP
    ['began_fashion', ...]
    >>> G = torch.hub.load("ganzoo/ganzoo", "began_fashion")            # doctest: +SKIP
    >>> images = G.sample(16, seed=0)                                     # in [-1, 1], NCHW

Each entrypoint takes ``pretrained=True`` (False: an untrained model of the same
config), ``device=None`` (CPU; ``"auto"``: CUDA when available) and
``discriminator=False`` (True: return ``(G, D)``). The entrypoints are generated
from the catalog (``ganzoo/catalog.json``, or the file ``$GANZOO_CATALOG`` names)
as real module-level functions with docstrings, so ``torch.hub.list`` and
``torch.hub.help`` show them.

This works from a plain checkout: ganzoo is importable from the repository root,
and each in-repo plugin (``plugins/*/``) that is not pip-installed is put on
``sys.path`` and registered with ``ganzoo.plugins.register_plugin``.
"""
dependencies = ["torch", "torchvision", "timm", "safetensors", "huggingface_hub", "pluggy"]

import sys as _sys
from pathlib import Path as _Path

_ROOT = _Path(__file__).resolve().parent
if str(_ROOT) not in _sys.path:  # ganzoo importable from the checkout root
    _sys.path.insert(0, str(_ROOT))

from ganzoo.hub import hub_entrypoints as _entrypoints  # noqa: E402
from ganzoo.plugins import register_checkout_plugins as _register  # noqa: E402

_registered, _failed = _register(_ROOT)
globals().update(_entrypoints(__name__, taken=set(globals())))
