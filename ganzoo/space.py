"""A model folder made a Hugging Face Space (Gradio SDK): ``app.py`` serving ganzoo's demo of the folder,
``requirements.txt``, and the card's Space metadata (``ganzoo export --space``).

Apart from the demo, which loads models through the hub, and from the hub, which this module uses for the card:
the hub reaches :func:`write_space` on first use. The page itself is :func:`ganzoo.demo.build_demo`.
"""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from .hub.card import model_card
from .hub.folder import CARD_NAME, PROJECT_URL, _folder_config
from .io import atomic_path

__all__ = ["SPACE_APP", "space_files", "write_space"]

SPACE_APP = '''"""A Hugging Face Space: the ganzoo demo of the model folder this file sits in.

Written by `ganzoo export --space`; run it locally with `python app.py`.
"""
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ganzoo.demo import build_demo, space_launch_kwargs  # noqa: E402

HERE = Path(__file__).resolve().parent
demo = build_demo([str(HERE)], include_catalog=False, title={title!r})

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1).launch(**space_launch_kwargs())
'''


def space_files(config: dict, *, install: str) -> dict[str, str]:
    """``app.py`` and ``requirements.txt`` that make a model folder a Gradio Space.

    ``install``: the pip requirement lines for ganzoo and the model's plugin (the
    caller's packaging knows where they come from)."""
    title = f"{config.get('name') or config.get('architecture', 'ganzoo')} (ganzoo)"
    return {"app.py": SPACE_APP.format(title=title), "requirements.txt": install.rstrip("\n") + "\n"}


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
