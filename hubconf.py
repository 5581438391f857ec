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


def _register_in_repo_plugins():
    """Register ``plugins/*/`` plugins the registry lacks; returns (registered, failed)."""
    import importlib
    import os
    import tomllib
    import warnings

    from ganzoo import plugins

    wanted = plugins._wanted()  # GANZOO_PLUGINS, when set, restricts these too
    registered, failed = [], []
    for pyproject in sorted((_ROOT / "plugins").glob("*/pyproject.toml")):
        try:
            project = tomllib.loads(pyproject.read_text()).get("project", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            failed.append((pyproject.parent.name, f"{type(exc).__name__}: {exc}"))
            continue
        dist = project.get("name", pyproject.parent.name)
        for ep_name, target in project.get("entry-points", {}).get(plugins.ENTRY_POINT_GROUP, {}).items():
            if wanted is not None and ep_name not in wanted and dist not in wanted:
                continue
            reg = plugins.get_registry()
            if any(p.name in (ep_name, dist) or p.distribution == dist for p in reg.plugins):
                continue  # pip-installed (or registered by an earlier import of this file)
            folder = str(pyproject.parent)
            if folder not in _sys.path:
                _sys.path.append(folder)
            module_name, _, attr = target.partition(":")
            try:
                obj = importlib.import_module(module_name.strip())
                for part in filter(None, attr.strip().split(".")):
                    obj = getattr(obj, part)
                plugins.register_plugin(obj, name=dist)
                registered.append(dist)
            except Exception as exc:  # one broken plugin must not hide the others' models
                failed.append((dist, f"{type(exc).__name__}: {exc}"))
                if os.environ.get("GANZOO_HUBCONF_QUIET") is None:
                    warnings.warn(f"ganzoo hubconf: in-repo plugin {dist} failed to load: {exc}", stacklevel=2)
    return registered, failed


_registered, _failed = _register_in_repo_plugins()


def _make_entrypoint(name, entry):
    def entrypoint(pretrained=True, device=None, discriminator=False):
        from ganzoo.hub import hub_entrypoint

        return hub_entrypoint(name, pretrained=pretrained, device=device, discriminator=discriminator)

    image = "x".join(map(str, entry.image_shape)) or "?"
    where = f"; an embedded copy ({entry.embedded}) is used before any download" if entry.embedded else ""
    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"""{entry.description or f'The released ganzoo model {name!r}.'}

    Architecture {entry.architecture or '?'}, images {image} (C x H x W), from the Hugging Face
    repository {entry.repo} at revision {entry.revision}; every file is checked against the
    catalog's sha256{where}.

    Args:
        pretrained (bool): True (default) loads the released weights; False returns an
            untrained model of the same config.
        device: None (CPU, the default), "auto" (CUDA when available) or a torch device.
        discriminator (bool): also return the discriminator, as ``(G, D)``.

    Returns:
        The ganzoo.Generator in eval mode (``G.sample(n, seed=0)`` draws images in [-1, 1],
        NCHW; ``G.class_names`` names the classes of a conditional model), or ``(G, D)``.
    """
    return entrypoint


def _define_entrypoints():
    from ganzoo.hub import load_catalog

    names = []
    for name, entry in sorted(load_catalog().items()):
        if name.startswith("_") or name in globals():
            continue
        globals()[name] = _make_entrypoint(name, entry)
        names.append(name)
    return names


_entrypoints = _define_entrypoints()
