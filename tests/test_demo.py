"""`ganzoo demo` (the Gradio page's logic and layout) and `ganzoo export --space`, on a tiny model
folder of the ``tiny`` fixture architecture. The page in a real browser: tests/test_demo_browser.py."""
from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ganzoo.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_folder(tiny_model_folder) -> Path:
    """A model folder exported from a 2-step run of the tiny conditional architecture (10 classes)."""
    return tiny_model_folder("tiny_demo", num_classes=10, seed=1)


def test_import_ganzoo_and_help_do_not_import_gradio():
    code = ("import sys, ganzoo, ganzoo.cli; ganzoo.cli.build_parser(); "
            "print(sorted(m for m in ('gradio', 'fastapi', 'ganzoo.demo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_page_logic_draws_grids_walks_and_arithmetic(tiny_folder):
    from ganzoo.demo import RANDOM_LABEL, DemoApp

    app = DemoApp([str(tiny_folder)], include_catalog=False)
    assert app.choices == [str(tiny_folder)]
    status, names = app.describe(str(tiny_folder))
    assert status.startswith("Loaded") and len(names) == 10
    img, status = app.grid(str(tiny_folder), 7, 10, 0.0, RANDOM_LABEL)
    assert isinstance(img, Image.Image), status
    # 10 images of 16 px, enlarged 8x (to 128 px), in rows of 8 with 2 px padding: 2 rows
    assert img.size == (2 + 8 * (128 + 2), 2 + 2 * (128 + 2)) and "seed 7" in status
    # the same seed draws the same grid; another seed, another; a class label, another
    again, _ = app.grid(str(tiny_folder), 7, 10, 0.0, RANDOM_LABEL)
    other, _ = app.grid(str(tiny_folder), 8, 10, 0.0, RANDOM_LABEL)
    labelled, _ = app.grid(str(tiny_folder), 7, 10, 0.0, names[3])
    assert again.tobytes() == img.tobytes() and other.tobytes() != img.tobytes()
    assert labelled.tobytes() != img.tobytes()
    gif, status = app.walk(str(tiny_folder), 3, 17, 6, True, 0.0, RANDOM_LABEL)
    assert gif is not None, status
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames >= 2
    assert "slerp" in status
    img, status = app.arithmetic(str(tiny_folder), "a=1,2\nb=3,4\nc=5,6", "a - b + c", 0.0, names[1])
    assert isinstance(img, Image.Image) and "|z|" in status, status


def test_bad_input_and_a_model_that_fails_to_load_are_one_line_errors_on_the_page(tiny_folder, tmp_path):
    from ganzoo.demo import DemoApp

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    app = DemoApp([str(tmp_path / "missing"), str(broken), str(tiny_folder)], include_catalog=False)
    for ref in (str(tmp_path / "missing"), str(broken)):
        img, status = app.grid(ref, 0, 4)
        assert img is None and status.startswith("Error:") and "\n" not in status, status
        assert app.describe(ref)[0].startswith("Error: could not load")
    for result in (app.grid(str(tiny_folder), 0, 0), app.walk(str(tiny_folder), 1, 2, 1),
                   app.arithmetic(str(tiny_folder), "a=1", "a - nope"),
                   app.arithmetic(str(tiny_folder), "a=file:z.npy", "a")):
        assert result[0] is None and result[1].startswith("Error:") and "\n" not in result[1], result
    # the good model still works after the failures
    assert app.grid(str(tiny_folder), 0, 4)[0] is not None


def test_build_demo_makes_blocks_without_launching(tiny_folder):
    gr = pytest.importorskip("gradio")
    from ganzoo.demo import build_demo

    blocks = build_demo([str(tiny_folder)], include_catalog=False)
    assert isinstance(blocks, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in blocks.blocks.values()}
    assert {"model", "generate", "grid", "walk", "walk_gif", "compute", "arith", "status"} <= ids


def test_a_port_in_use_is_a_one_line_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert main(["demo", "--port", str(port), "--no-catalog", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganzoo: error: --port") and "in use" in err and "\n" not in err


def test_export_space_writes_an_app_that_builds_the_demo(tiny_folder, tmp_path, capsys, monkeypatch):
    gr = pytest.importorskip("gradio")
    from huggingface_hub import ModelCard

    out = tmp_path / "space"
    assert main(["export", str(tiny_folder), str(out), "--space"]) == 0
    assert "app.py" in capsys.readouterr().out
    req = (out / "requirements.txt").read_text()
    dist = json.loads((out / "config.json").read_text())["plugin"]["distribution"]
    assert req.splitlines()[1].startswith("ganzoo[demo] @ git+") and req.splitlines()[2].startswith(dist)
    card = ModelCard.load(out / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.sdk_version
    # app.py imports (from anywhere) and builds its Blocks for the folder beside it, without launching
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("space_app", out / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.demo, gr.Blocks)
    app = module.demo.ganzoo_app
    assert app.choices == [str(out.resolve())]
    img, status = app.grid(app.choices[0], 0, 4)
    assert img is not None, status
