"""The install lines the cards and errors give work as written: on the package index `ganzoo` is an
unrelated project and the plugins are not published, so every line installs from the repository."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import ganzoo
from ganzoo import hub
from ganzoo.cli import main

REPO = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in (REPO / "plugins").glob("*/pyproject.toml"))


def _specs(line: str) -> list[Requirement]:
    assert line.startswith("pip install ")
    return [Requirement(s) for s in re.findall(r'"([^"]+)"', line)]


@pytest.mark.parametrize("dist", ["ganzoo-began", "ganzoo-cgan", None])
def test_install_line_is_direct_references_to_existing_folders(dist):
    line = hub.install_line(dist)
    reqs = _specs(line)
    assert reqs[0].name == "ganzoo" and reqs[0].url == f"git+{hub.PROJECT_URL}"
    for r in reqs[1:]:  # each plugin: its own folder, whose pyproject names the same distribution
        sub = r.url.split("#subdirectory=")[1]
        assert tomllib.loads((REPO / sub / "pyproject.toml").read_text())["project"]["name"] == r.name
    names = [r.name for r in reqs]
    if dist == "ganzoo-cgan":  # its first-party dependencies come first, so the line resolves
        assert names == ["ganzoo", "ganzoo-losses", "ganzoo-sngan", "ganzoo-cgan"]
    assert len(line.split('"')) == 2 * len(reqs) + 1  # nothing unquoted for the index to resolve


@pytest.mark.parametrize("folder", sorted(p.parent for p in (REPO / "models").glob("*/config.json")), ids=lambda p: p.name)
def test_every_card_gives_the_install_line(folder):
    dist = json.loads((folder / "config.json").read_text())["plugin"]["distribution"]
    card = (folder / "README.md").read_text()
    assert hub.install_line(dist) + "\n" in card
    assert not re.search(r"pip install ganzoo(?!\[)\b(?! @)", card)


def test_freshly_written_cards_give_it_too(tmp_path):
    G = ganzoo.create_model("dcgan", image_size=32, channels=1)
    card = (G.save_pretrained(tmp_path / "m") / "README.md").read_text()
    assert hub.install_line("ganzoo-dcgan") in card


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugins_cannot_be_satisfied_by_the_unrelated_index_project(plugin):
    deps = tomllib.loads((plugin / "pyproject.toml").read_text())["project"]["dependencies"]
    core = [Requirement(d) for d in deps if Requirement(d).name == "ganzoo"]
    assert core and not core[0].specifier.contains("0.0.1") and core[0].specifier.contains(ganzoo.__version__)


def test_catalog_revisions_are_commits_or_the_catalog_says_why(capsys, tmp_path):
    data = json.loads((REPO / "ganzoo" / "catalog.json").read_text())
    moving = [n for n, e in data["models"].items() if not re.fullmatch(r"[0-9a-f]{40}", e["revision"])]
    if moving:
        assert "sha256" in data.get("revision_note", "")
    # and `catalog add` warns about a branch
    folder = REPO / "models" / "dcgan_fashion"
    assert main(["catalog", "add", "x", str(folder), "--repo", "org/x", "--revision", "main",
                 "--catalog", str(tmp_path / "c.json")]) == 0
    assert "is not a commit" in capsys.readouterr().err
    assert main(["catalog", "add", "x", str(folder), "--repo", "org/x", "--revision", "a" * 40,
                 "--catalog", str(tmp_path / "c.json")]) == 0
    assert "warning" not in capsys.readouterr().err
