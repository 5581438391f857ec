"""The files that make a model folder a Hugging Face Space (Gradio SDK): ``app.py`` and ``requirements.txt``.

A leaf (no ganzoo imports), so that the model-folder export (``ganzoo export --space``) writes them without
importing the demo, which loads models through the hub. The page itself is :func:`ganzoo.demo.build_demo`.
"""
from __future__ import annotations

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
