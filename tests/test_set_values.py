"""`train --set` values that a layer rejects only once training runs, or widths beyond memory: one
line, exit 2, nothing written (issue 20; before, `--set bn_eps=0` died in a traceback at step 1 leaving
run.json, and `--set gen_hidden=[100000000,100000]` in an allocator traceback)."""
from __future__ import annotations

import pytest
from PIL import Image

from ganzoo.cli import main


@pytest.fixture
def pngs(tmp_path):
    d = tmp_path / "pngs"
    d.mkdir()
    for i in range(8):
        Image.new("L", (28, 28), 16 * i).save(d / f"{i}.png")
    return d


@pytest.mark.parametrize("value, said", [
    ("bn_eps=0", "bn_eps = 0: must be a number > 0"),
    ("keras_bn_momentum=2", "keras_bn_momentum = 2: must be a number <= 1"),
    ("gen_hidden=[100000000,100000]", "needs about"),
])
def test_bad_set_values_are_one_line_before_any_work(pngs, tmp_path, capsys, value, said):
    out = tmp_path / "run"
    rc = main(["train", "mlp", "--data", f"folder:{pngs}", "--out", str(out), "--steps", "1", "--batch-size", "4",
               "--quiet", "--set", value])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("ganzoo: error: ") and said in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_steps_and_epochs_together_are_refused(pngs, tmp_path, capsys, command):
    out = tmp_path / "run"
    head = ["train", "mlp"] if command == "train" else ["finetune", str(tmp_path / "no-such-model")]
    rc = main([*head, "--data", f"folder:{pngs}", "--out", str(out), "--steps", "2", "--epochs", "3",
               "--batch-size", "4", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--steps 2 and --epochs 3" in err, err
    assert not out.exists()


def test_a_batch_beyond_memory_is_refused_with_the_estimate(monkeypatch):
    """Issue 20: a --batch-size that fits the data but not RAM is refused in one line with the
    activations' estimate; a small batch on the same machine passes."""
    import ganzoo.io
    from ganzoo.errors import GanzooError
    from ganzoo.plugins import get_registry
    from ganzoo.trainer import _build_checked

    pytest.importorskip("ganzoo_mlp")
    spec = get_registry().architecture("mlp")
    cfg = spec.make_config()
    monkeypatch.setattr(ganzoo.io, "available_memory", lambda: 1 << 30)  # 1 GiB
    _build_checked(spec, cfg, 64)
    with pytest.raises(GanzooError) as info:
        _build_checked(spec, cfg, 1_000_000)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("--batch-size 1000000: one training step's activations needs about")
    assert "lower --batch-size" in msg
