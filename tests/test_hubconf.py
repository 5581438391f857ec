"""torch.hub: hubconf.py lists, documents and loads one entrypoint per catalog model, and registers
in-repo plugins that are not pip-installed."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch

import ganzoo
import ganzoo.trainer
import ganzoo_tiny  # on sys.path through conftest
from ganzoo import hub, plugins

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def restore_plugins():
    """hubconf registers in-repo plugins for the whole process; undo that after each test."""
    before, path = [name for _, name in plugins._extra], list(sys.path)
    yield
    for _, name in list(plugins._extra):
        if name not in before:
            plugins.unregister_plugin(name)
    sys.path[:] = path


@pytest.fixture(scope="module")
def tiny_folder(tiny_model_folder) -> Path:
    """A model folder from a 2-step run of the tiny fixture architecture (unconditional)."""
    return tiny_model_folder("tiny_fashion", description="A tiny test GAN on bars.")


@pytest.fixture
def catalog(tiny_folder, tmp_path, monkeypatch) -> Path:
    """A temporary catalog (via GANZOO_CATALOG) whose tiny_fashion is embedded beside it."""
    shutil.copytree(tiny_folder, tmp_path / "models" / "tiny_fashion")
    cat = tmp_path / "catalog.json"
    hub.add_catalog_entry("tiny_fashion", tmp_path / "models" / "tiny_fashion", repo="org/tiny-fashion",
                          revision="c" * 40, catalog=cat)
    monkeypatch.setenv(hub.CATALOG_ENV, str(cat))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # the embedded copy needs no network
    return cat


def hub_list(repo: Path) -> list[str]:
    """``torch.hub.list(repo, source="local")``; torch versions whose list() takes no ``source``
    (2.14 among them) get the same from the functions torch.hub.list is made of."""
    try:
        return torch.hub.list(str(repo), source="local")
    except TypeError:
        with torch.hub._add_to_sys_path(str(repo)):
            module = torch.hub._import_module(torch.hub.MODULE_HUBCONF, str(repo / torch.hub.MODULE_HUBCONF))
        return [f for f in dir(module) if callable(getattr(module, f)) and not f.startswith("_")]


def hub_help(repo: Path, name: str) -> str:
    """``torch.hub.help(repo, name, source="local")``, with the same fallback as :func:`hub_list`."""
    try:
        return torch.hub.help(str(repo), name, source="local")
    except TypeError:
        with torch.hub._add_to_sys_path(str(repo)):
            module = torch.hub._import_module(torch.hub.MODULE_HUBCONF, str(repo / torch.hub.MODULE_HUBCONF))
        return torch.hub._load_entry_from_hubconf(module, name).__doc__


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_list_help_load(catalog, tiny_folder):
    assert hub_list(REPO) == ["tiny_fashion"]  # nothing else public in hubconf
    doc = hub_help(REPO, "tiny_fashion")
    assert "A tiny test GAN on bars." in doc and "pretrained" in doc and "org/tiny-fashion" in doc
    assert "1x16x16" in doc
    G = torch.hub.load(str(REPO), "tiny_fashion", source="local")
    assert isinstance(G, ganzoo.Generator) and not G.training
    assert _same(G, ganzoo.load(tiny_folder)) and G.arch_name == "tiny"
    assert G.sample(4, seed=0).shape == (4, 1, 16, 16)
    G, D = torch.hub.load(str(REPO), "tiny_fashion", source="local", discriminator=True)
    assert isinstance(D, ganzoo.Discriminator)
    fresh = torch.hub.load(str(REPO), "tiny_fashion", source="local", pretrained=False)
    assert fresh.image_shape == G.image_shape and fresh.gan_config == G.gan_config
    assert not _same(fresh, G)  # untrained, same config


def test_builtin_catalog_without_override(monkeypatch):
    monkeypatch.delenv(hub.CATALOG_ENV, raising=False)
    assert hub_list(REPO) == sorted(hub.load_catalog(hub.BUILTIN_CATALOG))


def test_registers_in_repo_plugins_not_pip_installed(tmp_path, monkeypatch):
    """A checkout whose plugins/ganzoo-tinyhub is not installed: hubconf puts it on sys.path and registers it."""
    repo = tmp_path / "checkout"
    pkg = repo / "plugins" / "ganzoo-tinyhub" / "ganzoo_tinyhub"
    pkg.mkdir(parents=True)
    shutil.copy(REPO / "hubconf.py", repo / "hubconf.py")
    source = Path(ganzoo_tiny.__file__).read_text().replace('name="tiny"', 'name="tinyhub"')
    (pkg / "__init__.py").write_text(source)
    (pkg.parent / "pyproject.toml").write_text(
        '[project]\nname = "ganzoo-tinyhub"\nversion = "0.0.1"\n\n'
        '[project.entry-points.ganzoo]\ntinyhub = "ganzoo_tinyhub"\n'
    )
    monkeypatch.delenv(hub.CATALOG_ENV, raising=False)
    monkeypatch.delenv("GANZOO_PLUGINS", raising=False)
    assert "tinyhub" not in ganzoo.list_architectures()
    try:
        hub_list(repo)
        assert "tinyhub" in ganzoo.list_architectures()
        reg = plugins.get_registry()
        assert reg.provider[("architecture", "tinyhub")] == "ganzoo-tinyhub"
        hub_list(repo)  # a second import finds it registered: no clash
        assert "tinyhub" in ganzoo.list_architectures()
    finally:
        sys.modules.pop("ganzoo_tinyhub", None)
    # restore_plugins unregisters it and takes plugins/ganzoo-tinyhub off sys.path


def test_began_fashion_when_released(monkeypatch):
    """Once a trained began_fashion is in the built-in catalog (embedded under models/), it loads."""
    if "began_fashion" not in hub.load_catalog(hub.BUILTIN_CATALOG):
        pytest.skip("no began_fashion in ganzoo/catalog.json yet")
    monkeypatch.delenv(hub.CATALOG_ENV, raising=False)
    G = torch.hub.load(str(REPO), "began_fashion", source="local")
    assert G.arch_name == "began" and G.sample(4, seed=0).shape[0] == 4
