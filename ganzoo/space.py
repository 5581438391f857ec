"""A model folder made a Hugging Face Space: ganzoo's demo of the model, served by Gradio.

Apart from the hub, because the demo imports the hub to serve a model: the hub never imports the demo.
"""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from .demo import space_files
from .hub.card import model_card
from .hub.folder import CARD_NAME, PROJECT_URL, _folder_config
from .io import atomic_path

__all__ = ["write_space"]


def _space_requirements(config: dict[str, Any]) -> str:
    """requirements.txt of a Space: ganzoo with Gradio, and the model's plugin. First-party
    distributions come from the project's repository (plugins/NAME), since neither is on PyPI
    under its name; a third-party plugin by its distribution name."""
    dist = (config.get("plugin") or {}).get("distribution") or ""
    repo = f"git+{PROJECT_URL}.git"
    lines = ["# ganzoo (with the demo's Gradio) and the model's plugin, for `python app.py`",
             f"ganzoo[demo] @ {repo}"]
    if dist and dist != "ganzoo":
        first_party = (Path(__file__).resolve().parents[2] / "plugins" / dist / "pyproject.toml").is_file()
        lines.append(f"{dist} @ {repo}#subdirectory=plugins/{dist}" if first_party else dist)
    return "\n".join(lines) + "\n"


def write_space(folder: str | os.PathLike) -> Path:
    """Make a model folder a Hugging Face Space (Gradio SDK): ``app.py`` serving ganzoo's demo of the
    folder, ``requirements.txt``, and ``sdk: gradio`` / ``app_file: app.py`` in the card's metadata.
    ``python FOLDER/app.py`` runs the same page locally."""
    folder = Path(folder)
    config = _folder_config(folder)
    for name, text in space_files(config, install=_space_requirements(config)).items():
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text)
    card_path = folder / CARD_NAME
    card = ModelCard.load(card_path) if card_path.is_file() else model_card(config)
    card.data.sdk = "gradio"
    try:
        card.data.sdk_version = metadata.version("gradio")
    except metadata.PackageNotFoundError:
        pass
    card.data.app_file = "app.py"
    with atomic_path(card_path) as tmp:
        card.save(tmp)
    return folder
