"""The library modules whose import costs start-up time, imported when a command first uses one.

Every command's parser is built without them, so ``ganzoo --help`` (and any command's help) does not
pay for them: :mod:`ganzoo.hub` pulls in huggingface_hub (about 0.5 s), :mod:`ganzoo.trainer`
safetensors, :mod:`ganzoo.deploy` the hub, :mod:`ganzoo.plugins` is needed only when a plugin's command
is named or listed, and :mod:`ganzoo.demo` must not be loaded before
``ganzoo demo`` runs (tests/test_demo.py checks it). A command writes ``lazy.hub.load(...)``: the
attribute is looked up when the command runs, so a test that replaces ``ganzoo.hub.load`` reaches the
command as it did when the commands imported inside their functions.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the edges, for readers and type checkers; at run time: __getattr__ below
    from .. import demo, deploy, hub, plugins, trainer  # noqa: F401

_MODULES = ("demo", "deploy", "hub", "plugins", "trainer")


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"ganzoo.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
