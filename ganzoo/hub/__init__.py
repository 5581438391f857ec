"""Released models: model folders, the catalog, loading, export, publishing and fine-tuning.

A released model is a folder laid out as a Hugging Face model repository::

    config.json                  architecture, plugin, every constructor argument, image shape,
                                 latent size, classes, pixel range, recipe, lineage (schema below)
    generator.safetensors        generator weights (float32, or bfloat16: config.json records it)
    discriminator.safetensors    discriminator weights (float32)
    README.md                    model card: YAML metadata, how to load, data license/attribution
    samples.png                  64 samples at a fixed seed
    loss.png, training_log.jsonl exported from a run: its learning curves and logged scalars
                                 up to the exported checkpoint
    training_state.safetensors   optional: Adam moments and objective state, for fine-tuning

It is saved and loaded through :class:`GANModel`, a ``huggingface_hub.ModelHubMixin``
(so ``save_pretrained``/``from_pretrained``/``push_to_hub`` come with it) and
safetensors only: pickled weights (.bin .pt .pth .ckpt) are refused.

The catalog (``ganzoo/catalog.json``, or the file ``$GANZOO_CATALOG`` names) maps
a short name to a Hub repository, a pinned revision and the sha256 of each file,
and optionally to an ``embedded`` folder (relative to the catalog file) that is
used before any download. Every file taken from either place is verified.

>>> G = ganzoo.load("began_fashion")                   # doctest: +SKIP
>>> G, D = ganzoo.load("org/name@main", discriminator=True)   # doctest: +SKIP

Releasing a model (e.g. ``began_fashion`` from the run ``runs/began_fashion``)::

    ganzoo export runs/began_fashion models/began_fashion --name began_fashion \\
        --description "BEGAN on Fashion-MNIST 64x64" [--bf16-generator] [--metric fid=...]
    ganzoo push models/began_fashion --repo ORG/began-fashion      # prints the commit
    ganzoo catalog add began_fashion models/began_fashion --repo ORG/began-fashion --revision COMMIT
    git add models/began_fashion ganzoo/catalog.json               # the embedded default

``catalog add`` (re)writes the entry: the sha256 of every file of the folder, the
repository, the pinned revision and ``embedded`` (the folder relative to the
catalog file; ``--no-embed`` leaves it out, so the files are downloaded).

The package, by job: :mod:`~ganzoo.hub.folder` (the model folder's format and config.json checks),
:mod:`~ganzoo.hub.catalog` (the catalog), :mod:`~ganzoo.hub.sources` (names, and where files come
from: folder, embedded copy, Hub download), :mod:`~ganzoo.hub.card` (the model card),
:mod:`~ganzoo.hub.model` (:class:`GANModel` and loading, runs included) and
:mod:`~ganzoo.hub.export` (export and push). The run folder it reads is
:mod:`ganzoo.runfolder`'s. Fine-tuning lives beside the trainer (:func:`ganzoo.trainer.finetune`),
Spaces beside the demo (:func:`ganzoo.space.write_space`): both import the hub, which imports
neither. Every name ``ganzoo.hub`` had is importable from it as before.
"""
from __future__ import annotations

import importlib

from ..io import PICKLE_SUFFIXES
from .card import CARD_TEMPLATE, model_card, portable_paths
from .catalog import (
    BUILTIN_CATALOG, CATALOG_ENV, CATALOG_NAME, CatalogEntry, add_catalog_entry, catalog_path, list_pretrained,
    load_catalog,
)
from .export import EXPORT_FILES, export_model, push, write_card
from .folder import (
    CARD_NAME, CONFIG_MAX_BYTES, CONFIG_NAME, CURVES_NAME, DISCRIMINATOR_FILE, FORMAT, GENERATOR_FILE, HUB_ID,
    KNOWN_DATA, PROJECT_URL, SAMPLES_N, SAMPLES_NAME, SAMPLES_SEED, TRAINING_LOG_NAME, TRAINING_STATE_FILE,
    file_sha256, install_line, install_spec,
)
from .model import (
    GANModel, decode_training_state, encode_training_state, hub_entrypoint, hub_entrypoints, load, load_any, load_model,
    module_config, save_modules,
)
from .sources import HUB_PREFIXES, _local_path  # _local_path: eval.py imports it from here

__all__ = [
    "GANModel", "load", "list_pretrained", "export_model", "push", "finetune", "save_modules", "module_config",
    "catalog_path", "load_catalog", "add_catalog_entry", "CatalogEntry", "file_sha256", "install_line", "write_card",
]


#: names that moved out of the hub to modules that import it: looked up when asked for, so that the
#: hub never imports them (fine-tuning lives beside the trainer, Spaces beside the demo)
_MOVED = {"finetune": "ganzoo.trainer", "write_space": "ganzoo.space"}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
