"""ganzoo: a plugin-based zoo of generative adversarial networks on PyTorch.

>>> import ganzoo
>>> G = ganzoo.load("began_fashion")                # doctest: +SKIP
>>> images = G.sample(64, seed=0)                   # in [-1, 1], NCHW
"""
import dataclasses
import difflib
import fnmatch
import importlib

from ._version import __version__
from .errors import GanzooError, PluginError
from .hookspecs import hookimpl, registers
from .nn import Discriminator, Generator
from .objective import Objective, StepContext
from .spec import Architecture, DatasetSpec, GANConfig, OptimizerSettings

__all__ = [
    "GanzooError", "PluginError", "hookimpl", "registers", "Generator", "Discriminator",
    "Objective", "StepContext", "Architecture", "DatasetSpec", "GANConfig",
    "OptimizerSettings", "create", "list_architectures", "__version__",
    "load", "list_pretrained", "finetune",
    "list_models", "create_model", "train", "export", "push",
]


#: ganzoo's functions that live in a heavier module, by the module: each is that module's own function
#: (same signature and docstring), imported at its first use (PEP 562 ``__getattr__``)
_LAZY = {"load": "hub", "list_pretrained": "hub", "push": "hub", "finetune": "trainer"}


def _lazy(module: str):
    """``ganzoo.MODULE``, imported at its first use: the hub (huggingface_hub), the trainer, the
    exporters and the plugin registry stay off ``import ganzoo`` and ``ganzoo --help`` (start-up time)."""
    return importlib.import_module(f"{__name__}.{module}")


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_lazy(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def list_architectures() -> list[str]:
    """Names of every registered architecture, sorted."""
    return sorted(_lazy("plugins").get_registry().architectures)


def create(arch: str, **config):
    """Build a fresh (untrained) generator and discriminator.

    >>> G, D = ganzoo.create("dcgan", image_size=32, channels=1)   # doctest: +SKIP
    """
    return _lazy("models").build(arch, **config)


# ---- the names timm and huggingface_hub users guess ------------------------------------------
def list_models(pattern: str | list[str] | None = None, pretrained: bool = False) -> list[str]:
    """Names to pass to :func:`create_model`, sorted, as ``timm.list_models``: the registered
    architectures, or with ``pretrained=True`` the released models of the catalog. ``pattern``
    (a shell-style wildcard such as ``"*gan"``, or a list of them) keeps the names that match one.

    >>> ganzoo.list_models("*gan*")                   # doctest: +SKIP
    ['bigan', 'cgan', 'dcgan', 'infogan', 'sagan', 'sngan']
    """
    names = _lazy("hub").list_pretrained() if pretrained else list_architectures()
    if pattern is None:
        return names
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def create_model(name: str, pretrained: bool = False, *, device=None, discriminator: bool = False, **config):
    """A generator by name, as ``timm.create_model``: the Generator (``discriminator=True``:
    ``(G, D)``), because the generator is what one samples from.

    ``name`` is an architecture (``list_models()``): a fresh, untrained model in train mode,
    built with ``config`` (its config fields, e.g. ``image_size=32, channels=1``). Or a released
    model (``list_models(pretrained=True)``): with ``pretrained=True`` its weights, in eval mode
    (:func:`load`); with ``pretrained=False`` an untrained model of the same config, as
    ``torch.hub.load(..., pretrained=False)`` gives. ``device``: None (CPU), ``"auto"`` or a torch device.

    >>> G = ganzoo.create_model("dcgan", image_size=32, channels=1)     # doctest: +SKIP
    >>> G = ganzoo.create_model("dcgan_fashion", pretrained=True)        # doctest: +SKIP
    """
    archs, released = list_architectures(), _lazy("hub").list_pretrained()
    if name in archs and name not in released:
        if pretrained:
            have = sorted(n for n, e in _lazy("hub").load_catalog().items() if e.architecture == name)
            raise GanzooError(f"create_model({name!r}, pretrained=True): {name!r} is an architecture; its released "
                              f"models are {', '.join(have) or 'none yet'} (list_models(pretrained=True)): pass one "
                              f"of those, or pretrained=False for an untrained {name}")
        G, D = create(name, **config)
        dev = _lazy("device").load_device(device)
        G.to(dev)
        D.to(dev)
        return (G, D) if discriminator else G
    if name in released:
        if config:
            raise GanzooError(f"create_model({name!r}): a released model keeps the config it was trained with; drop "
                              f"{', '.join(sorted(config))} (or build the architecture {name!r} is made of with its "
                              f"own name)")
        return _lazy("hub").hub_entrypoint(name, pretrained=pretrained, device=device, discriminator=discriminator)
    close = difflib.get_close_matches(name, archs + released, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise GanzooError(f"create_model: unknown model {name!r}; {hint}architectures: {', '.join(archs)}; released "
                      f"models: {', '.join(released) or 'none'} (for a folder, run or Hub id use ganzoo.load)")


def train(arch: str | None = None, *, data: str | None = None, out, resume: bool = False, progress: bool = True,
          **options):
    """Train an architecture on a data set, as ``ganzoo train`` does; returns the
    :class:`~ganzoo.trainer.Trainer` (``.G``, ``.D``, ``.step``) after the last step.

    ``options`` are the run's settings (:class:`~ganzoo.trainer.TrainConfig` fields: ``steps``,
    ``epochs``, ``batch_size``, ``lr_g``, ``device``, ``ema``, ...) and the architecture's config
    fields (``image_size``, ``channels``, ...; or all of them as ``arch_config={...}``).
    ``resume=True`` continues the run in ``out`` (``arch`` and ``data`` then come from it).

    >>> ganzoo.train("dcgan", data="fashion-mnist:data/fmnist", out="runs/dcgan",
    ...              image_size=32, channels=1, steps=1000)          # doctest: +SKIP
    """
    TrainConfig = _lazy("runfolder").TrainConfig
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"arch", "data"}
    arch_config = dict(options.pop("arch_config", None) or {})
    rest = {k: options.pop(k) for k in list(options) if k not in fields}
    if rest:
        arch_fields = set()
        if arch:
            spec = _lazy("plugins").get_registry().architecture(arch)
            arch_fields = {f.name for f in dataclasses.fields(spec.config_cls)}
        bad = sorted(set(rest) - arch_fields)
        if bad:
            raise GanzooError(f"ganzoo.train: unknown option(s) {', '.join(bad)}; run settings: "
                              f"{', '.join(sorted(fields))}; architecture config: "
                              f"{', '.join(sorted(arch_fields)) or '(name the architecture)'}")
        arch_config.update(rest)
    if not resume and (not arch or not data):
        raise GanzooError("ganzoo.train needs an architecture and data='KIND:PATH' (or resume=True with out= an "
                          "earlier run)")
    cfg = TrainConfig(arch=arch or "", data=data or "", arch_config=arch_config, **options)
    return _lazy("trainer").train(cfg, out, resume=resume, progress=progress,
                  command=f"ganzoo.train({arch!r}, data={data!r}, out={str(out)!r})")


def export(ref, out, *, format: str = "folder", overwrite: bool = False, **options):
    """Export a model, as ``ganzoo export`` does; returns a :class:`ganzoo.deploy.Exported`
    (``.path``, usable as a path; ``.max_abs_diff`` from PyTorch for ONNX and TorchScript).

    ``format``: ``"folder"`` (a model folder: ``options`` as :func:`ganzoo.hub.export_model`,
    e.g. ``name``, ``description``, ``metrics``), ``"onnx"`` (``OUT/generator.onnx``) or
    ``"torchscript"`` (``OUT/generator.torchscript.pt``); see :mod:`ganzoo.deploy`. ``ref`` is
    anything :func:`load` takes, or a Generator.
    """
    deploy = _lazy("deploy")
    if format not in deploy.FORMATS:
        raise GanzooError(f"export format {format!r}: use one of {', '.join(deploy.FORMATS)}")
    if format == "folder":
        if isinstance(ref, Generator):
            if options or overwrite:
                raise GanzooError("export of a Generator object: use G.save_pretrained(folder, name=..., "
                                  "description=...) (the run's options need a run or model folder)")
            return deploy.Exported(ref.save_pretrained(out), "folder")
        return deploy.Exported(_lazy("hub").export_model(ref, out, overwrite=overwrite, **options), "folder")
    bad = sorted(set(options) - {"generator_weights"})
    if bad:
        raise GanzooError(f"export(format={format!r}): {', '.join(bad)} describe(s) a model folder; drop it")
    return deploy.export_generator(ref, out, format=format, overwrite=overwrite, **options)
