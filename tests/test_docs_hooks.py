"""The plugin guide stays true: every hook documented and tested, its example identical to
plugins/ganzoo-wgan28 and working when followed by a new user (a fresh pip install)."""
from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo import hookspecs

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "writing-a-plugin.md"
EXAMPLE = REPO / "plugins" / "ganzoo-wgan28"
FILE_BLOCK = re.compile(r"^```\w+ file=(\S+)\n(.*?)^```$", re.M | re.S)
SNIPPET = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def hook_names() -> list[str]:
    names = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(fn, "ganzoo_spec")]
    assert names, "no hookspecs found in ganzoo/hookspecs.py"
    return names


def guide_files() -> dict[str, str]:
    """The files the guide shows, by path relative to the plugin's folder."""
    files = {}
    for path, text in FILE_BLOCK.findall(GUIDE.read_text()):
        top, _, rel = path.partition("/")
        assert top == EXAMPLE.name, f"guide file {path} is outside {EXAMPLE.name}/"
        files[rel] = text
    return files


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_in_the_guide(hook):
    text = GUIDE.read_text()
    assert f"### `{hook}(register)`" in text, f"docs/writing-a-plugin.md has no section for the hook {hook}"


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_implemented_in_a_test(hook):
    """As datasette does: some test (or a plugin that tests exercise) mentions each hook by name."""
    here = Path(__file__).resolve()
    sources = [p for p in [*REPO.glob("tests/**/*.py"), *REPO.glob("plugins/*/tests/*.py")] if p.resolve() != here]
    assert any(hook in p.read_text() for p in sources), f"no test mentions the hook {hook}"


def test_the_guides_files_are_the_example_plugin():
    files = guide_files()
    assert set(files) == {"pyproject.toml", "ganzoo_wgan28/__init__.py", "tests/test_wgan28_arch.py"}
    shipped = {str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*")
               if p.is_file() and p.suffix in (".py", ".toml") and ".egg-info" not in str(p) and "__pycache__" not in str(p)}
    assert shipped == set(files), "the guide and plugins/ganzoo-wgan28 have different files"
    for rel, text in files.items():
        assert (EXAMPLE / rel).read_text() == text, f"docs/writing-a-plugin.md differs from {EXAMPLE.name}/{rel}"


def test_the_guides_objective_sketch_trains():
    sketches = [s for s in SNIPPET.findall(GUIDE.read_text()) if "register_objectives" in s]
    assert len(sketches) == 1
    namespace: dict = {}
    exec(compile(sketches[0], "writing-a-plugin.md", "exec"), namespace)
    torch.manual_seed(0)
    G, D = ganzoo.create("wgan28", dim=2)
    ctx = ganzoo.StepContext(G, D, torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters()),
                             torch.device("cpu"), 0)
    out = namespace["Hinge"]().step(ctx, torch.rand(2, 1, 28, 28) * 2 - 1, None)
    assert set(out) == {"loss_d", "loss_g"} and all(torch.isfinite(v) for v in out.values())


def test_following_the_guide_as_a_new_user(tmp_path, tiny_fmnist):
    """Write the guide's files into a fresh folder, pip-install them (no index, as offline CI must),
    and run the guide's commands against that copy."""
    src = tmp_path / EXAMPLE.name
    for rel, text in guide_files().items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(src)], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")

    def ganzoo_cli(*args):
        out = subprocess.run([sys.executable, "-m", "ganzoo", *args], env=env, capture_output=True, text=True,
                             cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        return out.stdout

    find = "import importlib.util; print(importlib.util.find_spec('ganzoo_wgan28').origin)"  # without importing it
    where = subprocess.run([sys.executable, "-c", find], env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), "the copy installed from the guide is not the one imported"
    listing = ganzoo_cli("list")
    assert re.search(r"^  wgan28 .*\[ganzoo-wgan28\]$", listing, re.M) and "mnist:PATH" in listing
    # tiny_fmnist: IDX .gz files, which is MNIST's format too
    ganzoo_cli("train", "wgan28", "--data", f"mnist:{tiny_fmnist}", "--steps", "2", "--batch-size", "4", "--set", "dim=4",
               "--out", "runs/wgan28", "--threads", "1", "--quiet")
    ganzoo_cli("sample", "runs/wgan28", "-n", "4", "-o", "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0
    shutil.rmtree(site)
