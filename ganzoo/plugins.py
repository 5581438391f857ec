"""Plugin discovery on pluggy: entry points in the group ``ganzoo``.

Built-ins (objectives, datasets) register through the same hooks as third-party
plugins. A plugin that fails to import or register is recorded with its
distribution and error, and the others still load. ``GANZOO_PLUGINS`` (a
comma-separated list of distribution or entry-point names) restricts loading to
the plugins it names; set it empty to load none but the built-ins.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import os
import sys
import threading
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from ._version import version as dist_version
from .errors import GanzooError, PluginError
from .spec import Architecture, DatasetSpec

ENTRY_POINT_GROUP = "ganzoo"
PLUGINS_ENV = "GANZOO_PLUGINS"
BUILTIN_MODULES = ("ganzoo.builtins.objectives", "ganzoo.builtins.datasets")

__all__ = ["get_registry", "plugin_manager", "register_plugin", "unregister_plugin", "reset", "Registry"]


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PluginFailure:
    name: str
    distribution: str
    error: str


@dataclass
class Registry:
    architectures: dict[str, Architecture] = field(default_factory=dict)
    objectives: dict[str, type] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    provider: dict[tuple[str, str], str] = field(default_factory=dict)

    def _lookup(self, kind: str, table: dict, name: str, fix: str):
        if name in table:
            return table[name]
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise GanzooError(
            f"unknown {kind} {name!r}: {hint}{fix} (known: {', '.join(sorted(table)) or 'none'})"
        )

    def architecture(self, name: str) -> Architecture:
        return self._lookup(
            "architecture", self.architectures, name,
            "run `ganzoo list` to see them, or pip install the plugin that provides it",
        )

    def objective(self, name: str) -> type:
        return self._lookup("objective", self.objectives, name, "run `ganzoo list` to see them")

    def dataset(self, name: str) -> DatasetSpec:
        return self._lookup("dataset kind", self.datasets, name, "write --data KIND:PATH")


_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
_extra: list[tuple[Any, str]] = []  # plugins registered in-process (tests, hubconf)
_entrypoint_failures: list[PluginFailure] = []


def _dist_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ep.name, "?"
    return dist.metadata["Name"], dist.version


def _wanted() -> set[str] | None:
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def plugin_manager() -> pluggy.PluginManager:
    """The pluggy manager behind the registry, every installed plugin registered: for a hook the
    registry does not collect (``register_commands``, which the command line calls with its own
    ``register``)."""
    return _plugin_manager()


def _plugin_manager() -> pluggy.PluginManager:
    global _pm
    if _pm is not None:
        return _pm
    pm = pluggy.PluginManager("ganzoo")
    pm.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    dists: dict[str, tuple[str, str]] = {}
    for modname in BUILTIN_MODULES:
        pm.register(importlib.import_module(modname), name=modname)
        dists[modname] = ("ganzoo", dist_version("ganzoo"))
    wanted = _wanted()
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist, version = _dist_of(ep)
        if wanted is not None and ep.name not in wanted and dist not in wanted:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin must not take the others (or the process) down:
            # SystemExit, or any other BaseException a module raises at import, is reported and skipped
            failures.append(PluginFailure(ep.name, dist, _describe(exc)))
            continue
        dists[ep.name] = (dist, version)
    for plugin, name in _extra:
        if pm.get_plugin(name) is None:
            pm.register(plugin, name=name)
            dists[name] = (name, "local")
    pm._ganzoo_dists = dists  # type: ignore[attr-defined]
    _entrypoint_failures[:] = failures
    _pm = pm
    return pm


def _describe(exc: BaseException) -> str:
    """One line for a plugin's failure (``SystemExit: 0`` says what an exiting plugin did)."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:299] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_HOOKS = ("register_architectures", "register_objectives", "register_datasets")
#: what each hook's ``register(obj)`` takes; the name is the object's ``name``. An objective is a
#: ganzoo.Objective subclass, checked by its ``step`` (importing ganzoo.objective here would load torch)
_TAKES = {"architecture": Architecture, "objective": None, "dataset": DatasetSpec}


def _registered(kind: str, args: tuple) -> tuple[str, Any]:
    """``(name, obj)`` of one ``register(obj)`` call: every hook takes one object that carries its
    name (an Architecture, an Objective subclass with ``name``, a DatasetSpec). Objectives are also
    taken as ``register(name, cls)``, the shape plugins used before ``Objective.name``."""
    want = _TAKES[kind]
    what = "a subclass of ganzoo.Objective" if want is None else f"a ganzoo.{want.__name__}"
    if kind == "objective" and len(args) == 2 and isinstance(args[0], str):
        name, obj = args
    elif len(args) == 1:
        (obj,) = args
        name = getattr(obj, "name", None)
    else:
        raise TypeError(f"register() takes {what}, got {len(args)} arguments")
    if not (isinstance(obj, type) and callable(getattr(obj, "step", None)) if want is None else isinstance(obj, want)):
        raise TypeError(f"register() takes {what}, got {obj.__name__ if isinstance(obj, type) else type(obj).__name__}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"register(): {getattr(obj, '__name__', type(obj).__name__)} has no name; give it one (an objective: its class attribute name)")
    return name, obj


def _build() -> Registry:
    pm = _plugin_manager()
    dists: dict[str, tuple[str, str]] = pm._ganzoo_dists  # type: ignore[attr-defined]
    reg = Registry(failures=list(_entrypoint_failures))
    tables = {
        "register_architectures": ("architecture", reg.architectures),
        "register_objectives": ("objective", reg.objectives),
        "register_datasets": ("dataset", reg.datasets),
    }
    infos: dict[str, PluginInfo] = {}
    for name, plugin in pm.list_name_plugin():
        dist, version = dists.get(name, (name, "?"))
        infos[name] = PluginInfo(name, dist, version)
    for hook_name in _HOOKS:
        kind, table = tables[hook_name]
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = infos[impl.plugin_name]
            info.hooks.append(hook_name)
            staged: dict[str, Any] = {}

            def register(*args, _staged=staged, _kind=kind):
                name, obj = _registered(_kind, args)
                _staged[name] = obj

            try:
                impl.function(register=register)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit in a hook is a failure of that plugin, not the end
                reg.failures.append(
                    PluginFailure(impl.plugin_name, info.distribution, f"{hook_name}: {_describe(exc)}")
                )
                continue
            for name, obj in staged.items():
                key = (kind, name)
                if key in reg.provider:
                    other = reg.provider[key]
                    raise PluginError(
                        f"{kind} {name!r} is registered by both {other} and {info.distribution}; "
                        f"uninstall one, or set {PLUGINS_ENV} to load only the one you want"
                    )
                reg.provider[key] = info.distribution
                table[name] = obj
                info.registered.setdefault(kind, []).append(name)
    reg.plugins = list(infos.values())
    return reg


def get_registry() -> Registry:
    """The registry of everything the installed plugins provide (built once, cached)."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _build()
        return _registry


def reset() -> None:
    """Forget the plugin manager and registry; the next use rediscovers plugins."""
    global _pm, _registry
    with _lock:
        _pm = None
        _registry = None


def register_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object (a module or class with hookimpls) in this process.

    Used by tests and by ``hubconf.py`` for in-repo plugins that are not
    pip-installed. Entry-point plugins of the same name take precedence.
    """
    name = name or getattr(plugin, "__name__", repr(plugin))
    with _lock:
        if all(n != name for _, n in _extra):
            _extra.append((plugin, name))
        reset()


def unregister_plugin(name: str) -> None:
    with _lock:
        _extra[:] = [(p, n) for p, n in _extra if n != name]
        reset()


def register_checkout_plugins(root) -> tuple[list[str], list[tuple[str, str]]]:
    """Register the plugins of a plain checkout (``ROOT/plugins/*/``, e.g. for ``hubconf.py``) that the
    registry lacks: each folder goes on ``sys.path`` and its entry points are registered under its
    distribution's name. Returns (registered, failed); one broken plugin warns and does not hide the others."""
    wanted = _wanted()  # GANZOO_PLUGINS, when set, restricts these too
    registered, failed = [], []
    for pyproject in sorted((Path(root) / "plugins").glob("*/pyproject.toml")):
        try:
            project = tomllib.loads(pyproject.read_text()).get("project", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            failed.append((pyproject.parent.name, f"{type(exc).__name__}: {exc}"))
            continue
        dist = project.get("name", pyproject.parent.name)
        for ep_name, target in project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}).items():
            if wanted is not None and ep_name not in wanted and dist not in wanted:
                continue
            reg = get_registry()
            if any(p.name in (ep_name, dist) or p.distribution == dist for p in reg.plugins):
                continue  # pip-installed (or registered by an earlier import of this file)
            folder = str(pyproject.parent)
            if folder not in sys.path:
                sys.path.append(folder)
            module_name, _, attr = target.partition(":")
            try:
                obj = importlib.import_module(module_name.strip())
                for part in filter(None, attr.strip().split(".")):
                    obj = getattr(obj, part)
                register_plugin(obj, name=dist)
                registered.append(dist)
            except Exception as exc:  # one broken plugin must not hide the others' models
                failed.append((dist, f"{type(exc).__name__}: {exc}"))
                if os.environ.get("GANZOO_HUBCONF_QUIET") is None:
                    warnings.warn(f"ganzoo hubconf: in-repo plugin {dist} failed to load: {exc}", stacklevel=2)
    return registered, failed
